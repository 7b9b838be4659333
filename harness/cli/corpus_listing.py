"""`kfp-conformance scenarios --corpus` (a command: it prints): list the corpus of one tree, counts per folder, coverage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.catalogue.corpus.entry import (
    CORPUS_DIR,
    FOLDER_DIRS,
    CorpusEntry,
    CorpusReader,
    load_corpus,
    parse_folders,
)
from harness.catalogue.corpus.exclusions import ExclusionRule, load_exclusions, matching_rules, skips_for
from harness.catalogue.corpus.scenarios import Coverage, corpus_coverage, parse_findings
from harness.cli.common import default_cache_dir
from harness.config import Config, load_config
from harness.errors import SourceError
from harness.models import Finding, Source
from harness.render.sources import resolve_source
from harness.selection import choose_baseline, parse_variant_args


def main_corpus(args: argparse.Namespace) -> int:
    """`kfp-conformance scenarios --corpus`: one row per corpus pipeline, counts per folder, coverage.

    Exit 0; 1 when a corpus file does not parse (reported as a finding); 2 for bad input.
    """
    config = load_config(getattr(args, "config", None))
    folders = parse_folders(_as_list(getattr(args, "folder", None)))
    glob = getattr(args, "glob", None) or "*"
    fmt = getattr(args, "format", None) or "text"
    sources_dir = getattr(args, "sources", None) or os.environ.get("KFPC_SOURCES") or None
    if sources_dir and not Path(sources_dir).is_dir():
        raise SourceError(f"--sources {sources_dir} is not a directory",
                          "point --sources (or KFPC_SOURCES) at a directory with one KFP tree per variant")
    given = parse_variant_args(_as_list(getattr(args, "variant", None)), config) if getattr(args, "variant", None) \
        else []
    config = config.with_instances([n for n, _ in given])
    specs = dict(given)
    entries_only = [n for n in config.variants if ":" not in n]
    if len(specs) > 1:  # the compared variants are those given; the listed tree is the baseline among them
        compared = list(specs)
        name = choose_baseline(config, compared)
    elif specs:  # one tree given: list it, and compare it with the other entries
        name = next(iter(specs))
        compared = [name if n == config.variant(name).entry else n for n in entries_only]
    else:
        name, compared = config.baseline, entries_only
    rules = load_exclusions(getattr(args, "exclusions", None) or os.environ.get("KFPC_CORPUS_EXCLUSIONS"),
                            config=config)
    source = _resolve(name, specs.get(name) or config.variant(name).source, sources_dir, args)
    reader = CorpusReader()  # one listing: the trees' shared files are parsed once
    entries = load_corpus(Path(source.path), folders=folders, glob=glob, reader=reader)

    # Coverage needs every compared variant's tree: from --variant NAME=SOURCE, the config's source, or
    # --sources DIR/NAME; computed whenever all are known, else the note says which are missing.
    coverage: Coverage | None = None
    trees: dict[str, Path] = {}
    absent: list[str] = []
    for variant in compared:
        spec = specs.get(variant) or config.variant(variant).source
        if not spec and not sources_dir:
            absent.append(variant)
            continue
        tree = Path(source.path) if variant == name else Path(_resolve(variant, spec, sources_dir, args).path) \
            if spec else Path(sources_dir or "") / config.variant(variant).entry
        if (tree / CORPUS_DIR).is_dir():
            trees[variant] = tree
        else:
            absent.append(variant)
    if absent and sources_dir:
        coverage_note = (f"coverage not computed: no corpus for {', '.join(absent)} under {sources_dir} (pass "
                         "--variant NAME=SOURCE for each)")
    elif absent:
        coverage_note = ("coverage not computed: pass --sources DIR (env KFPC_SOURCES) with every variant's tree, "
                         f"or --variant NAME=SOURCE for {', '.join(absent)}")
    else:
        coverage_note = ""
        coverage = corpus_coverage(trees, folders=folders, glob=glob, reader=reader)

    findings = parse_findings(entries, name) + (coverage.findings() if coverage else [])
    if fmt == "json":
        print(json.dumps(_json_report(config, name, source, folders, glob, entries, rules, coverage,
                                      coverage_note, findings), indent=2, default=str))
    else:
        _print_text(config, name, source, folders, glob, entries, rules, coverage, coverage_note, findings)
    return 1 if any(e.error for e in entries) else 0


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _resolve(name: str, spec: str, sources_dir: str | None, args: argparse.Namespace) -> Source:
    cache_arg = getattr(args, "cache_dir", None)
    return resolve_source(spec, name, sources_dir=Path(sources_dir) if sources_dir else None,
                          cache_dir=Path(cache_arg) if cache_arg else default_cache_dir())


def _skip_text(entry: CorpusEntry, rules: Sequence[ExclusionRule]) -> str:
    return "; ".join(f"{r.scope}: {r.reason} [{r.id}]" for r in matching_rules(entry, rules))


def folder_counts(entries: Iterable[CorpusEntry], rules: Sequence[ExclusionRule]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        row = counts.setdefault(entry.folder, {"pipelines": 0, "skipped": 0, "errors": 0})
        row["pipelines"] += 1
        row["skipped"] += bool(matching_rules(entry, rules))
        row["errors"] += bool(entry.error)
    return counts


def _json_report(config: Config, variant: str, source: Source, folders: Sequence[str], glob: str,
                 entries: list[CorpusEntry], rules: Sequence[ExclusionRule], coverage: Coverage | None,
                 coverage_note: str, findings: list[Finding]) -> dict[str, Any]:
    return {
        "variant": variant, "source": source.to_dict(), "folders": list(folders), "glob": glob,
        "pipelines": [{**e.to_dict(), "skips": skips_for(e, rules, config), "skip_rules": [
            {"id": r.id, "scope": r.scope, "reason": r.reason} for r in matching_rules(e, rules)]}
            for e in entries],
        "counts": folder_counts(entries, rules),
        "coverage": ({**coverage.to_dict(), "summary": coverage.summary(rules, config)} if coverage
                     else {"note": coverage_note}),
        "findings": [f.to_dict() for f in findings],
    }


def _print_text(config: Config, variant: str, source: Source, folders: Sequence[str], glob: str,
                entries: list[CorpusEntry], rules: Sequence[ExclusionRule], coverage: Coverage | None,
                coverage_note: str, findings: list[Finding]) -> None:
    def out(line: str = "") -> None:
        print(line, file=sys.stdout)

    commit = f" @ {source.commit[:12]}" if source.commit else ""
    out(f"KFP corpus of {variant} ({source.path}{commit}); folders {', '.join(folders)}; glob {glob}")
    for e in entries:
        if e.error:
            out(f"{e.path}  tags={','.join(e.tags)}  ERROR {e.error}")
            continue
        cells = [
            e.path, f"tags={','.join(e.tags)}", f"state={e.expected_state}",
            f"images={','.join(e.images) or '-'}", f"features={','.join(e.features) or '-'}",
            f"driver-outputs={','.join(e.driver_outputs) or '-'}",
        ]
        skip = _skip_text(e, rules)
        if skip:
            cells.append(f"skip={skip}")
        out("  ".join(cells))
    out()
    out("Counts per folder:")
    for folder, row in folder_counts(entries, rules).items():
        out(f"  {folder}: {row['pipelines']} pipelines, {row['skipped']} with skips, {row['errors']} errors")
    absent = [f for f in folders if not (Path(source.path) / CORPUS_DIR / FOLDER_DIRS[f]).is_dir()]
    for folder in absent:
        out(f"  {folder}: not in this tree")
    out(f"  total: {len(entries)}")
    out()
    if coverage is None:
        out(coverage_note)
    else:
        out("Coverage per variant:")
        for v, info in coverage.summary(rules, config).items():
            per_folder = ", ".join(f"{k} {n}" for k, n in info["per_folder"].items())
            out(f"  {v}: {info['pipelines']} pipelines ({per_folder}); missing {len(info['missing'])}"
                f"{': ' + ', '.join(info['missing']) if info['missing'] else ''}; "
                f"skipped everywhere {len(info['skipped_everywhere'])}")
            outputs = ", ".join(f"{k} {n}" for k, n in sorted(info["driver_outputs"].items()))
            out(f"    driver outputs exercised by runnable pipelines: {outputs or '-'}")
    for finding in findings:
        out(f"{finding.severity.value}: {finding.id}: {finding.subject}: {finding.message}")
