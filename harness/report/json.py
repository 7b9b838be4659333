"""report.json: the report dict as canonical JSON (sorted keys, fixed indent): byte-identical per input."""

from __future__ import annotations

import json

from harness.report.model import Report


def render_json(report: Report) -> str:
    return json.dumps(report.data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
