"""Drift attribution: did a variant's branch cause a static finding, or upstream moving between merge-bases?

Two PoC branches fork upstream at different commits (kfp-bases: sidecar-plugin at 81fc181b, central-driver at
7085e82d), so comparing the branches mixes what each branch changed with what upstream changed between the
two merge-bases. The same checks run over the bases (same variant names, each source swapped to its base; a
variant without a base is its own base), and each finding is matched to the bases' findings by cause
(`harness.judge.decisions.cause_key`), detail (`finding_detail`), mode, pair and overlay:

- not among the bases' findings: `branch` (a branch made it);
- there with the same message: `upstream-drift` (the bases differ the same way: no branch caused it);
- there with another message: `both` (upstream differs there, and a branch changed it further).

Bases are `--base NAME=SOURCE` (a path or git URL@REF, as --variant), or `--base NAME=merge-base:REF`: the
merge-base of the variant's checkout HEAD and REF (e.g. `upstream/master`), computed with `git merge-base`
in that checkout and exported with `git archive` into the cache (the checkout is never modified).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterable
from pathlib import Path

from harness.boundary.proc import Runner
from harness.errors import CommandFailedError, CommandTimeoutError, SourceError
from harness.judge.decisions import cause_key, finding_detail
from harness.models import Finding, Source

BRANCH, DRIFT, BOTH = "branch", "upstream-drift", "both"
ORIGINS = (BRANCH, BOTH, DRIFT)
MERGE_BASE = "merge-base:"


def drift_key(finding: Finding) -> tuple[object, ...]:
    return (cause_key(finding), finding_detail(finding), finding.mode, finding.variants,
            finding.evidence.get("overlay", ""))


def attribute(findings: Iterable[Finding], base_findings: Iterable[Finding]) -> list[Finding]:
    """`findings` with `origin` set by comparison with the findings between the bases."""
    messages: dict[tuple[object, ...], set[str]] = {}
    for finding in base_findings:
        messages.setdefault(drift_key(finding), set()).add(finding.message)
    attributed = []
    for finding in findings:
        seen = messages.get(drift_key(finding))
        origin = BRANCH if seen is None else DRIFT if finding.message in seen else BOTH
        attributed.append(dataclasses.replace(finding, origin=origin))
    return attributed


def merge_base_tree(source: Source, ref: str, cache_dir: Path, runner: Runner | None = None) -> Path:
    """The merge-base of `source`'s checkout HEAD and `ref`, exported (git archive) into the cache."""
    runner = runner or Runner()
    checkout = Path(source.path)
    fix = (f"give a ref that exists in {checkout} (fetch upstream first: git remote add upstream "
           "https://github.com/kubeflow/pipelines && git fetch upstream), or pass --base NAME=PATH")
    if not (checkout / ".git").exists():
        raise SourceError(f"--base {source.variant}={MERGE_BASE}{ref}: {checkout} is not a git checkout", fix)
    try:
        commit = runner.run(["git", "-C", str(checkout), "merge-base", "HEAD", ref], timeout=60).stdout.strip()
    except (CommandFailedError, CommandTimeoutError):
        raise SourceError(f"--base {source.variant}={MERGE_BASE}{ref}: no merge-base of HEAD and {ref!r} in "
                          f"{checkout}", fix) from None
    dest = cache_dir / "merge-bases" / commit
    if not (dest / "manifests").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(checkout), "archive", "--format=tar", commit],
                                 capture_output=True, timeout=600, check=False)
        if archive.returncode != 0:
            raise SourceError(f"cannot export {commit[:12]} from {checkout}", fix)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=600)
        (dest / "SOURCE.yaml").write_text(f"commit: {commit}\nref: merge-base of HEAD and {ref}\n"
                                          f"repository: {source.repository}\n")
    return dest
