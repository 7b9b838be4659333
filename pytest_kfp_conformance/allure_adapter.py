"""Allure adapter: puts the comparison's evidence into Allure results through allure-pytest's public API.

pytest layer only (harness/ never imports allure or pytest). Every `allure.attach` is a no-op when
allure-pytest is not listening (no `--alluredir`), so tests call these unconditionally. Attachments are
redacted again before they leave the process. Categories and environment are plain files in the results
directory, in the format Allure documents (categories.json, environment.properties).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import allure
from allure_commons.types import AttachmentType

from harness.bundle import Bundle
from harness.compare import Cell
from harness.redact import redact
from harness.report.model import Report

CATEGORIES = [
    {"name": "Undeclared differences between variants", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*(differs|missing|extra|gained|lost|location).*"},
    {"name": "Secret leaks", "matchedStatuses": ["failed"], "messageRegex": r"(?s).*security\.secret-leak.*"},
    {"name": "Not verified (cannot sign off)", "matchedStatuses": ["skipped"],
     "messageRegex": r"(?s).*(not.verified|no bundle|no evidence|not given).*"},
    {"name": "Harness errors (bugs)", "matchedStatuses": ["broken"]},
]


def _json(value: Any) -> str:
    return redact(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str))


def attach_cell(cell: Cell) -> None:
    """One attachment per check that has findings: the findings with their evidence (diffs, matrices)."""
    for check in cell.checks:
        if not check.findings and not check.reason:
            continue
        body = {"status": check.status.value, "reason": check.reason,
                "findings": [f.to_dict() | {"blocking": f.blocking} for f in check.findings]}
        allure.attach(_json(body), name=f"{cell.variant}.{cell.mode} {check.name}",
                      attachment_type=AttachmentType.JSON)
        diffs = [f"{f.id} {f.subject}\n{f.evidence['diff']}" for f in check.findings if f.evidence.get("diff")]
        if diffs:
            allure.attach(redact("\n\n".join(diffs)), name=f"{cell.variant}.{cell.mode} {check.name} diff",
                          attachment_type=AttachmentType.TEXT)


def attach_findings(name: str, findings: list[Any]) -> None:
    """Findings of a static check (with their evidence) as one JSON attachment."""
    if findings:
        allure.attach(_json([f.to_dict() | {"blocking": f.blocking} for f in findings]), name=name,
                      attachment_type=AttachmentType.JSON)


def attach_bundle_logs(bundle: Bundle, limit: int = 20) -> None:
    """The bundle's log files (redacted), driver logs first."""
    driver = list(bundle.data["driver_logs"]["files"])
    names = driver + sorted(n for n in bundle.files if n.endswith(".log") and n not in driver)
    for name in names[:limit]:
        if name in bundle.files:
            allure.attach(redact(bundle.read_text(name)), name=f"{bundle.variant}.{bundle.mode} {name}",
                          attachment_type=AttachmentType.TEXT)


def attach_rbac_matrix(bundle: Bundle) -> None:
    if bundle.data.get("rbac"):
        allure.attach(_json(bundle.data["rbac"]), name=f"{bundle.variant}.{bundle.mode} SAR matrix",
                      attachment_type=AttachmentType.JSON)


def attach_report(written: Mapping[str, Path]) -> None:
    """The sign-off report files (html, markdown, json) as attachments."""
    types = {"html": AttachmentType.HTML, "md": AttachmentType.TEXT, "json": AttachmentType.JSON,
             "junit": AttachmentType.XML}
    for fmt, path in sorted(written.items()):
        allure.attach.file(str(path), name=f"sign-off {path.name}", attachment_type=types[fmt])


def write_allure_metadata(results_dir: str | Path, report: Report | None = None,
                          environment: Mapping[str, str] | None = None) -> None:
    """categories.json and environment.properties (baseline, variants, modes, source commits, verdict)."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n")
    env: dict[str, str] = dict(environment or {})
    if report is not None:
        d = report.data
        env.update({"baseline": d["baseline"], "variants": ",".join(d["variants"]), "modes": ",".join(d["modes"]),
                    "verdict": d["verdict"]["headline"]})
        for variant, source in d["sources"].items():
            commits = sorted({s.get("commit", "") for s in source["live"]})
            if source["static"] and source["static"].get("commit"):
                commits.append(f"static:{source['static']['commit']}")
            env[f"source.{variant}"] = " ".join(commits)
    lines = [f"{key}={redact(str(value)).replace(chr(10), ' ')}" for key, value in sorted(env.items())]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n")


def pytest_sessionfinish(session: Any) -> None:
    """With --alluredir, always leave categories and a minimal environment next to the results."""
    results = getattr(session.config.option, "allure_report_dir", None)
    if results:
        from harness import __version__

        write_allure_metadata(results, environment={"kfp-conformance": __version__})
