"""The sign-off report model: one plain, JSON-ready dict built from comparisons (and static.json).

Every writer (json, markdown, html, junit) renders this dict and nothing else, so the four outputs always
agree. The dict is deterministic: sorted keys and lists, no clock, no input paths; only values from the
inputs. Text that came from evidence passes through the credential redaction again before it gets here.

What a release manager acts on is `decisions`: the static tier's and the live tier's findings grouped by
cause with harness.judge.decisions.group (the same grouping as static.md), each with what to do and where it
applies. Every count shown anywhere is in `verdict` (harness.judge.verdict.overall computes them once).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.boundary.redact import redact
from harness.judge.compare import RBAC_ROW, Cell, Comparison
from harness.judge.decisions import KnownFinding, apply_known, cause_key, group
from harness.judge.policy import Policy
from harness.judge.verdict import Check, Status, Verdict, combine, judge, overall, unique_findings
from harness.models import Finding, Severity

REPORT_VERSION = "2.0"  # 2.0: decisions, one set of counts in verdict
STATIC_ROW = "static-tier"
MAX_LISTED = 300  # findings (and decisions) listed per section in report.json; the rest are counted
MAX_CELLS = 12  # cells named per decision; the rest are counted
MAX_EXAMPLES = 3  # example findings (with evidence) per decision
SOURCES_ROW = "sources"  # matrix row shown only when live bundles and static.json disagree on a commit


@dataclass(frozen=True)
class Report:
    data: dict[str, Any]
    # every finding once (not serialised): for --write-known-findings, which needs all of them
    findings: tuple[Finding, ...] = field(default=(), compare=False, repr=False)

    @property
    def verdict(self) -> Verdict:
        return Verdict.from_dict(self.data["verdict"])


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
        data["cell"] = _cell_key(cell)
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


def commit_mismatches(comparisons: Sequence[Comparison], static: Mapping[str, Any] | None,
                      variants: Sequence[str]) -> list[Finding]:
    """One blocking finding per variant whose evidence comes from more than one commit: live bundles built
    from different commits, or live bundles and static.json from different commits. Such a report mixes
    two builds, so it can be read (a warning on top) but not signed off (an error)."""
    live: dict[str, set[str]] = {}
    for comparison in comparisons:
        for variant, source in comparison.sources.items():
            if source.get("commit"):
                live.setdefault(variant, set()).add(str(source["commit"]))
    static_sources = (static or {}).get("sources") or {}
    found = []
    for variant in variants:
        commits = sorted(live.get(variant, ()))
        static_commit = str((static_sources.get(variant) or {}).get("commit") or "")
        short = ", ".join(c[:12] for c in commits)
        if len(commits) > 1:
            found.append(Finding(
                "sources.live-commits-differ", Severity.ERROR, "sources", "all", (variant,), f"variant {variant}",
                f"the live bundles of {variant} were built from {len(commits)} commits ({short})",
                {"live_commits": commits, "static_commit": static_commit}))
        elif commits and static_commit and static_commit not in commits:
            found.append(Finding(
                "sources.static-commit-differs", Severity.ERROR, "sources", "all", (variant,),
                f"variant {variant}",
                f"the live bundles of {variant} were built from {short}, static.json from {static_commit[:12]}",
                {"live_commits": commits, "static_commit": static_commit}))
    return found


def _accept(cells: list[Cell], known: Sequence[KnownFinding], today: dt.date) -> tuple[list[Cell], dict[str, Any]]:
    """Findings a known-findings file accepts no longer block; each check is judged again. A finding shown in
    several cells (one static finding, two variants) stays one object, so it is still counted once."""
    findings = unique_findings(c for cell in cells for c in cell.checks)
    acceptance = apply_known(findings, list(known), today)
    replaced = {id(old): new for old, new in zip(findings, acceptance.findings)}
    out = []
    for cell in cells:
        checks = []
        for check in cell.checks:
            mine = [replaced.get(id(f), f) for f in check.findings]
            reason = check.reason
            checks.append(judge(check.name, mine, not_verified=reason if check.status is Status.NOT_VERIFIED else "",
                                skipped=reason if check.status is Status.SKIPPED else ""))
        out.append(Cell(cell.scenario, cell.mode, cell.variant, tuple(checks)))
    info = {"entries": len(known),
            "expired": [{"id": k.id, "subject": k.subject, "until": k.until.isoformat() if k.until else None}
                        for k in acceptance.expired],
            "unused": [{"id": k.id, "subject": k.subject} for k in acceptance.unused]}
    return out, info


def _cell_key(cell: Cell) -> str:
    return f"{cell.scenario}/{cell.variant}.{cell.mode}"


def _decisions(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Blocking and accepted decisions (one per cause), each with where it applies and example evidence."""
    where: dict[int, list[str]] = {}
    for cell in cells:
        for f in cell.findings:
            where.setdefault(id(f), []).append(_cell_key(cell))
    out = []
    for d in group(unique_findings(c for cell in cells for c in cell.checks)):
        if not d.blocking and not d.accepted:
            continue
        keys = sorted({k for f in d.findings for k in where.get(id(f), ())})
        shown = [f for f in d.findings if f.blocking] or [f for f in d.findings if f.accepted]
        tiers = sorted({"static" if k.startswith(f"{STATIC_ROW}/") else
                        "sources" if k.startswith(f"{SOURCES_ROW}/") else "live" for k in keys})
        examples = sorted((_finding(f) | {"cells": sorted(set(where.get(id(f), ())))[:MAX_CELLS]}
                           for f in shown), key=_finding_key)[:MAX_EXAMPLES]
        out.append(d.to_dict() | {"key": "::".join(cause_key(d.findings[0])), "tiers": tiers,
                                  "cells": keys[:MAX_CELLS], "cells_total": len(keys), "examples": examples,
                                  "examples_total": len(shown)})
    return out


def _not_verified(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Checks that could not run, grouped by (check, reason): one line per reason, naming the cells."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for cell in cells:
        for c in cell.checks:
            if c.status in (Status.NOT_VERIFIED, Status.SKIPPED):
                # "no evidence for X on v.m" is one reason for many cells: name the cells, not the reason
                reason = c.reason.replace(f"{cell.variant}.{cell.mode}", "{variant}.{mode}") \
                    .replace(cell.scenario, "{scenario}")
                groups.setdefault((c.name, c.status.value, reason), []).append(_cell_key(cell))
    out = [{"check": name, "status": status, "reason": reason, "count": len(keys),
            "cells": sorted(keys)[:MAX_CELLS]} for (name, status, reason), keys in groups.items()]
    return sorted(out, key=lambda g: (-g["count"], g["check"], g["reason"]))


def build_report(comparisons: Sequence[Comparison], *, variants: Sequence[str], baseline: str, policy: Policy,
                 static: Mapping[str, Any] | None = None, inputs: Iterable[dict[str, Any]] = (),
                 unfinished: Sequence[str] = (), known: Sequence[KnownFinding] | None = None,
                 today: dt.date | None = None, title: str = "kfp-conformance sign-off report") -> Report:
    """The report dict. `inputs` describes each bundle read; `unfinished` names bundle dirs without bundle.json;
    `known` (a known-findings file) accepts findings as of `today` (the caller's clock: the model has none)."""
    modes = sorted({c.mode for c in comparisons} | set((static or {}).get("modes") or []))
    cells: list[Cell] = [cell for c in comparisons for cell in c.cells]
    for key in sorted(unfinished):  # "<scenario>/<variant>.<mode>"
        scenario, pair = key.rsplit("/", 1)
        variant, mode = pair.split(".", 1)
        cells.append(Cell(scenario, mode, variant, (judge("evidence", not_verified=(
            "the collector did not finish (no bundle.json)")),)))
    cells = _dedupe_cells(cells)  # an unfinished dir replaces the "no bundle" cell of its key
    cells.extend(static_cells(static, modes, variants, baseline, policy))
    mismatches = commit_mismatches(comparisons, static, variants)
    for mode in modes if mismatches else ():
        for variant in variants:
            mine = [f for f in mismatches if variant in f.variants]
            cells.append(Cell(SOURCES_ROW, mode, variant, (judge("commits", mine),)))
    scenarios = sorted({c.scenario for c in cells if c.scenario not in (RBAC_ROW, STATIC_ROW, SOURCES_ROW)})
    rows = [*scenarios, RBAC_ROW, STATIC_ROW, *([SOURCES_ROW] if mismatches else [])]
    by_key = {(c.scenario, c.mode, c.variant): c for c in cells}
    for row in rows:  # every matrix cell exists; one without evidence is not verified
        for mode in modes:
            for variant in variants:
                if (row, mode, variant) not in by_key:
                    by_key[(row, mode, variant)] = Cell(row, mode, variant, (judge(
                        "evidence", not_verified=f"no evidence for {row} on {variant}.{mode}"),))
    cells = list(by_key.values())
    known_info: dict[str, Any] = {"entries": 0, "expired": [], "unused": []}
    if known:
        cells, known_info = _accept(cells, known, today or dt.date.today())
        by_key = {(c.scenario, c.mode, c.variant): c for c in cells}
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
                    # in decisions, like every blocking count: causes that block in this cell
                    "blocking": len({cause_key(f) for f in findings if f.blocking}),
                    "accepted": len({cause_key(f) for f in findings if f.accepted}),
                    "expected": sum(1 for f in findings if f.expected),
                    "reasons": sorted({f"{c.name}: {c.reason}" for c in cell.checks
                                       if c.status in (Status.NOT_VERIFIED, Status.SKIPPED)}),
                }
        entry["status"] = combine(Status(v["status"]) for v in entry["cells"].values()).value
        matrix.append(entry)

    decisions = _decisions(cells)
    blocking_decisions = [d for d in decisions if d["blocking"]]
    accepted_decisions = [d for d in decisions if not d["blocking"]]
    not_verified = _not_verified(cells)
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
        "verdict": verdict.to_dict(),
        "baseline": baseline,
        "variants": list(variants),
        "modes": modes,
        "matrix": matrix,
        "cells": checks_out,
        "decisions": blocking_decisions[:MAX_LISTED],
        "accepted": accepted_decisions[:MAX_LISTED],
        "not_verified": not_verified[:MAX_LISTED],
        "not_verified_groups": len(not_verified),
        "known_findings": known_info,
        "mismatches": [_finding(f) for f in mismatches],
        "declared": declared,
        "warnings": warnings[:MAX_LISTED],
        "warnings_total": len(warnings),
        "security": security,
        "rbac": rbac,
        "static": _static_summary(static, cells),
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
    return Report(_clean(data), tuple(unique_findings(c for cell in cells for c in cell.checks)))


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


def _static_summary(static: Mapping[str, Any] | None, cells: Sequence[Cell]) -> dict[str, Any]:
    """The static tier's share of the verdict's counts (from the same cells, so they add up), and its size."""
    if static is None:
        return {"given": False}
    mine = unique_findings(c for cell in cells if cell.scenario == STATIC_ROW for c in cell.checks)
    decisions = group(mine)
    return {
        "given": True,
        "schema_version": static.get("schema_version"),
        "modes": list(static.get("modes") or []),
        "pairs": list(static.get("pairs") or []),
        "findings_total": len(static.get("findings") or []),
        "blocking_decisions": sum(1 for d in decisions if d.blocking),
        "blocking_findings": sum(1 for f in mine if f.blocking),
        "accepted_findings": sum(1 for f in mine if f.accepted),
        "by_category": dict(sorted(Counter(str(d.get("category")) for d in static.get("findings") or []).items())),
    }
