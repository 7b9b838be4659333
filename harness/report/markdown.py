"""summary.md: short, verdict first, fit for $GITHUB_STEP_SUMMARY (GitHub-flavoured tables, capped lists)."""

from __future__ import annotations

from typing import Any

from harness.report.model import Report

SYMBOL = {"pass": "✅ pass", "fail": "❌ fail", "not-verified": "⚠️ not verified", "skipped": "⏭️ skipped"}
MAX_ROWS = 25


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    d = report.data
    v = d["verdict"]
    lines = [f"# {d['title']}", "", f"**{v['headline']}**", "",
             f"Baseline: `{d['baseline']}`. Checks: " + ", ".join(f"{n} {k}" for k, n in v["counts"].items()), ""]
    columns = [f"{variant}.{mode}" for mode in d["modes"] for variant in d["variants"]]
    lines += ["## Verdict matrix", "", "| scenario | " + " | ".join(columns) + " |",
              "|---|" + "---|" * len(columns)]
    for row in d["matrix"]:
        cells = []
        for col in columns:
            cell = row["cells"][col]
            text = SYMBOL[cell["status"]]
            if cell["blocking"]:
                text += f" ({cell['blocking']})"
            cells.append(text)
        lines.append(f"| {_cell(row['scenario'])} | " + " | ".join(cells) + " |")
    lines.append("")
    if d["differences"]:
        lines += [f"## Undeclared differences ({d['differences_total']})", "",
                  "| cell | finding | subject | message |", "|---|---|---|---|"]
        for f in d["differences"][:MAX_ROWS]:
            lines.append(f"| {_cell(f.get('cell', ''))} | `{f['id']}` | {_cell(f['subject'])} | {_cell(f['message'])} |")
        if d["differences_total"] > MAX_ROWS:
            lines.append(f"\n… {d['differences_total'] - MAX_ROWS} more in report.json / index.html")
        lines.append("")
    unverified = [(row["scenario"], col, reason) for row in d["matrix"] for col, cell in row["cells"].items()
                  for reason in cell["reasons"]]
    if unverified:
        lines += [f"## Not verified ({len(unverified)})", ""]
        lines += [f"- `{s}` {c}: {_cell(r)}" for s, c, r in unverified[:MAX_ROWS]]
        if len(unverified) > MAX_ROWS:
            lines.append(f"- … {len(unverified) - MAX_ROWS} more in report.json")
        lines.append("")
    if d["security"]:
        lines += ["## Security", ""] + [f"- ❌ {_cell(f['message'])}" for f in d["security"][:MAX_ROWS]] + [""]
    if d["declared"]:
        lines += ["## Declared differences (expected)", "", "| rule | seen | reference |", "|---|---|---|"]
        lines += [f"| `{r['rule']}` | {r['count']} | {_cell(r['reference'])} |" for r in d["declared"]]
        lines.append("")
    st = d["static"]
    lines += ["## Static tier", ""]
    if st["given"]:
        lines.append(f"{st['findings_total']} findings, {len(st['blocking'])} blocking; "
                     f"modes {', '.join(st['modes'])}.")
    else:
        lines.append("Not given: the static tier is **not verified**.")
    lines.append("")
    if d["timings"]:
        lines += ["## Timings (comparison, not a gate)", "",
                  "| scenario | mode | variant | wall time s | pods | driver median s | driver p90 s |",
                  "|---|---|---|---|---|---|---|"]
        for t in d["timings"][:MAX_ROWS]:
            lines.append(f"| {t['scenario']} | {t['mode']} | {t['variant']} | {t.get('wall_time_s')} | "
                         f"{t['pods_per_run']} | {t.get('driver_overhead_median_s', '-')} | "
                         f"{t.get('driver_overhead_p90_s', '-')} |")
        lines.append("")
    lines += ["## Sources", "", "| variant | live commit(s) | static commit |", "|---|---|---|"]
    for variant, src in d["sources"].items():
        live = ", ".join(f"`{s.get('commit', '')[:12]}`" for s in src["live"]) or "-"
        static = f"`{src['static']['commit'][:12]}`" if src["static"] and src["static"].get("commit") else "-"
        lines.append(f"| {variant} | {live} | {static} |")
    lines.append("")
    return "\n".join(lines)
