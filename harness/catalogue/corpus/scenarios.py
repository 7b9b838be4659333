"""Corpus entries as `Scenario`s for the live plan, and per-variant coverage for the static report."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.catalogue.corpus.entry import CorpusEntry, CorpusReader, load_corpus
from harness.catalogue.corpus.exclusions import ExclusionRule, load_exclusions, skips_for
from harness.config import Config
from harness.errors import SourceError
from harness.models import SAME_AS_BASELINE, Finding, Scenario, Severity, Source


def corpus_scenarios(
    config: Config,
    tree: Path | str | Source,
    *,
    folders: Sequence[str] = (),
    glob: str = "*",
    exclusions: str | os.PathLike[str] | Sequence[ExclusionRule] | None = None,
) -> list[Scenario]:
    """The corpus of `tree` (normally the baseline variant's) as scenarios for the live plan.

    Outputs are `{"*": {"*": SAME_AS_BASELINE}}`: no declared values exist, so every node output must
    equal the baseline variant's. A file that does not parse stops here with one line (validate first).
    """
    root = Path(tree.path if isinstance(tree, Source) else tree)
    entries = load_corpus(root, folders=folders, glob=glob)
    broken = [e for e in entries if e.error]
    if broken:
        first = broken[0]
        raise SourceError(f"{len(broken)} corpus file(s) do not parse, first {first.path}: {first.error}",
                          "narrow the selection with --folder/--glob, or fix the tree")
    rules = exclusions if isinstance(exclusions, Sequence) and not isinstance(exclusions, str) \
        else load_exclusions(exclusions, config=config)
    return [scenario_from_entry(e, rules, config) for e in entries]


def scenario_from_entry(entry: CorpusEntry, rules: Iterable[ExclusionRule], config: Config) -> Scenario:
    return Scenario(
        name=entry.name, origin="corpus", pipeline_file=entry.file, arguments=dict(entry.arguments),
        expected_state=entry.expected_state, tags=entry.tags,
        expected_outputs={"*": {"*": SAME_AS_BASELINE}},
        driver_outputs=entry.driver_outputs, skips=skips_for(entry, rules, config), upstream_path=entry.path,
        description=f"KFP E2E corpus pipeline {entry.pipeline_name} ({entry.folder})",
    )


def parse_findings(entries: Iterable[CorpusEntry], variant: str) -> list[Finding]:
    return [
        Finding(id="corpus.parse-error", severity=Severity.ERROR, category="corpus", mode="*",
                variants=(variant,), subject=e.path, message=f"corpus file does not parse: {e.error}",
                evidence={"file": e.path, "digest": e.digest})
        for e in entries if e.error
    ]


@dataclass(frozen=True)
class Coverage:
    """Which corpus pipelines (by scenario name) each variant's tree has, and where."""

    variants: tuple[str, ...]
    rows: dict[str, dict[str, CorpusEntry | None]]  # scenario name -> variant -> entry (None: missing)

    def present(self, variant: str) -> list[CorpusEntry]:
        return [row[variant] for row in self.rows.values() if row.get(variant) is not None]  # type: ignore[misc]

    def missing(self, variant: str) -> list[str]:
        return [name for name, row in self.rows.items() if row.get(variant) is None]

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        for name, row in self.rows.items():
            have = {v: e for v, e in row.items() if e is not None}
            subject = next(iter(have.values())).path
            lacking = tuple(v for v in self.variants if v not in have)
            if lacking:
                found.append(Finding(
                    id="corpus.missing-in-variant", severity=Severity.WARNING, category="corpus", mode="*",
                    variants=lacking, subject=subject,
                    message=f"{name} is not in the corpus of {', '.join(lacking)}: not covered there",
                    evidence={v: e.path for v, e in have.items()}))
            if len({e.folder for e in have.values()}) > 1:
                found.append(Finding(
                    id="corpus.folder-differs", severity=Severity.INFO, category="corpus", mode="*",
                    variants=tuple(have), subject=subject,
                    message=f"{name} is in different folders: " + ", ".join(f"{v} {e.folder}" for v, e in have.items()),
                    evidence={v: e.path for v, e in have.items()}))
            if len({e.digest for e in have.values()}) > 1:
                found.append(Finding(
                    id="corpus.content-differs", severity=Severity.INFO, category="corpus", mode="*",
                    variants=tuple(have), subject=subject,
                    message=f"{name} differs between trees (compiled by different SDK versions or edited)",
                    evidence={v: {"path": e.path, "sha256": e.digest} for v, e in have.items()}))
        return found

    def summary(self, rules: Sequence[ExclusionRule] = (), config: Config | None = None) -> dict[str, Any]:
        """Per variant: pipelines per folder, missing ones, driver outputs and features exercised, skipped."""
        out: dict[str, Any] = {}
        for variant in self.variants:
            entries = self.present(variant)
            skipped_everywhere = [
                e.name for e in entries if config is not None and e.error == "" and
                len(skips_for(e, rules, _only(config, variant))) == len(config.modes)]
            runnable = [e for e in entries if not e.error and e.name not in skipped_everywhere]
            out[variant] = {
                "pipelines": len(entries),
                "per_folder": dict(Counter(e.folder for e in entries)),
                "missing": self.missing(variant),
                "skipped_everywhere": skipped_everywhere,
                "errors": [e.path for e in entries if e.error],
                "driver_outputs": dict(Counter(o for e in runnable for o in e.driver_outputs)),
                "features": dict(Counter(f for e in runnable for f in e.features)),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"variants": list(self.variants),
                "rows": {n: {v: (e.path if e else None) for v, e in row.items()} for n, row in self.rows.items()}}


def _only(config: Config, variant: str) -> Config:
    return replace(config, variants={variant: config.variant(variant)})


def corpus_coverage(trees: Mapping[str, Path], *, folders: Sequence[str] = (), glob: str = "*",
                    reader: CorpusReader | None = None) -> Coverage:
    """Load the same selection from every variant's tree and line the files up by scenario name; one reader
    (the caller's, else a new one) parses the files the trees share once."""
    reader = reader or CorpusReader()
    loaded = {variant: reader.corpus(tree, folders=folders, glob=glob) for variant, tree in trees.items()}
    names = sorted({e.name for entries in loaded.values() for e in entries})
    rows = {name: {v: next((e for e in entries if e.name == name), None) for v, entries in loaded.items()}
            for name in names}
    return Coverage(variants=tuple(trees), rows=rows)


