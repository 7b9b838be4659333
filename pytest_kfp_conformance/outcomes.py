"""How harness results become pytest outcomes, exactly as the CLI reports them.

A check that could not run is "not verified" in the CLI and the report; in pytest it is a skip with the
same reasons, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from harness.models import Finding


def not_verified_reason(findings: Iterable[Finding]) -> str:
    """One line naming every check that did not run and why, or "" when all ran."""
    missing = [f"{f.id} {f.subject}: {f.message}" for f in findings if f.not_verified]
    return f"{len(missing)} check(s) not verified: " + "; ".join(missing) if missing else ""


def skip_if_not_verified(findings: Iterable[Finding]) -> None:
    reason = not_verified_reason(findings)
    if reason:
        pytest.skip(reason)
