"""The static conformance tier: renders, inventory diffs, validation, RBAC, cross-checks, orphans and
compiled-workflow comparison over the selected variants and modes, without a cluster.

Writes `static.json` (machine-readable) and `static.md` (a reviewer's summary). Each check is a
function over the renders; the pytest layer (`scenarios/test_static.py`) calls the same functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.boundary.collector import cycle_collection_paused
from harness.judge.decisions import KnownFinding, apply_known, group
from harness.models import Finding, Mode, Source
from harness.progress import Progress, silent
from harness.selection import Selection
from harness.static import registry as static_checks
from harness.static.context import (
    OVERLAYS,
    Check,
    Pair,
    Started,
    StaticContext,
    render_all,
    self_comparisons,
    variant_pairs,
)
from harness.static.drift import DRIFT, ORIGINS, attribute

SCHEMA_VERSION = "1.0"
Result = tuple[list[Finding], dict[str, Any]]


@dataclass
class StaticResult:
    findings: list[Finding]
    data: dict[str, Any]
    json_path: Path
    markdown_path: Path

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0


def iter_checks() -> Iterator[tuple[str, Check]]:
    yield from static_checks.CHECKS.items()


def run_static(selection: Selection, *, baseline_only: bool = False, self_check: bool = False,
               overlays: tuple[str, ...] = OVERLAYS, only: tuple[str, ...] = (),
               known: list[KnownFinding] | None = None, today: dt.date | None = None,
               bases: dict[str, Source] | None = None, hide_drift: bool = False,
               progress: Progress | None = None) -> StaticResult:
    """Run the checks and write static.json/static.md. `known` (a known-findings file) accepts findings;
    `today` decides which acceptances expired (the caller's clock). `bases` (each variant's upstream
    merge-base) gives every finding its origin (harness.static.drift): the same checks run over the bases first,
    written to `<out>/bases/`; `hide_drift` leaves upstream-only findings out of static.md."""

    with cycle_collection_paused():  # harness.boundary.collector: ~0.3 s of a cold run's Python CPU
        return _run_static(selection, baseline_only=baseline_only, self_check=self_check, overlays=overlays,
                           only=only, known=known, today=today, bases=bases, hide_drift=hide_drift,
                           progress=progress)


def _run_static(selection: Selection, *, baseline_only: bool, self_check: bool, overlays: tuple[str, ...],
                only: tuple[str, ...], known: list[KnownFinding] | None, today: dt.date | None,
                bases: dict[str, Source] | None, hide_drift: bool, progress: Progress | None) -> StaticResult:
    started = time.monotonic()
    ctx = StaticContext(selection, progress=progress or silent)
    pairs = variant_pairs(selection, baseline_only=baseline_only, self_check=self_check)
    checks = [(name, check) for name, check in iter_checks() if not only or name in only]
    timings: dict[str, float] = {}
    results: dict[tuple[str, str], Result] = {}

    def mode_checks(mode: Mode) -> None:
        """A mode's checks, run as soon as its renders exist (while kustomize renders the next modes)."""
        for number, (name, check) in enumerate(checks, 1):
            if name in static_checks.MODELESS:
                continue
            ctx.progress(f"check {number}/{len(checks)}: {name} ({mode.name})")
            check_started = time.monotonic()
            results[(name, mode.name)] = check(ctx, pairs, mode)
            timings[f"check:{name}"] = timings.get(f"check:{name}", 0.0) + time.monotonic() - check_started

    # Modeless checks (compiled workflows) read no render: started first, they run while kustomize does.
    modeless: dict[str, Started] = {}
    try:
        for number, (name, _check) in enumerate(checks, 1):
            if name in static_checks.MODELESS:
                ctx.progress(f"check {number}/{len(checks)}: {name} (started while kustomize renders)")
                modeless[name] = static_checks.MODELESS[name](ctx, pairs, selection.modes[0])
        # Each install's schema report is cached per render pair; computing it as soon as the render exists
        # overlaps it with the other renders' kustomize processes, and the check reads the cache.
        warm = (lambda install: ctx.validator.validate_install(install, selection.cache_dir)) \
            if any(name == "validate" for name, _ in checks) else None
        render_all(ctx, overlays, then=warm, mode_done=mode_checks)
        timings["render"] = time.monotonic() - started
        findings, data = _collect(ctx, checks, modeless, results, timings)
    finally:
        for early in modeless.values():
            early.end()
    omitted = 0
    if self_check:
        kept = self_comparisons(findings)
        omitted = len(findings) - len(kept)
        findings = kept
    if bases is not None:
        ctx.progress(f"the same checks over the merge-bases ({', '.join(sorted(bases))}), for origins")
        findings = attribute(findings, _base_findings(selection, bases, baseline_only=baseline_only,
                                                      self_check=self_check, overlays=overlays, only=only,
                                                      progress=ctx.progress))
    acceptance = apply_known(findings, known or [], today or dt.date.today())
    findings = sorted(acceptance.findings, key=lambda f: (f.mode, f.category, f.id, f.subject, f.message))
    timings["total"] = time.monotonic() - started
    # kustomize time as seen by the subprocess boundary (renders run in threads, so this can exceed wall time)
    timings["kustomize_process_seconds"] = sum(r.seconds for r in selection.renderer.runner.log
                                               if "kustomize" in r.argv)
    document = static_document(ctx, pairs, findings, data)
    document["known_findings"] = {
        "entries": len(known or []),
        "expired": [{"id": k.id, "subject": k.subject, "until": k.until.isoformat() if k.until else None}
                    for k in acceptance.expired],
        "unused": [{"id": k.id, "subject": k.subject} for k in acceptance.unused]}
    document["timings"] = {k: round(v, 3) for k, v in sorted(timings.items())}
    document["summary"]["self_check"] = self_check
    if bases is not None:
        document["bases"] = {name: src.to_dict() for name, src in sorted(bases.items())}
        document["summary"]["by_origin"] = {o: sum(1 for f in findings if f.origin == o) for o in ORIGINS}
        document["summary"]["hide_drift"] = hide_drift
    if self_check:
        document["summary"]["omitted_not_self_comparisons"] = omitted
    out = selection.out_dir
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "static.json"
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    md_path = out / "static.md"
    md_path.write_text(static_markdown(document))
    return StaticResult(findings, document, json_path, md_path)


def _base_findings(selection: Selection, bases: dict[str, Source], **options: Any) -> list[Finding]:
    """The same checks between the bases (same variant names), written to `<out>/bases/` as evidence."""
    swapped = dataclasses.replace(selection, sources={**selection.sources, **bases},
                                  out_dir=selection.out_dir / "bases")
    return run_static(swapped, **options).findings


def _collect(ctx: StaticContext, checks: list[tuple[str, Check]], modeless: dict[str, Started],
             results: dict[tuple[str, str], Result], timings: dict[str, float]) -> tuple[list[Finding], dict[str, Any]]:
    """Findings and data of every check in registry order, each mode in selection order (the order they had
    when the checks ran one after the other); a modeless check's result comes from its early start (its
    timing is then only the wait for it)."""
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for name, _check in checks:
        if name in modeless:  # e.g. compiled workflows: one pass per variant pair
            check_started = time.monotonic()
            found, details = modeless[name].result()
            findings.extend(found)
            data[name] = details
            timings[f"check:{name}"] = time.monotonic() - check_started
        else:
            for mode in ctx.selection.modes:
                found, details = results[(name, mode.name)]
                findings.extend(found)
                data.setdefault(name, {})[mode.name] = details
    return findings, data


def static_document(ctx: StaticContext, pairs: list[Pair], findings: list[Finding],
                    data: dict[str, Any]) -> dict[str, Any]:
    sel = ctx.selection
    blocking = [f for f in findings if f.blocking]
    decisions = group(findings)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "kfp-conformance", "version": __version__, **sel.renderer.versions()},
        "config": sel.config.path,
        "baseline": sel.baseline,
        "modes": [m.name for m in sel.modes],
        "pairs": [p.label for p in pairs],
        "sources": {name: src.to_dict() for name, src in sorted(sel.sources.items())},
        "renders": {f"{v}.{m}.{w}": {"cluster_scoped": r.cluster_scoped.summary(), "overlay": r.overlay.summary(),
                                      "resources": len(r.manifests)}
                    for (v, m, w), r in sorted(ctx.renders.items())},
        **data,
        "findings": [f.to_dict() for f in findings],
        "decisions": [_with_origins(d) for d in decisions],
        "summary": {
            "findings": len(findings),
            "blocking": len(blocking),
            "blocking_decisions": sum(1 for d in decisions if d.blocking),
            "decisions": len(decisions),
            "accepted": sum(1 for f in findings if f.accepted),
            "by_severity": dict(sorted(Counter(f.severity.value for f in findings).items())),
            "by_category": dict(sorted(Counter(f.category for f in findings).items())),
            "expected": sum(1 for f in findings if f.expected),
            "verdict": "fail" if blocking else "pass",
        },
    }


def _with_origins(decision: Any) -> dict[str, Any]:
    """A decision's dict plus the origins of its findings (with --base; harness.static.drift)."""
    origins = sorted({f.origin for f in decision.findings if f.origin}, key=ORIGINS.index)
    return {**decision.to_dict(), **({"origins": origins} if origins else {})}


def _drift_only(item: dict[str, Any]) -> bool:
    """A decision or finding that only upstream drift between the merge-bases explains."""
    return item.get("origins", [item.get("origin")]) == [DRIFT]


def _origin_lines(doc: dict[str, Any]) -> list[str]:
    """The origin summary and table (with --base): the branches' own findings apart from upstream drift."""
    by_origin = doc["summary"].get("by_origin")
    if by_origin is None:
        return []
    bases = ", ".join(f"{name} at `{src['commit'][:12]}`" for name, src in doc.get("bases", {}).items())
    lines = ["## Findings by origin", "", f"Each variant against its upstream merge-base ({bases}): `branch` = "
             "the branch made it; `upstream-drift` = the bases already differ the same way; `both` = upstream "
             "differs there and a branch changed it further.", "",
             "| origin | findings | blocking | decisions |", "|---|---|---|---|"]
    for origin in ORIGINS:
        found = [f for f in doc["findings"] if f.get("origin") == origin]
        decisions = [d for d in doc.get("decisions", []) if origin in d.get("origins", [])]
        lines.append(f"| {origin} | {by_origin.get(origin, 0)} | {sum(1 for f in found if _blocks(f))} | "
                     f"{len(decisions)} |")
    return [*lines, ""]


def _blocks(finding: dict[str, Any]) -> bool:
    return Finding.from_dict(finding).blocking


def static_markdown(doc: dict[str, Any], *, max_per_section: int = 40) -> str:
    """A reviewer's summary: verdict, what blocks (one decision per cause, with what to do), sources with
    commits, then the rest. Every list says how many entries it hides and where they are."""
    summary = doc["summary"]
    decisions = doc.get("decisions", [])
    blocking = [d for d in decisions if d["blocking"]]
    known = doc.get("known_findings") or {}
    lines = [
        "# kfp-conformance static tier",
        "",
        f"**Verdict: {'FAIL' if summary['blocking'] else 'PASS'}** — {len(blocking)} blocking decision(s) "
        f"({summary['blocking']} blocking finding(s)); {summary['findings']} finding(s) in all, "
        f"{summary['expected']} declared expected, {summary.get('accepted', 0)} accepted. "
        f"Modes: {', '.join(doc['modes'])}. Pairs: {', '.join(doc['pairs']) or 'none'}.",
        "",
        *([f"Self-check: each tree compared with itself; {summary.get('omitted_not_self_comparisons', 0)} "
           "per-tree or cross-tree finding(s) left out (the normal run reports them).", ""]
          if summary.get("self_check") else []),
        *([f"Known findings: {known['entries']} entr{'y' if known['entries'] == 1 else 'ies'}; "
           f"{len(known.get('expired', []))} expired (they block again), "
           f"{len(known.get('unused', []))} match nothing any more (remove them).", ""] if known.get("entries") else []),
    ]
    hide = bool(summary.get("hide_drift"))
    hidden = [d for d in blocking if hide and _drift_only(d)]
    lines += _decision_section("What blocks", [d for d in blocking if d not in hidden], max_per_section,
                               with_action=True)
    if hidden:
        lines += [f"{len(hidden)} blocking decision(s) grouping {sum(d['blocking_findings'] for d in hidden)} "
                  "finding(s) come only from upstream drift between the merge-bases and are hidden here "
                  "(--hide-drift): see `decisions` with `origins: [upstream-drift]` in static.json.", ""]
    accepted = [d for d in decisions if d["accepted"] and not d["blocking"]]
    lines += _decision_section("Accepted", accepted, max_per_section, with_action=False)
    lines += _origin_lines(doc)
    lines += ["## Sources", "", "| variant | repository | ref | commit | origin |", "|---|---|---|---|---|"]
    for name, src in doc["sources"].items():
        lines.append(f"| {name} | {src['repository']} | {src['ref']} | `{src['commit'][:12]}` | {src['origin']} |")
    tool = doc["tool"]
    lines += ["", f"Rendered with kubectl {tool.get('kubectl')} / kustomize {tool.get('kustomize')} "
                  f"(pinned: {tool.get('pinned')}).", ""]
    lines += ["## Findings by category", "", "| category | error | warning | info |", "|---|---|---|---|"]
    table: dict[str, Counter[str]] = {}
    for f in doc["findings"]:
        table.setdefault(f["category"], Counter())[f["severity"]] += 1
    for category, counts in sorted(table.items()):
        lines.append(f"| {category} | {counts['error']} | {counts['warning']} | {counts['info']} |")
    for title, keep in (("Warnings", lambda f: f["severity"] == "warning" and not f["expected"]),
                        ("Declared expected differences", lambda f: f["expected"])):
        chosen = [f for f in doc["findings"] if keep(f)]
        drift = [f for f in chosen if summary.get("hide_drift") and _drift_only(f)]
        chosen = [f for f in chosen if f not in drift]
        if drift:
            lines += ["", f"{title}: {len(drift)} finding(s) only from upstream drift hidden (--hide-drift); "
                          "static.json lists them."]
        if not chosen:
            continue
        groups = _group_findings(chosen)
        lines += ["", f"## {title} ({len(chosen)} finding(s), {len(groups)} distinct)", ""]
        for (fid, variants, subject, message), (modes, overlays) in list(groups.items())[:max_per_section]:
            where = ", ".join(m for m in doc["modes"] + ["all"] if m in modes)
            also = f" ({'/'.join(sorted(overlays))} overlay)" if overlays else ""
            lines.append(f"- `{fid}` [{where}]{also} {', '.join(variants)} — **{subject}**: {message}")
        if len(groups) > max_per_section:
            lines.append(f"- … {len(groups) - max_per_section} more (not shown here): see `findings` in static.json")
    return "\n".join(lines) + "\n"


def _decision_section(title: str, decisions: list[dict[str, Any]], limit: int, *, with_action: bool) -> list[str]:
    if not decisions:
        return []
    key = "blocking_findings" if with_action else "accepted_findings"
    findings = sum(d[key] for d in decisions)
    lines = [f"## {title} ({len(decisions)} decision(s) grouping {findings} {key.split('_')[0]} finding(s))", ""]
    for number, d in enumerate(decisions[:limit], 1):
        where = f"modes {', '.join(d['modes'])}; pairs {', '.join(d['pairs'])}" + \
            (f"; {'/'.join(d['overlays'])} overlay" if d["overlays"] else "")
        origin = f" [origin: {', '.join(d['origins'])}]" if d.get("origins") else ""
        lines.append(f"{number}. `{d['check']}` **{d['subject']}** — {d['message']}{origin}")
        lines.append(f"   - where: {where} ({d['findings']} finding(s))")
        lines.append(f"   - {'what to do: ' + d['action'] if with_action else 'accepted: ' + d['accepted']}")
    if len(decisions) > limit:
        lines.append(f"- … {len(decisions) - limit} more (not shown here): see `decisions` in static.json")
    return [*lines, ""]


def _group_findings(findings: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...], str, str], tuple[set[str], set[str]]]:
    """The same finding in several modes or overlays is one line: a reviewer reads each fact once."""
    groups: dict[tuple[str, tuple[str, ...], str, str], tuple[set[str], set[str]]] = {}
    for f in sorted(findings, key=lambda f: (f["category"], f["id"], f["subject"], f["message"])):
        modes, overlays = groups.setdefault((f["id"], tuple(f["variants"]), f["subject"], f["message"]), (set(), set()))
        modes.add(f["mode"])
        if f["evidence"].get("overlay"):
            overlays.add(f["evidence"]["overlay"])
    return groups
