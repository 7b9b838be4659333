"""Declared expected differences (`fixtures/policy/*.yaml`): which findings are known and accepted.

A finding that a rule matches stays in the report, marked `expected` with the rule id, so a reviewer sees
every difference; only undeclared ones fail (harness/judge/verdict.py). Schema: harness/schemas/policy.schema.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

from harness import SCHEMAS_DIR
from harness.config import REPO_ROOT
from harness.config.loader import load_validated
from harness.errors import ConfigError
from harness.models import Finding

_UNDECIDED: Any = object()
DEFAULT_POLICY_DIR = REPO_ROOT / "fixtures" / "policy"
SCHEMA_PATH = SCHEMAS_DIR / "policy.schema.json"


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    reference: str
    match: dict[str, Any]
    file: str

    def matches(self, finding: Finding) -> bool:
        m = self.match
        if not fnmatchcase(finding.id, m["finding"]):
            return False
        if "subject" in m and not fnmatchcase(finding.subject, m["subject"]):
            return False
        evidence = finding.evidence
        if "field" in m:
            patterns = [m["field"]] if isinstance(m["field"], str) else m["field"]
            if not any(fnmatchcase(str(evidence.get("field", "")), p) for p in patterns):
                return False
        if "variants" in m:
            others = [v for v in finding.variants if v != evidence.get("baseline_variant")] or finding.variants
            if not any(v in m["variants"] for v in others):
                return False
        if "modes" in m and not any(fnmatchcase(finding.mode, pattern) for pattern in m["modes"]):
            return False
        if "driver_type" in m and evidence.get("driver_type") not in m["driver_type"]:
            return False
        return all(evidence.get(key) == m[key] for key in ("baseline", "actual") if key in m)


@dataclass(frozen=True)
class TimingGate:
    metric: str
    max_ratio: float
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    timing_gates: tuple[TimingGate, ...] = ()
    files: tuple[str, ...] = field(default_factory=tuple)
    _memo: dict[tuple[Any, ...], Rule | None] = field(default_factory=dict, compare=False, repr=False)

    def _key(self, id: str, mode: str, variants: tuple[str, ...], subject: str,
             evidence: dict[str, Any]) -> tuple[Any, ...]:
        uses_subject = any("subject" in r.match for r in self.rules)
        return (id, mode, variants, subject if uses_subject else None, str(evidence.get("field", "")),
                evidence.get("driver_type"), evidence.get("baseline_variant"), repr(evidence.get("baseline")),
                repr(evidence.get("actual")))

    def known(self, id: str, mode: str, variants: tuple[str, ...], subject: str,
              evidence: dict[str, Any]) -> bool | None:
        """Whether such a finding is declared, if this policy already decided it (memo); else None."""
        rule = self._memo.get(self._key(id, mode, variants, subject, evidence), _UNDECIDED)
        return None if rule is _UNDECIDED else rule is not None

    def rule_for(self, finding: Finding) -> Rule | None:
        # Memoised: a 10 000-node comparison asks about thousands of findings that differ only in subject.
        key = self._key(finding.id, finding.mode, finding.variants, finding.subject, finding.evidence)
        if key not in self._memo:
            self._memo[key] = next((rule for rule in self.rules if rule.matches(finding)), None)
        return self._memo[key]

    def classify(self, finding: Finding) -> Finding:
        """The finding, marked expected (with the rule id in evidence) if a rule declares it."""
        if finding.expected:
            return finding
        rule = self.rule_for(finding)
        if rule is None:
            return finding
        return replace(finding, expected=True, evidence={**finding.evidence, "declared_by": rule.id})


# cached: the package's own schema file, constant for the process like an import; no run data
@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def load_policy(directory: str | os.PathLike[str] | None = None) -> Policy:
    """Read every `*.yaml` in the policy directory (default fixtures/policy); one ConfigError on problems."""
    base = Path(directory) if directory else DEFAULT_POLICY_DIR
    if not base.is_dir():
        raise ConfigError(str(base), "policy directory not found", "pass --policy DIR (default fixtures/policy)")
    rules: list[Rule] = []
    gates: list[TimingGate] = []
    files = sorted(base.glob("*.yaml"))
    for file in files:
        raw = load_validated(file, _schema())
        for item in raw.get("differences", []):
            if any(r.id == item["id"] for r in rules):
                raise ConfigError(str(file), f"difference id {item['id']!r} is declared twice",
                                  "give every declared difference a unique id")
            rules.append(Rule(item["id"], item["description"], item["reference"], item["match"], file.name))
        for gate in raw.get("timing_gates", []):
            gates.append(TimingGate(gate["metric"], float(gate["max_ratio"]), tuple(gate.get("variants", []))))
    return Policy(tuple(rules), tuple(gates), tuple(f.name for f in files))
