"""From findings to decisions: one entry per cause, and findings a team has accepted on purpose.

- A *cause* is the same check on the same subject (or, for compiled workflows, the same field path) across
  modes, overlays and variant pairs. A reviewer decides once per cause, so `static.md` and the report list
  decisions, each with where it applies, how many findings it groups and what to do.
- A *known-findings file* (YAML, `--known-findings FILE`) accepts findings by id and subject, optionally only
  in some modes, with a reason, an owner and an expiry date. An accepted finding is shown with its reason and
  never blocks; an expired acceptance blocks again and says so. `--write-known-findings FILE` writes today's
  blocking causes as a starting point. This is how a pull request check goes green on "nothing new".

"Blocking" has one definition, `Finding.blocking`: an error that is neither declared expected nor accepted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.manifests.yamlload import load as load_yaml
from harness.models import Finding, Severity

KNOWN_FINDINGS_KIND = "KnownFindings"
DEFAULT_ACCEPT_DAYS = 90
_FIELD_PATH = re.compile(r"^(?P<path>\S+) (?:added|removed|changed)\b")

# What a reviewer does about a cause, by check id prefix (most specific first).
ACTIONS: tuple[tuple[str, str], ...] = (
    ("rbac.cluster-scoped-grant", "bind the ClusterRole per namespace (RoleBinding), or accept it with a reason"),
    ("rbac.", "narrow the driver's Role (resourceNames, fewer verbs), or declare the grant in fixtures/policy/rbac.yaml"),
    ("network.", "add a NetworkPolicy or Istio AuthorizationPolicy for the Service, or accept it with a reason"),
    ("tls.", "mount the TLS CA into the driver workload (volume, mount or CA env), as the other variants do"),
    ("image.placeholder", "replace the placeholder image in the overlay, or pass --driver-image"),
    ("image.", "align the image references between the variants"),
    ("workflow.", "make the compiler emit the same field, or declare the difference in fixtures/policy"),
    ("inventory.", "add or remove the object so the variants agree, or accept the difference with a reason"),
    ("validation.", "fix the manifest so the API server accepts it"),
    ("orphan.", "prune the object on upgrade (or keep it on purpose and accept it)"),
    ("hardening.", "restore the pod-security setting the baseline variant has"),
    ("exposure.", "keep the Service or route as narrow as the baseline variant's"),
    ("credential.", "move the literal credential into a Secret referenced by name"),
    # live tier (harness/judge/compare.py) and the report's own source check (harness/report/model.py)
    ("security.secret-leak", "stop the component logging the credential, then rotate it"),
    ("sources.", "re-run the static tier and the live jobs from one commit of the variant (see Sources)"),
    ("logs.driver-missing", "write the driver's logs where the variant's config promises them, or fix the config"),
    *((prefix, "find in the evidence why the variant behaves differently from the baseline; fix it, or declare "
                "the difference in fixtures/policy with a reference")
      for prefix in ("output.", "dag.", "task.", "run.", "driver.", "failure.", "oracle.", "logs.", "timing.")),
)


def cause_key(finding: Finding) -> tuple[str, str]:
    """(check id, what it is about): the subject, or the field path for compiled-workflow differences,
    whose subjects only count files."""
    if finding.category == "workflow" and (match := _FIELD_PATH.match(finding.message)):
        return finding.id, match["path"]
    return finding.id, finding.subject


def finding_detail(finding: Finding) -> str:
    """What exactly a finding grants or changes within its cause, so an acceptance covers no more than what
    was accepted: for RBAC, the resource, verbs and scope (a new verb on the same identity blocks again)."""
    evidence = finding.evidence
    if finding.category == "rbac" and evidence.get("resource"):
        group = f"{evidence['api_group']}/" if evidence.get("api_group") else ""
        return f"{group}{evidence['resource']} [{', '.join(evidence.get('verbs') or [])}] {evidence.get('scope', '')}"
    return ""


def action_for(check_id: str) -> str:
    return next((text for prefix, text in ACTIONS if check_id.startswith(prefix)),
                "decide whether the difference is intended; accept it with a reason or fix it")


@dataclass(frozen=True)
class KnownFinding:
    """One accepted cause: `id` and `subject` as in static.json (the subject may be a field path for
    workflow differences); `modes` empty means every mode."""

    id: str
    subject: str
    reason: str
    owner: str = ""
    until: dt.date | None = None
    modes: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # harness.judge.decisions.finding_detail values accepted; empty: the whole cause

    def matches(self, finding: Finding) -> bool:
        return (cause_key(finding) == (self.id, self.subject) and (not self.modes or finding.mode in self.modes)
                and (not self.details or finding_detail(finding) in self.details))

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and self.until < today


@dataclass(frozen=True)
class Acceptance:
    findings: list[Finding]  # every finding, accepted ones carrying `accepted`
    expired: list[KnownFinding]  # entries whose date passed and that still match a finding
    unused: list[KnownFinding]  # entries that match nothing any more (the cause is gone: remove them)


def load_known_findings(path: Path) -> list[KnownFinding]:
    """Read and validate a known-findings file; each problem is one line naming the entry and the fix."""
    try:
        data = load_yaml(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read known-findings file {path}: {exc.strerror}",
                          "pass an existing file, or write one with --write-known-findings FILE") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"known-findings file {path} is not valid YAML ({str(exc).splitlines()[0]})",
                          "fix the YAML, or write a fresh one with --write-known-findings FILE") from None
    entries = data.get("accepted") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"known-findings file {path} has no `accepted:` list",
                          "write one with --write-known-findings FILE and edit it")
    known = []
    for number, entry in enumerate(entries, 1):
        where = f"{path} entry {number}"
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("subject"):
            raise ConfigError(f"{where} needs `id` and `subject`", "copy both from static.json's finding")
        if not str(entry.get("reason") or "").strip():
            raise ConfigError(f"{where} ({entry['id']}) has no reason", "say why this finding is accepted")
        until = entry.get("until")
        if until is not None and not isinstance(until, dt.date):
            try:
                until = dt.date.fromisoformat(str(until))
            except ValueError:
                raise ConfigError(f"{where} has until={until!r}, not a date", "write it as YYYY-MM-DD") from None
        modes, details = entry.get("modes") or (), entry.get("details") or ()
        if not all(isinstance(x, str) for x in [*modes, *details]):
            raise ConfigError(f"{where} ({entry['id']}): `modes` and `details` must be lists of strings",
                              "copy them from a file written by --write-known-findings")
        known.append(KnownFinding(str(entry["id"]), str(entry["subject"]), str(entry["reason"]).strip(),
                                  str(entry.get("owner") or ""), until, tuple(modes), tuple(details)))
    return known


def apply_known(findings: Iterable[Finding], known: list[KnownFinding], today: dt.date) -> Acceptance:
    """Mark findings accepted by a live entry; expired entries accept nothing."""
    out: list[Finding] = []
    used: set[int] = set()
    expired: dict[int, KnownFinding] = {}
    for finding in findings:
        accepted = ""
        if finding.severity is not Severity.ERROR or finding.expected:  # only what would block is accepted
            out.append(finding)
            continue
        for index, entry in enumerate(known):
            if not entry.matches(finding):
                continue
            used.add(index)
            if entry.expired(today):
                expired[index] = entry
                continue
            accepted = entry.reason + (f" (owner {entry.owner})" if entry.owner else "") + \
                (f", until {entry.until.isoformat()}" if entry.until else "")
            break
        out.append(dataclasses.replace(finding, accepted=accepted) if accepted else finding)
    unused = [entry for index, entry in enumerate(known) if index not in used]
    return Acceptance(out, list(expired.values()), unused)


def known_findings_yaml(findings: Iterable[Finding], today: dt.date) -> str:
    """Today's blocking (and already accepted) causes as a known-findings file to edit; the reasons must be
    written by a person."""
    decisions = group(findings)
    until = today + dt.timedelta(days=DEFAULT_ACCEPT_DAYS)
    entries = []
    for d in decisions:
        errors = [f for f in d.findings if f.severity is Severity.ERROR and not f.expected]
        if not errors:
            continue
        details = sorted({finding_detail(f) for f in errors} - {""})
        entries.append({"id": d.check, "subject": d.subject, "reason": f"TODO: why this is accepted ({d.message[:120]})",
                        "owner": "", "until": until.isoformat(), **({"modes": list(d.modes)} if d.modes else {}),
                        **({"details": details} if details else {})})
    header = ("# Known findings: accepted on purpose, each with a reason, an owner and an expiry date.\n"
              "# Written by `kfp-conformance static --write-known-findings`; edit every TODO before use.\n")
    return header + yaml.safe_dump({"kind": KNOWN_FINDINGS_KIND, "accepted": entries}, sort_keys=False, width=120)


@dataclass
class Decision:
    """One cause: the findings it groups and where they apply."""

    check: str
    subject: str
    severity: Severity
    category: str
    message: str
    action: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(f.blocking for f in self.findings)

    @property
    def accepted(self) -> str:
        """The acceptance reason when every error of this cause is accepted."""
        errors = [f for f in self.findings if f.severity is Severity.ERROR and not f.expected]
        return errors[0].accepted if errors and all(f.accepted for f in errors) else ""

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(sorted({f.mode for f in self.findings}))

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(sorted({"..".join(f.variants) for f in self.findings}))

    @property
    def overlays(self) -> tuple[str, ...]:
        return tuple(sorted({str(f.evidence["overlay"]) for f in self.findings if f.evidence.get("overlay")}))

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "subject": self.subject, "severity": self.severity.value,
                "category": self.category, "message": self.message, "action": self.action,
                "blocking": self.blocking, "accepted": self.accepted, "findings": len(self.findings),
                "blocking_findings": sum(1 for f in self.findings if f.blocking),
                "accepted_findings": sum(1 for f in self.findings if f.accepted),
                "modes": list(self.modes), "pairs": list(self.pairs), "overlays": list(self.overlays)}


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def group(findings: Iterable[Finding]) -> list[Decision]:
    """Findings grouped by cause, most severe first; blocking decisions before the rest."""
    by_cause: dict[tuple[str, str], Decision] = {}
    for f in findings:
        check, subject = cause_key(f)
        decision = by_cause.get((check, subject))
        if decision is None:
            decision = by_cause[(check, subject)] = Decision(check, subject, f.severity, f.category, f.message,
                                                             action_for(check))
        elif _SEVERITY_ORDER[f.severity] < _SEVERITY_ORDER[decision.severity]:
            decision.severity, decision.message = f.severity, f.message
        if f.blocking and not any(g.blocking for g in decision.findings):
            decision.message = f.message  # show what blocks, not an accepted sibling
        decision.findings.append(f)
    return sorted(by_cause.values(), key=lambda d: (not d.blocking, _SEVERITY_ORDER[d.severity], d.category,
                                                    d.check, d.subject))
