"""The sign-off report model: one plain, JSON-ready dict built from comparisons (and static.json).

Every writer (json, markdown, html, junit) renders this dict and nothing else, so the four outputs always
agree. The dict is deterministic: sorted keys and lists, no clock, no input paths; only values from the
inputs. Text that came from evidence passes through the credential redaction again before it gets here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.compare import RBAC_ROW, Cell, Comparison
from harness.models import Finding
from harness.policy import Policy
from harness.redact import redact
from harness.verdict import Check, Status, Verdict, combine, judge, overall

REPORT_VERSION = "1.0"
STATIC_ROW = "static-tier"
MAX_LISTED = 300  # findings listed per section in report.json; the rest are counted


@dataclass(frozen=True)
class Report:
    data: dict[str, Any]

    @property
    def verdict(self) -> Verdict:
        v = self.data["verdict"]
        return Verdict(Status(v["status"]), v["headline"], v["ready"], v["counts"])


def _clean(value: Any) -> Any:
    """Redact every string (a last line of defence: evidence is redacted at the boundaries already)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _finding(f: Finding, cell: Cell | None = None) -> dict[str, Any]:
    data = f.to_dict()
    data["blocking"] = f.blocking
    if cell is not None:
        data["cell"] = f"{cell.scenario}/{cell.variant}.{cell.mode}"
    return data


def _finding_key(d: dict[str, Any]) -> tuple[str, ...]:
    return (d.get("cell", ""), d["id"], d["subject"], d["message"])


def _check(c: Check, cell: Cell) -> dict[str, Any]:
    return {"name": c.name, "status": c.status.value, "reason": c.reason,
            "findings": [_finding(f, cell) for f in c.findings]}


def static_cells(static: Mapping[str, Any] | None, modes: Sequence[str], variants: Sequence[str],
                 baseline: str, policy: Policy) -> list[Cell]:
    """The static tier as one verdict-matrix row: its findings per mode × variant, or why not verified."""
    cells: list[Cell] = []
    if static is None:
        for mode in modes:
            for variant in variants:
                cells.append(Cell(STATIC_ROW, mode, variant, (judge("static", not_verified=(
                    "no static.json given (run `kfp-conformance static` and pass --static)")),)))
        return cells
    covered_modes = set(static.get("modes") or [])
    covered_variants = set((static.get("sources") or {}).keys())
    findings = [policy.classify(Finding.from_dict(d)) for d in static.get("findings") or []]
    for mode in modes:
        for variant in variants:
            if mode not in covered_modes or variant not in covered_variants:
                cells.append(Cell(STATIC_ROW, mode, variant, (judge("static", not_verified=(
                    f"static.json does not cover {variant}.{mode}")),)))
                continue
            mine = []
            for f in findings:
                if f.mode not in (mode, "", "*", "all"):
                    continue
                others = [v for v in f.variants if v != baseline] or list(f.variants)
                if variant in others:
                    mine.append(f)
            cells.append(Cell(STATIC_ROW, mode, variant, (judge("static", mine),)))
    return cells


def build_report(comparisons: Sequence[Comparison], *, variants: Sequence[str], baseline: str, policy: Policy,
                 static: Mapping[str, Any] | None = None, inputs: Iterable[dict[str, Any]] = (),
                 unfinished: Sequence[str] = (), title: str = "kfp-conformance sign-off report") -> Report:
    """The report dict. `inputs` describes each bundle read; `unfinished` names bundle dirs without bundle.json."""
    modes = sorted({c.mode for c in comparisons} | set((static or {}).get("modes") or []))
    cells: list[Cell] = [cell for c in comparisons for cell in c.cells]
    for key in sorted(unfinished):  # "<scenario>/<variant>.<mode>"
        scenario, pair = key.rsplit("/", 1)
        variant, mode = pair.split(".", 1)
        cells.append(Cell(scenario, mode, variant, (judge("evidence", not_verified=(
            "the collector did not finish (no bundle.json)")),)))
    cells = _dedupe_cells(cells)  # an unfinished dir replaces the "no bundle" cell of its key
    cells.extend(static_cells(static, modes, variants, baseline, policy))
    scenarios = sorted({c.scenario for c in cells if c.scenario not in (RBAC_ROW, STATIC_ROW)})
    rows = [*scenarios, RBAC_ROW, STATIC_ROW]
    by_key = {(c.scenario, c.mode, c.variant): c for c in cells}
    for row in rows:  # every matrix cell exists; one without evidence is not verified
        for mode in modes:
            for variant in variants:
                if (row, mode, variant) not in by_key:
                    by_key[(row, mode, variant)] = Cell(row, mode, variant, (judge(
                        "evidence", not_verified=f"no evidence for {row} on {variant}.{mode}"),))
    cells = list(by_key.values())
    verdict = overall(check for cell in cells for check in cell.checks)
    matrix = []
    for row in rows:
        entry: dict[str, Any] = {"scenario": row, "cells": {}}
        for mode in modes:
            for variant in variants:
                cell = by_key[(row, mode, variant)]
                findings = cell.findings
                entry["cells"][f"{variant}.{mode}"] = {
                    "status": cell.status.value,
                    "blocking": sum(1 for f in findings if f.blocking),
                    "expected": sum(1 for f in findings if f.expected),
                    "reasons": sorted({f"{c.name}: {c.reason}" for c in cell.checks
                                       if c.status in (Status.NOT_VERIFIED, Status.SKIPPED)}),
                }
        entry["status"] = combine(Status(v["status"]) for v in entry["cells"].values()).value
        matrix.append(entry)

    differences = sorted((_finding(f, cell) for cell in cells for f in cell.findings if f.blocking),
                         key=_finding_key)
    declared_counts: Counter[str] = Counter()
    declared_examples: dict[str, dict[str, Any]] = {}
    for cell in cells:
        for f in cell.findings:
            if f.expected:
                rule = f.evidence.get("declared_by", "")
                declared_counts[rule] += 1
                example = _finding(f, cell)
                if rule not in declared_examples or _finding_key(example) < _finding_key(declared_examples[rule]):
                    declared_examples[rule] = example
    rules = {r.id: r for r in policy.rules}
    declared = [{"rule": rule, "count": count,
                 "description": rules[rule].description if rule in rules else "",
                 "reference": rules[rule].reference if rule in rules else "",
                 "example": declared_examples[rule]}
                for rule, count in sorted(declared_counts.items())]
    warnings = sorted((_finding(f, cell) for cell in cells for f in cell.findings
                       if not f.blocking and not f.expected and f.severity.value != "info"), key=_finding_key)
    security = sorted((_finding(f, cell) for cell in cells for f in cell.findings if f.category == "security"),
                      key=_finding_key)
    rbac: dict[str, dict[str, Any]] = {}
    for mode in modes:
        live = sorted((_finding(f, cell) for cell in cells if cell.scenario == RBAC_ROW and cell.mode == mode
                       for f in cell.findings), key=_finding_key)
        static_rbac = sorted((_finding(f, cell) for cell in cells if cell.scenario == STATIC_ROW
                              and cell.mode == mode for f in cell.findings if f.category == "rbac"),
                             key=_finding_key)
        rbac[mode] = {"live": live, "static": _dedupe_findings(static_rbac)}

    timings = []
    sources: dict[str, dict[str, Any]] = {}
    for comparison in comparisons:
        for variant, metrics in sorted(comparison.timings.items()):
            timings.append({"scenario": comparison.scenario, "mode": comparison.mode, "variant": variant,
                            **metrics})
        for variant, source in comparison.sources.items():
            sources.setdefault(variant, {"live": set(), "static": None})["live"].add(
                json.dumps(source, sort_keys=True))
    for variant, source in ((static or {}).get("sources") or {}).items():
        sources.setdefault(variant, {"live": set(), "static": None})["static"] = {
            k: source.get(k) for k in ("commit", "ref", "repository", "origin", "dirty") if k in source}
    source_table = {v: {"live": [json.loads(s) for s in sorted(d["live"])], "static": d["static"]}
                    for v, d in sorted(sources.items())}

    checks_out = []
    for cell in sorted(cells, key=lambda c: (rows.index(c.scenario), c.mode, c.variant)):  # all are in rows
        checks_out.append({"scenario": cell.scenario, "mode": cell.mode, "variant": cell.variant,
                           "status": cell.status.value,
                           "checks": [_check(c, cell) for c in cell.checks]})
    for entry in checks_out:  # cap very long finding lists per check
        for check in entry["checks"]:
            if len(check["findings"]) > MAX_LISTED:
                check["omitted"] = len(check["findings"]) - MAX_LISTED
                check["findings"] = check["findings"][:MAX_LISTED]

    data = {
        "report_version": REPORT_VERSION,
        "title": title,
        "verdict": {"status": verdict.status.value, "headline": verdict.headline, "ready": verdict.ready,
                    "counts": verdict.counts},
        "baseline": baseline,
        "variants": list(variants),
        "modes": modes,
        "matrix": matrix,
        "cells": checks_out,
        "differences": differences[:MAX_LISTED],
        "differences_total": len(differences),
        "declared": declared,
        "warnings": warnings[:MAX_LISTED],
        "warnings_total": len(warnings),
        "security": security,
        "rbac": rbac,
        "static": _static_summary(static),
        "timings": sorted(timings, key=lambda t: (t["scenario"], t["mode"], t["variant"])),
        "sources": source_table,
        "policy": {"files": list(policy.files),
                   "rules": [{"id": r.id, "description": r.description, "reference": r.reference,
                              "matched": declared_counts.get(r.id, 0)} for r in policy.rules],
                   "timing_gates": [{"metric": g.metric, "max_ratio": g.max_ratio, "variants": list(g.variants)}
                                    for g in policy.timing_gates]},
        "inputs": sorted(inputs, key=lambda i: json.dumps(i, sort_keys=True)),
        "unfinished": sorted(unfinished),
    }
    return Report(_clean(data))


def _dedupe_cells(cells: list[Cell]) -> list[Cell]:
    seen: dict[tuple[str, str, str], Cell] = {}
    for cell in cells:
        seen[(cell.scenario, cell.mode, cell.variant)] = cell
    return list(seen.values())


def _dedupe_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, ...], dict[str, Any]] = {}
    for f in findings:
        seen.setdefault((f["id"], f["subject"], f["message"]), f)
    return list(seen.values())


def _static_summary(static: Mapping[str, Any] | None) -> dict[str, Any]:
    if static is None:
        return {"given": False}
    findings = [Finding.from_dict(d) for d in static.get("findings") or []]
    blocking = [f for f in findings if f.blocking]
    return {
        "given": True,
        "schema_version": static.get("schema_version"),
        "modes": list(static.get("modes") or []),
        "pairs": list(static.get("pairs") or []),
        "summary": static.get("summary") or {},
        "findings_total": len(findings),
        "blocking": sorted((_finding(f) for f in blocking), key=_finding_key)[:MAX_LISTED],
        "by_category": dict(sorted(Counter(f.category for f in findings).items())),
    }
