"""Bundles (from one or many CI jobs) + optional static.json -> the sign-off report on disk.

Shared by `kfp-conformance report` and the pytest layer. Reads files only: never a cluster. Merging:
every bundle under every root is read (and verified); two *different* bundles for one
scenario/variant.mode are refused (pass each job's output once); byte-identical copies are merged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import Config, load_config
from harness.errors import BundleError, ConfigError
from harness.evidence.bundle import unfinished_dirs
from harness.evidence.compact import Evidence
from harness.evidence.parallel import iter_evidence
from harness.judge.compare import compare_all, driver_identities
from harness.judge.decisions import KnownFinding
from harness.judge.policy import load_policy
from harness.models import instance_key, split_instance
from harness.report import FORMATS, Report, build_report, write_reports
from harness.selection import choose_baseline


@dataclass(frozen=True)
class SignOff:
    report: Report
    written: dict[str, Path]


def load_bundles(roots: Sequence[str | os.PathLike[str]]) -> tuple[list[Evidence], list[dict[str, Any]]]:
    """All bundles under `roots` (verified, as the compact evidence the comparison needs: a 100 000-node
    bundle is never held parsed whole), merged; plus an input record per bundle (key, run id, sha256)."""
    chosen: dict[tuple[str, str, str], tuple[Evidence, str]] = {}
    # closing: a refused duplicate ends the read's worker processes now, not when the generator is collected
    with closing(iter_evidence(*roots)) as evidence:
        for bundle in evidence:
            digest = bundle.sha256  # taken of the bytes that were read (not a second read of 100s of MB)
            previous = chosen.get(bundle.key)
            if previous is not None and previous[1] != digest:
                raise BundleError(
                    f"two different bundles for {bundle.scenario}/{bundle.variant}.{bundle.mode}: "
                    f"{previous[0].path} and {bundle.path}",
                    "pass each CI job's bundles once, or remove the stale copy")
            chosen[bundle.key] = (bundle, digest)
    inputs = [{"bundle": f"{k[0]}/{k[1]}.{k[2]}", "run_id": b.data["run"]["id"], "status": b.data["status"],
               "sha256": digest} for k, (b, digest) in sorted(chosen.items())]
    return [b for _, (b, _) in sorted(chosen.items())], inputs


def load_static(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ConfigError(str(file), "static.json not found", "run `kfp-conformance static` first, or drop --static")
    try:
        data = json.loads(file.read_text())
    except ValueError as exc:
        raise ConfigError(str(file), f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("findings", []), list):
        raise ConfigError(str(file), "not a static.json (no findings list)", "pass the static tier's static.json")
    major = str(data.get("schema_version", "1.0")).split(".")[0]
    if major != "1":
        raise ConfigError(str(file), f"static.json schema_version {data.get('schema_version')} is not supported",
                          "use the kfp-conformance version that wrote it")
    return data


def build_signoff(roots: Sequence[str | os.PathLike[str]], *, static: str | os.PathLike[str] | None = None,
                  policy_dir: str | os.PathLike[str] | None = None,
                  config_path: str | os.PathLike[str] | None = None, baseline: str | None = None,
                  known: Sequence[KnownFinding] | None = None, today: dt.date | None = None) -> Report:
    """Validate every input, compare, and build the report (nothing written). The CLI (`sign_off`) and the
    pytest layer (scenarios/test_compare.py) both call this, so their verdicts cannot disagree."""
    if not roots:
        raise BundleError("no bundle directories given", "pass one or more BUNDLE_DIR (e.g. out/<run-id>)")
    config = load_config(config_path)
    policy = load_policy(policy_dir)
    static_data = load_static(static)
    bundles, inputs = load_bundles(roots)
    named = {b.variant for b in bundles} | set((static_data or {}).get("sources") or {})
    unknown_variants = sorted(n for n in named if split_instance(n)[0] not in config.variants)
    if unknown_variants:
        raise BundleError(f"bundles for unknown variant(s) {', '.join(unknown_variants)}",
                          f"add them to {config.path} or pass --config")
    config.variant(baseline or config.baseline)  # one clear error for an unknown baseline (or label)
    config = config.with_instances(sorted(named | ({baseline} if baseline else set())))
    variants = report_variants(config, named | ({baseline} if baseline else set()))
    chosen_baseline = baseline or choose_baseline(config, variants)
    if not bundles and static_data is None:
        raise BundleError(f"no bundle.json under {', '.join(str(r) for r in roots)}",
                          "pass the directory the live tier wrote (out/<run-id>)")
    have = {f"{b.scenario}/{instance_key(b.variant)}.{b.mode}" for b in bundles}
    unfinished = []
    for directory in unfinished_dirs(*roots):
        key = f"{directory.parent.name}/{directory.name}"
        if key not in have:
            unfinished.append(key)
    comparisons = compare_all(bundles, variants=variants, baseline=chosen_baseline, policy=policy,
                              driver_identities=driver_identities(config))
    return build_report(comparisons, variants=variants, baseline=chosen_baseline, policy=policy,
                        static=static_data, inputs=inputs, unfinished=sorted(set(unfinished)), known=known,
                        today=today)


def report_variants(config: Config, named: set[str]) -> list[str]:
    """The report's columns, in config order: every entry, except that an entry whose instances
    (`NAME:LABEL`, two builds of one variant) are present and that has no evidence of its own is replaced by
    them (it was not run; an entry with no evidence at all still shows, as not verified)."""
    shadowed = {split_instance(n)[0] for n in named if split_instance(n)[1]}
    return [name for name in config.variants
            if name in named or (split_instance(name)[1] == "" and name not in shadowed)]


def sign_off(roots: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
             static: str | os.PathLike[str] | None = None, policy_dir: str | os.PathLike[str] | None = None,
             config_path: str | os.PathLike[str] | None = None, formats: Sequence[str] = tuple(FORMATS),
             baseline: str | None = None, known: Sequence[KnownFinding] | None = None,
             today: dt.date | None = None) -> SignOff:
    """Validate every input first (nothing is written on bad input), then compare and write the reports."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError("--format", f"unknown format(s) {', '.join(unknown)}", f"choose from {', '.join(FORMATS)}")
    report = build_signoff(roots, static=static, policy_dir=policy_dir, config_path=config_path,
                           baseline=baseline, known=known, today=today)
    written = write_reports(report, Path(out_dir), tuple(formats))
    return SignOff(report, written)
