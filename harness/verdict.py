"""THE verdict rules, in one place. Every report, exit code and pytest outcome derives from these.

1. A check is `fail` if it has a blocking finding: severity error and not declared in fixtures/policy/.
   A declared (expected) difference, a warning or an info never fails.
2. A check that could not run (missing bundle, missing evidence, no oracle, no baseline) is
   `not-verified`, with the reason. A check excluded on purpose (scenario not applicable) is `skipped`,
   which also counts as not verified. Neither is ever `pass`.
3. A check with evidence and no blocking finding is `pass`.
4. A group (cell, row, report) is `fail` if any member fails; otherwise `not-verified` if any member is
   not verified or skipped (`skipped` if all are); otherwise `pass`. An empty group is `not-verified`.
5. The report says "ready to sign off" only when its status is `pass`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from harness.models import Finding


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_VERIFIED = "not-verified"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One named check of one cell (scenario × mode × variant)."""

    name: str
    status: Status
    reason: str = ""
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocking)


def judge(name: str, findings: Iterable[Finding] = (), *, not_verified: str = "", skipped: str = "") -> Check:
    """Rules 1-3: the status of one check from its findings, or why it could not run."""
    found = tuple(findings)
    if any(f.blocking for f in found):
        return Check(name, Status.FAIL, "", found)
    if skipped:
        return Check(name, Status.SKIPPED, skipped, found)
    if not_verified:
        return Check(name, Status.NOT_VERIFIED, not_verified, found)
    return Check(name, Status.PASS, "", found)


def combine(statuses: Iterable[Status]) -> Status:
    """Rule 4."""
    counts = Counter(statuses)
    if not counts:
        return Status.NOT_VERIFIED
    if counts[Status.FAIL]:
        return Status.FAIL
    if counts[Status.SKIPPED] == sum(counts.values()):
        return Status.SKIPPED
    if counts[Status.NOT_VERIFIED] or counts[Status.SKIPPED]:
        return Status.NOT_VERIFIED
    return Status.PASS


@dataclass(frozen=True)
class Verdict:
    status: Status
    headline: str
    ready: bool
    counts: dict[str, int]


def overall(checks: Iterable[Check]) -> Verdict:
    """Rule 5: the one-line verdict of a whole report."""
    checks = list(checks)
    status = combine(c.status for c in checks)
    counts = {s.value: sum(1 for c in checks if c.status is s) for s in Status}
    blocking = sum(len(c.blocking) for c in checks)
    unverified = counts["not-verified"] + counts["skipped"]
    if status is Status.PASS:
        headline = f"READY TO SIGN OFF: all {len(checks)} checks passed"
    elif status is Status.FAIL:
        headline = f"NOT READY: {blocking} undeclared difference{'s' if blocking != 1 else ''}"
        if unverified:
            headline += f", {unverified} check{'s' if unverified != 1 else ''} not verified"
    else:
        headline = (f"NOT VERIFIED: {unverified} of {len(checks)} checks not verified, so this cannot be "
                    "signed off")
    return Verdict(status, headline, status is Status.PASS, counts)


def exit_code(verdict: Verdict) -> int:
    """0 ready to sign off; 1 differences or anything not verified (2 is bad input, raised elsewhere)."""
    return 0 if verdict.ready else 1
