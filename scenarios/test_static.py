"""Static tier as pytest tests: one test per (check, mode, variant pair).

A test fails when its check reports a blocking finding (severity error, not declared expected); the
findings are the failure message, so JUnit/Allure show the same evidence as `static.md`.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.static.context import Pair, self_comparisons
from harness.static.registry import CHECKS, MODELESS
from pytest_kfp_conformance.allure_adapter import attach_findings

pytestmark = pytest.mark.static


def test_static_check(static_case: tuple[str, str, Pair], kfpc_static_context: Any) -> None:
    name, mode_name, pair = static_case
    mode = kfpc_static_context.selection.config.mode(mode_name)
    findings, _details = CHECKS[name](kfpc_static_context, [pair], mode)
    if pair.base.name == pair.other.name:  # --kfpc-self-check: only a tree's comparison with itself counts
        findings = self_comparisons(findings)
    attach_findings(f"{name} {mode_name} {pair.label} findings", findings)  # no-op without --alluredir
    blocking = [f for f in findings if f.blocking]
    shown = "\n".join(f"- {f.id} [{f.mode}] {f.subject}: {f.message}" for f in blocking[:30])
    scope = "all modes" if name in MODELESS else mode_name
    assert not blocking, f"{len(blocking)} blocking finding(s) for {pair.label} ({scope}):\n{shown}"
