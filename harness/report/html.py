"""index.html: ONE self-contained file (inline CSS, no scripts, no external assets), from a jinja2 template."""

from __future__ import annotations

import json
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness.report.model import Report

LABEL = {"pass": "pass", "fail": "fail", "not-verified": "not verified", "skipped": "skipped"}


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("harness.report", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"], default=True), trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["label"] = lambda status: LABEL.get(status, status)
    env.filters["pretty"] = lambda value: json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)
    return env


def render_html(report: Report) -> str:
    d = report.data
    columns = [(variant, mode) for mode in d["modes"] for variant in d["variants"]]
    return _environment().get_template("report.html.j2").render(r=d, columns=columns)
