"""The sign-off report: `model.py` builds one deterministic dict; `json`, `markdown`, `html` and `junit`
are pure writers over it. `write_reports` writes the formats asked for into one directory."""

from __future__ import annotations

from pathlib import Path

from harness.report.model import Report, build_report

FORMATS = {"json": "report.json", "md": "summary.md", "html": "index.html", "junit": "junit.xml"}


def write_reports(report: Report, out_dir: Path, formats: tuple[str, ...] = tuple(FORMATS)) -> dict[str, Path]:
    from harness.report import html, json, junit, markdown

    writers = {"json": json.render_json, "md": markdown.render_markdown, "html": html.render_html,
               "junit": junit.render_junit}
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in formats:
        path = out_dir / FORMATS[fmt]
        path.write_text(writers[fmt](report), encoding="utf-8")
        written[fmt] = path
    return written


__all__ = ["FORMATS", "Report", "build_report", "write_reports"]
