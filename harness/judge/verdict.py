"""THE verdict rules, in one place. Every report, exit code and pytest outcome derives from these.

1. A check is `fail` if it has a blocking finding: severity error and not declared in fixtures/policy/.
   A declared (expected) difference, a warning or an info never fails.
2. A check that could not run (missing bundle, missing evidence, no oracle, no baseline) is
   `not-verified`, with the reason. A check excluded on purpose (scenario not applicable) is `skipped`,
   which also counts as not verified. Neither is ever `pass`.
3. A check with evidence and no blocking finding is `pass`.
4. A group (cell, row, report) is `fail` if any member fails; otherwise `not-verified` if any member is
   not verified or skipped (`skipped` if all are); otherwise `pass`. An empty group is `not-verified`.
5. The report says "ready to sign off" only when its status is `pass`. Its counts (blocking and accepted
   decisions and findings, checks not verified) are computed here once; writers only show them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from harness.judge.decisions import group
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
    """The report's verdict and THE counts every writer shows (JSON, Markdown, HTML, JUnit, pytest, Allure).

    A finding is counted once even when several cells show it (a static finding of the pair b..c is in the
    cells of b and c). Blocking and accepted are counted in decisions (one per cause, harness.judge.decisions)
    and in findings; "not verified" is counted in checks (cell x check), skipped ones included.
    """

    status: Status
    headline: str
    ready: bool
    counts: dict[str, int]  # checks by status
    blocking_decisions: int = 0
    blocking_findings: int = 0
    accepted_decisions: int = 0
    accepted_findings: int = 0
    not_verified: int = 0
    checks: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status.value, "headline": self.headline, "ready": self.ready,
                "counts": dict(self.counts), "blocking_decisions": self.blocking_decisions,
                "blocking_findings": self.blocking_findings, "accepted_decisions": self.accepted_decisions,
                "accepted_findings": self.accepted_findings, "not_verified": self.not_verified,
                "checks": self.checks}

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(Status(data["status"]), data["headline"], data["ready"], dict(data["counts"]),
                   *(int(data.get(k, 0)) for k in ("blocking_decisions", "blocking_findings",
                                                   "accepted_decisions", "accepted_findings",
                                                   "not_verified", "checks")))


def unique_findings(checks: Iterable[Check]) -> list[Finding]:
    """Every finding once: one Finding object shown in several cells (static pairs) counts once."""
    seen: dict[int, Finding] = {}
    for check in checks:
        for f in check.findings:
            seen.setdefault(id(f), f)
    return list(seen.values())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def overall(checks: Iterable[Check]) -> Verdict:
    """Rule 5: the one-line verdict of a whole report, with its counts."""
    checks = list(checks)
    status = combine(c.status for c in checks)
    counts = {s.value: sum(1 for c in checks if c.status is s) for s in Status}
    decisions = group(unique_findings(checks))
    blocking = [d for d in decisions if d.blocking]
    accepted = [d for d in decisions if d.accepted and not d.blocking]
    blocking_findings = sum(1 for d in blocking for f in d.findings if f.blocking)
    accepted_findings = sum(1 for d in decisions for f in d.findings if f.accepted)
    unverified = counts["not-verified"] + counts["skipped"]
    if status is Status.PASS:
        headline = f"READY TO SIGN OFF: all {len(checks)} checks passed"
    elif status is Status.FAIL:
        headline = (f"NOT READY: {_plural(len(blocking), 'blocking decision')} "
                    f"({_plural(blocking_findings, 'undeclared difference')})")
        if unverified:
            headline += f", {unverified} check{'s' if unverified != 1 else ''} not verified"
    else:
        headline = (f"NOT VERIFIED: {unverified} of {len(checks)} checks not verified, so this cannot be "
                    "signed off")
    if accepted:
        headline += f"; {_plural(len(accepted), 'accepted decision')}"
    return Verdict(status, headline, status is Status.PASS, counts, len(blocking), blocking_findings,
                   len(accepted), accepted_findings, unverified, len(checks))


def exit_code(verdict: Verdict) -> int:
    """0 ready to sign off; 1 differences or anything not verified (2 is bad input, raised elsewhere)."""
    return 0 if verdict.ready else 1
