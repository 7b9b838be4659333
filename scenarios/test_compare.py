"""The sign-off report as pytest tests, agreeing with `kfp-conformance report` on the same bundles.

Both build the report with harness.report.signoff.build_signoff, so the verdict cannot differ:
- `test_cell[scenario-variant-mode]`: one test per verdict-matrix cell (live scenarios, rbac-live, the static
  tier, and `sources` when commits disagree). It fails on a blocking decision in the cell, and is skipped
  ("not verified", never passed) when a check could not run.
- `test_verdict`: the report's verdict. It passes only when the CLI would exit 0, fails with the headline and
  the decisions (what to do) when the CLI says NOT READY, and is skipped when it says NOT VERIFIED.

Allure (with --alluredir): suites per variant x mode, parameters scenario/variant/mode, findings and logs
attached, categories.json by cause. Run:
pytest scenarios/test_compare.py --kfpc-bundles DIR [--kfpc-static static.json] [--kfpc-known-findings FILE]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pytest_kfp_conformance import allure_adapter

REPORT_KEY = pytest.StashKey[Any]()


def _report(config: pytest.Config) -> tuple[Any, list[Any]]:
    """(report, bundles) for the --kfpc-* options, built once per session with the CLI's function."""
    if REPORT_KEY not in config.stash:
        from harness.errors import HarnessError
        from harness.judge.decisions import load_known_findings
        from harness.report.signoff import build_signoff, load_bundles

        problem = ""
        try:
            roots = config.getoption("--kfpc-bundles")
            known_file = config.getoption("--kfpc-known-findings")
            known = load_known_findings(known_file) if known_file else None
            report = build_signoff(roots, static=config.getoption("--kfpc-static"),
                                   policy_dir=config.getoption("--kfpc-policy"),
                                   config_path=config.getoption("--kfpc-config"), known=known,
                                   today=dt.date.today())
            bundles, _ = load_bundles(roots)
        except HarnessError as exc:
            problem = exc.line()
        if problem:
            pytest.fail(f"kfp-conformance: {problem}", pytrace=False)
        config.stash[REPORT_KEY] = (report, bundles)
    return config.stash[REPORT_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "report_cell" not in metafunc.fixturenames:
        return
    if not metafunc.config.getoption("--kfpc-bundles"):
        metafunc.parametrize("report_cell", [pytest.param(None, marks=pytest.mark.skip(
            reason="no evidence bundles given (pass --kfpc-bundles out/<run-id>): not verified"))], ids=["no-bundles"])
        return
    report, _ = _report(metafunc.config)
    cells = report.data["cells"]
    metafunc.parametrize("report_cell", cells, ids=[f"{c['scenario']}-{c['variant']}-{c['mode']}" for c in cells])


def test_cell(report_cell: dict[str, Any], pytestconfig: pytest.Config) -> None:
    cell = report_cell
    report, bundles = _report(pytestconfig)
    allure_adapter.label_cell(cell["scenario"], cell["variant"], cell["mode"])
    allure_adapter.attach_cell(cell)
    for bundle in bundles:
        if (bundle.scenario, bundle.variant, bundle.mode) == (cell["scenario"], cell["variant"], cell["mode"]):
            allure_adapter.attach_bundle_logs(bundle)
            allure_adapter.attach_rbac_matrix(bundle)
    key = f"{cell['scenario']}/{cell['variant']}.{cell['mode']}"
    mine = [d for d in report.data["decisions"] if key in d["cells"]]
    if cell["status"] == "fail":
        shown = "\n".join(f"- {d['check']} {d['subject']}: {d['message']}\n  what to do: {d['action']}"
                          for d in mine[:30])
        pytest.fail(f"{len(mine)} blocking decision(s) in {key}:\n{shown}", pytrace=False)
    if cell["status"] != "pass":
        reasons = "; ".join(f"{c['name']}: {c['reason']}" for c in cell["checks"] if c["reason"])
        pytest.skip(f"not verified: {reasons or 'evidence missing'}")


def test_verdict(pytestconfig: pytest.Config) -> None:
    """The report's verdict, as the CLI prints it and exits."""
    if not pytestconfig.getoption("--kfpc-bundles"):
        pytest.skip("no evidence bundles given (pass --kfpc-bundles out/<run-id>): not verified")
    report, _ = _report(pytestconfig)
    d = report.data
    allure_adapter.label_verdict(d)
    if d["verdict"]["status"] == "fail":
        shown = "\n".join(f"{n}. {x['check']} {x['subject']} ({x['blocking_findings']} finding(s))\n"
                          f"   what to do: {x['action']}" for n, x in enumerate(d["decisions"][:30], 1))
        hidden = d["verdict"]["blocking_decisions"] - min(len(d["decisions"]), 30)
        more = f"\n... {hidden} more decision(s): see the report's What blocks" if hidden else ""
        pytest.fail(f"{d['verdict']['headline']}\n{shown}{more}", pytrace=False)
    if not d["verdict"]["ready"]:
        pytest.skip(d["verdict"]["headline"])
