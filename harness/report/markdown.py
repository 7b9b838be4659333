"""summary.md: verdict first, then what blocks (one decision per cause, with what to do), what is not
verified and what is accepted; fit for $GITHUB_STEP_SUMMARY (GitHub-flavoured tables, <details> for the
long parts). Every count comes from the report's `verdict`; every cut list says how many it hides and where."""

from __future__ import annotations

from typing import Any

from harness.report.model import Report

SYMBOL = {"pass": "✅ pass", "fail": "❌ fail", "not-verified": "⚠️ not verified", "skipped": "⏭️ skipped"}
MAX_ROWS = 25


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _more(shown: int, total: int, where: str) -> list[str]:
    return [f"- … {total - shown} more (not shown here): see {where}"] if total > shown else []


def _where(d: dict[str, Any]) -> str:
    parts = [f"modes {', '.join(d['modes'])}"]
    if d["pairs"]:
        parts.append(f"pairs {', '.join(d['pairs'])}")
    if d["overlays"]:
        parts.append(f"{'/'.join(d['overlays'])} overlay")
    cells = ", ".join(f"`{c}`" for c in d["cells"])
    hidden = d["cells_total"] - len(d["cells"])
    parts.append(f"cells {cells}" + (f" and {hidden} more (report.json)" if hidden else ""))
    return "; ".join(parts)


def render_markdown(report: Report) -> str:
    d = report.data
    v = d["verdict"]
    lines = [f"# {d['title']}", "", f"**{v['headline']}**", "",
             f"Baseline `{d['baseline']}`. {v['checks']} checks: " +
             ", ".join(f"{n} {k}" for k, n in v["counts"].items()) + ". " +
             f"Blocking: {v['blocking_decisions']} decision(s) ({v['blocking_findings']} finding(s)); "
             f"accepted: {v['accepted_decisions']} decision(s) ({v['accepted_findings']} finding(s)); "
             f"not verified: {v['not_verified']} check(s).", ""]
    for m in d["mismatches"]:
        lines += [f"> [!WARNING]\n> {_cell(m['message'])}: this report mixes builds and cannot be signed off.", ""]
    lines += [f"## What blocks ({v['blocking_decisions']} decision(s), {v['blocking_findings']} finding(s))", ""]
    if not d["decisions"]:
        lines += ["Nothing.", ""]
    for number, dec in enumerate(d["decisions"][:MAX_ROWS], 1):
        lines += [f"{number}. `{dec['check']}` **{_cell(dec['subject'])}** ({'/'.join(dec['tiers'])}, "
                  f"{dec['blocking_findings']} finding(s)) — {_cell(dec['message'])}",
                  f"   - what to do: {dec['action']}",
                  f"   - where: {_where(dec)}"]
    lines += _more(min(len(d["decisions"]), MAX_ROWS), v["blocking_decisions"],
                   "index.html#blocking or `decisions` in report.json")
    lines.append("")
    lines += [f"## Not verified ({v['not_verified']} check(s), {d['not_verified_groups']} reason(s))", ""]
    if not d["not_verified"]:
        lines += ["Everything was verified.", ""]
    for g in d["not_verified"][:MAX_ROWS]:
        lines.append(f"- `{g['check']}` on {g['count']} cell(s) ({', '.join(f'`{c}`' for c in g['cells'][:3])}"
                     f"{', …' if g['count'] > 3 else ''}): {_cell(g['reason'])}")
    lines += _more(min(len(d["not_verified"]), MAX_ROWS), d["not_verified_groups"],
                   "index.html#not-verified or `not_verified` in report.json")
    lines.append("")
    lines += [f"## Accepted ({v['accepted_decisions']} decision(s), {v['accepted_findings']} finding(s))", ""]
    if not d["accepted"]:
        lines += ["None.", ""]
    for dec in d["accepted"][:MAX_ROWS]:
        lines.append(f"- `{dec['check']}` **{_cell(dec['subject'])}**: {_cell(dec['accepted'])}")
    lines += _more(min(len(d["accepted"]), MAX_ROWS), v["accepted_decisions"],
                   "index.html#accepted or `accepted` in report.json")
    known = d["known_findings"]
    if known["expired"] or known["unused"]:
        lines += [f"- known-findings file: {len(known['expired'])} entr(y/ies) expired (they block again), "
                  f"{len(known['unused'])} match nothing any more (remove them)"]
    lines.append("")
    columns = [f"{variant}.{mode}" for mode in d["modes"] for variant in d["variants"]]
    lines += ["<details><summary>Verdict matrix (number: blocking decisions in the cell)</summary>", "",
              "| scenario | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in d["matrix"]:
        cells = []
        for col in columns:
            cell = row["cells"][col]
            cells.append(SYMBOL[cell["status"]] + (f" ({cell['blocking']})" if cell["blocking"] else ""))
        lines.append(f"| {_cell(row['scenario'])} | " + " | ".join(cells) + " |")
    lines += ["", "</details>", ""]
    if d["security"]:
        lines += ["## Security", ""] + [f"- ❌ {_cell(f['message'])}" for f in d["security"][:MAX_ROWS]]
        lines += _more(min(len(d["security"]), MAX_ROWS), len(d["security"]), "index.html#security")
        lines.append("")
    if d["declared"]:
        lines += ["<details><summary>Declared differences (expected, not failures)</summary>", "",
                  "| rule | seen | reference |", "|---|---|---|"]
        lines += [f"| `{r['rule']}` | {r['count']} | {_cell(r['reference'])} |" for r in d["declared"]]
        lines += ["", "</details>", ""]
    st = d["static"]
    lines += ["## Static tier", ""]
    if st["given"]:
        lines.append(f"{st['blocking_decisions']} blocking decision(s) ({st['blocking_findings']} finding(s)) of "
                     f"{st['findings_total']} finding(s); modes {', '.join(st['modes'])}.")
    else:
        lines.append("Not given: the static tier is **not verified**.")
    lines.append("")
    if d["timings"]:
        lines += ["<details><summary>Timings (a comparison, not a gate)</summary>", "",
                  "| scenario | mode | variant | wall time s | pods | driver median s | driver p90 s |",
                  "|---|---|---|---|---|---|---|"]
        for t in d["timings"][:MAX_ROWS]:
            lines.append(f"| {t['scenario']} | {t['mode']} | {t['variant']} | {t.get('wall_time_s')} | "
                         f"{t['pods_per_run']} | {t.get('driver_overhead_median_s', '-')} | "
                         f"{t.get('driver_overhead_p90_s', '-')} |")
        lines += _more(min(len(d["timings"]), MAX_ROWS), len(d["timings"]), "index.html#timings")
        lines += ["", "</details>", ""]
    lines += ["## Sources", "", "| variant | live commit(s) | static commit |", "|---|---|---|"]
    for variant, src in d["sources"].items():
        live = ", ".join(f"`{s.get('commit', '')[:12]}`" for s in src["live"]) or "-"
        static = f"`{src['static']['commit'][:12]}`" if src["static"] and src["static"].get("commit") else "-"
        lines.append(f"| {variant} | {live} | {static} |")
    lines.append("")
    return "\n".join(lines)
