"""index.html: ONE self-contained file (inline CSS, no scripts, no external assets), from a jinja2 template.

Layout for a release manager: the first screen (1366x768 and up) holds the verdict, what blocks, what is not
verified and what is accepted; a table of contents links (in-page anchors only) to the rest. Evidence is
collapsed (<details>) and shown as tables, with the raw JSON one more click away.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from harness.report.model import Report

LABEL = {"pass": "pass", "fail": "fail", "not-verified": "not verified", "skipped": "skipped"}
MAX_TABLE_ROWS = 40  # rows of one evidence table; the rest are in the raw JSON beside it
MAX_DEPTH = 4  # deeper evidence is shown as compact JSON


def _scalar(value: Any) -> Markup:
    if isinstance(value, str) and "\n" in value:
        return Markup("<pre>") + escape(value) + Markup("</pre>")
    if value is None:
        return Markup('<span class="small">(none)</span>')
    return escape(value if isinstance(value, str) else json.dumps(value))


def _more(hidden: int) -> Markup:
    return Markup(f'<div class="small">{hidden} more in the raw JSON</div>') if hidden > 0 else Markup("")


def evidence_table(value: Any, depth: int = 0) -> Markup:
    """Evidence as readable HTML tables: a mapping is a key/value table, a list of mappings a table with one
    column per key, a list of plain values one line; long lists say how many rows the raw JSON adds."""
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return Markup("<code>") + escape(json.dumps(value, sort_keys=True, ensure_ascii=False)) + Markup("</code>")
    if isinstance(value, dict):
        if not value:
            return Markup('<span class="small">(empty)</span>')
        rows = [Markup("<tr><th>") + escape(k) + Markup("</th><td>") + evidence_table(v, depth + 1) +
                Markup("</td></tr>") for k, v in sorted(value.items())]
        return Markup('<table class="kv">') + Markup("").join(rows) + Markup("</table>")
    if isinstance(value, list):
        if not value:
            return Markup('<span class="small">(empty)</span>')
        shown = value[:MAX_TABLE_ROWS]
        if all(isinstance(v, dict) for v in shown):
            keys = sorted({k for v in shown for k in v})
            head = Markup("<tr>") + Markup("").join(Markup("<th>") + escape(k) + Markup("</th>") for k in keys)
            body = Markup("").join(
                Markup("<tr>") + Markup("").join(Markup("<td>") + (evidence_table(v[k], depth + 1) if k in v else
                                                                   Markup("")) + Markup("</td>") for k in keys)
                + Markup("</tr>") for v in shown)
            return Markup('<table class="rows">') + head + Markup("</tr>") + body + Markup("</table>") + \
                _more(len(value) - len(shown))
        if all(not isinstance(v, dict | list) for v in shown):
            return Markup(", ").join(_scalar(v) for v in shown) + _more(len(value) - len(shown))
        return Markup("<ol>") + Markup("").join(Markup("<li>") + evidence_table(v, depth + 1) + Markup("</li>")
                                                for v in shown) + Markup("</ol>") + _more(len(value) - len(shown))
    return _scalar(value)


# cached: the package's own templates, constant for the process like an import; no run data
@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("harness.report", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"], default=True), trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["label"] = lambda status: LABEL.get(status, status)
    env.filters["pretty"] = lambda value: json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)
    env.filters["evidence"] = evidence_table
    return env


def render_html(report: Report) -> str:
    d = report.data
    columns = [(variant, mode) for mode in d["modes"] for variant in d["variants"]]
    return _environment().get_template("report.html.j2").render(r=d, v=d["verdict"], columns=columns)
