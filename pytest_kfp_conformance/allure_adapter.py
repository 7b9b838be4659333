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

from harness.boundary.redact import redact
from harness.evidence.bundle import Bundle
from harness.evidence.compact import Evidence
from harness.report.model import Report

# Allure categories (categories.json): the first whose regex matches a failed test's message wins. The
# messages are scenarios/test_compare.py's: "N blocking decision(s) in CELL:\n- CHECK SUBJECT: ..." (one line
# per decision), or the verdict's headline; skips start with "not verified:" or "NOT VERIFIED".
CATEGORIES = [
    {"name": "Evidence from different commits (re-run from one commit)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*\bsources\.(live-commits-differ|static-commit-differs)\b.*"},
    {"name": "Secret leaked into logs or evidence", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*\bsecurity\.secret-leak\b.*"},
    {"name": "Run behaves differently (outputs, DAG, states, driver)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*\n- (output|dag|task|run|driver|failure|oracle|logs|timing)\.[a-z-]+ .*"},
    {"name": "Permissions differ (RBAC)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*\n- rbac\.[a-z-]+ .*"},
    {"name": "Install differs (static tier: inventory, network, TLS, images, workflows)",
     "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*\n- (inventory|network|tls|image|workflow|validation|orphan|hardening|exposure|"
                     r"credential|migration)\.[a-z-]+ .*"},
    {"name": "Not ready to sign off (the verdict)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s)NOT READY: .*"},
    {"name": "Not verified: evidence missing (cannot sign off)", "matchedStatuses": ["skipped"],
     "messageRegex": r"(?s).*(no evidence|no bundle|did not finish|partial|not given|does not cover).*"},
    {"name": "Not verified: a check could not run (cannot sign off)", "matchedStatuses": ["skipped"],
     "messageRegex": r"(?s).*(not verified|NOT VERIFIED).*"},
    {"name": "Harness errors (bugs)", "matchedStatuses": ["broken"]},
]


def label_cell(scenario: str, variant: str, mode: str) -> None:
    """Allure suites per variant x mode (scenario tests inside), readable parameters and title."""
    allure.dynamic.parent_suite("kfp-conformance")
    allure.dynamic.suite(f"{variant} x {mode}")
    allure.dynamic.sub_suite(scenario)
    allure.dynamic.title(f"{scenario} on {variant} ({mode})")
    for name, value in (("scenario", scenario), ("variant", variant), ("mode", mode)):
        allure.dynamic.parameter(name, value)


def label_verdict(data: Mapping[str, Any]) -> None:
    """The whole report's verdict as one test with its counts as parameters."""
    v = data["verdict"]
    allure.dynamic.parent_suite("kfp-conformance")
    allure.dynamic.suite("verdict")
    allure.dynamic.title(v["headline"])
    for name in ("blocking_decisions", "blocking_findings", "accepted_decisions", "not_verified"):
        allure.dynamic.parameter(name.replace("_", " "), v[name])
    allure.attach(_json({"verdict": v, "decisions": data["decisions"], "accepted": data["accepted"],
                         "not_verified": data["not_verified"]}), name="verdict and decisions",
                  attachment_type=AttachmentType.JSON)


def attach_cell(cell: Mapping[str, Any]) -> None:
    """One attachment per check of a report cell (`report.data["cells"]`, what `build_signoff` returns to the CLI
    and the pytest layer alike) that has findings or a reason, plus its diffs."""
    for check in cell["checks"]:
        if not check["findings"] and not check["reason"]:
            continue
        allure.attach(_json(check), name=f"{cell['variant']}.{cell['mode']} {check['name']}",
                      attachment_type=AttachmentType.JSON)
        diffs = [f"{f['id']} {f['subject']}\n{f['evidence']['diff']}" for f in check["findings"]
                 if f["evidence"].get("diff")]
        if diffs:
            allure.attach(redact("\n\n".join(diffs)), name=f"{cell['variant']}.{cell['mode']} {check['name']} diff",
                          attachment_type=AttachmentType.TEXT)


def _json(value: Any) -> str:
    return redact(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str))


def attach_findings(name: str, findings: list[Any]) -> None:
    """Findings of a static check (with their evidence) as one JSON attachment."""
    if findings:
        allure.attach(_json([f.to_dict() | {"blocking": f.blocking} for f in findings]), name=name,
                      attachment_type=AttachmentType.JSON)


def attach_bundle_logs(bundle: Bundle | Evidence, limit: int = 20) -> None:
    """The bundle's log files (redacted), driver logs first."""
    driver = list(bundle.data["driver_logs"]["files"])
    names = driver + sorted(n for n in bundle.files if n.endswith(".log") and n not in driver)
    for name in names[:limit]:
        if name in bundle.files:
            allure.attach(redact(bundle.read_text(name)), name=f"{bundle.variant}.{bundle.mode} {name}",
                          attachment_type=AttachmentType.TEXT)


def attach_rbac_matrix(bundle: Bundle | Evidence) -> None:
    if bundle.data.get("rbac"):
        allure.attach(_json(bundle.data["rbac"]), name=f"{bundle.variant}.{bundle.mode} SAR matrix",
                      attachment_type=AttachmentType.JSON)


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
