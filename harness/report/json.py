"""report.json: the report dict as canonical JSON (sorted keys, fixed indent): byte-identical per input."""

from __future__ import annotations

from harness.evidence.bundle import dump_json
from harness.report.model import Report


def render_json(report: Report) -> str:
    return dump_json(report.data)
