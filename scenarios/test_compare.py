"""Comparison of saved evidence bundles as pytest tests: one test per (scenario, mode, variant) cell.

A cell passes when every check passed, fails on an undeclared difference, and is *skipped* (reported as
not verified, never passed) when evidence is missing. With `--alluredir` the findings, diffs, logs and the
SubjectAccessReview matrix become Allure attachments. Run: pytest scenarios/test_compare.py --kfpc-bundles DIR
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.verdict import Status
from pytest_kfp_conformance.allure_adapter import attach_bundle_logs, attach_cell, attach_rbac_matrix
from pytest_kfp_conformance.plugin import kfpc_comparisons


def test_cell(compare_cell: Any, pytestconfig: pytest.Config) -> None:
    cell = compare_cell
    attach_cell(cell)
    bundles, _ = kfpc_comparisons(pytestconfig)
    for bundle in bundles:
        if (bundle.scenario, bundle.variant, bundle.mode) == (cell.scenario, cell.variant, cell.mode):
            attach_bundle_logs(bundle)
            attach_rbac_matrix(bundle)
    blocking = [f for f in cell.findings if f.blocking]
    shown = "\n".join(f"- {f.id} {f.subject}: {f.message}" for f in blocking[:30])
    assert cell.status is not Status.FAIL, f"{len(blocking)} undeclared difference(s):\n{shown}"
    if cell.status is not Status.PASS:
        reasons = "; ".join(c.reason for c in cell.checks if c.reason) or "evidence missing"
        pytest.skip(f"not verified: {reasons}")
