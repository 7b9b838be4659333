"""Compares the bundles of one scenario across variants, and against the scenario's expectations.

Reads bundles only (no cluster). Nodes are aligned by task path (with iteration index), never by
generated ids or pod names; harness/evidence/normalize.py removes the noise first. Each non-baseline variant is
compared with the baseline variant (fixtures/variants.yaml `baseline`), and every variant with the
scenario's declared expectations (expected state, literal and oracle outputs, failing tasks). Findings are
`harness.models.Finding`s, classified by the declared expected differences in fixtures/policy/, and
grouped into named checks whose status harness/judge/verdict.py decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.boundary.redact import redact
from harness.diff import describe, walk
from harness.evidence.bundle import Bundle
from harness.evidence.compact import DriverTimings, Evidence, evidence_of
from harness.evidence.normalize import NormalRun, parse_json_text, same_value
from harness.judge.policy import Policy
from harness.judge.verdict import Check, Status, combine, judge
from harness.models import ORACLE, SAME_AS_BASELINE, Finding, Severity

RBAC_ROW = "rbac-live"  # the verdict-matrix row for the live SubjectAccessReview comparison
DRIVER_ROLE = "<driver>"
MAX_FINDINGS_PER_KIND = 200  # beyond this, one summary finding per kind keeps reports readable


@dataclass(frozen=True)
class Cell:
    """One scenario × mode × variant: its checks and their combined status."""

    scenario: str
    mode: str
    variant: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        return combine(c.status for c in self.checks)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]


@dataclass
class Comparison:
    """All cells of one scenario in one mode, plus the timing comparison (never a gate unless configured)."""

    scenario: str
    mode: str
    baseline: str
    cells: list[Cell] = field(default_factory=list)
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Findings:
    """Collects findings for one check, classified by the policy, capped per finding id."""

    def __init__(self, policy: Policy, mode: str, variants: tuple[str, ...], baseline: str) -> None:
        self.policy, self.mode, self.variants, self.baseline = policy, mode, variants, baseline
        self.items: list[Finding] = []
        self.listed: Counter[tuple[str, bool]] = Counter()
        self.overflow: Counter[tuple[str, bool, Severity]] = Counter()

    def add(self, id: str, category: str, subject: str, message: str, severity: Severity = Severity.ERROR,
            **evidence: Any) -> None:
        evidence = {"baseline_variant": self.baseline, **evidence}
        known = self.policy.known(id, self.mode, self.variants, subject, evidence)
        if known is not None and self._overflowed(id, known, severity):
            return  # counted without building it: big runs stay fast
        finding = self.policy.classify(Finding(id=id, severity=severity, category=category, mode=self.mode,
                                               variants=self.variants, subject=subject, message=message,
                                               evidence=evidence))
        if self._overflowed(id, finding.expected, severity):
            return
        self.listed[(id, finding.expected)] += 1
        self.items.append(finding)

    def _overflowed(self, id: str, expected: bool, severity: Severity) -> bool:
        """True (and counted) when this kind already has MAX_FINDINGS_PER_KIND listed findings."""
        if self.listed[(id, expected)] < MAX_FINDINGS_PER_KIND:
            return False
        self.overflow[(id, expected, severity)] += 1
        return True

    def done(self) -> list[Finding]:
        for (id, expected, severity), count in sorted(self.overflow.items()):
            self.items.append(Finding(id=id, severity=severity, category=id.split(".")[0], mode=self.mode,
                                      variants=self.variants, subject=f"{count} more",
                                      message=f"{count} more {id} findings not listed",
                                      evidence={"baseline_variant": self.baseline, "count": count},
                                      expected=expected))
        return self.items


def _show(value: Any) -> str:
    text = "(absent)" if value is None else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _diff(a: Any, b: Any) -> str:
    """A readable diff of two structured values (the one diff walk, one line per change), redacted; empty for
    plain values."""
    a, b = parse_json_text(a), parse_json_text(b)
    if isinstance(a, dict | list) and isinstance(b, dict | list):
        return redact("\n".join(describe(list(walk(a, b)))))
    return ""


# ---------------------------------------------------------------------------------------------- checks


def _check_state(norm: NormalRun, data: dict[str, Any], base: NormalRun | None, f: _Findings) -> Check:
    expected = data["scenario"].get("expected_state")
    variant = norm.key[1]
    if expected and norm.state != expected:
        f.add("run.state-unexpected", "run", f"run of {norm.key[0]}",
              f"{variant} run ended {norm.state}, the scenario expects {expected}",
              field="state", expected_value=expected, actual=norm.state, error=redact(norm.error or ""))
    if base is not None and base.state != norm.state:
        f.add("run.state-differs", "run", f"run of {norm.key[0]}",
              f"{variant} run ended {norm.state}, {base.key[1]} ended {base.state}",
              field="state", baseline=base.state, actual=norm.state)
    if not expected and base is None:
        return judge("run-state", f.done(), not_verified="no expected state and no baseline to compare with")
    return judge("run-state", f.done())


def outputs_unread(data: Mapping[str, Any]) -> str:
    """Why a bundle's task outputs cannot be compared ("" when they were read). KFP v2 keeps task outputs in
    ML Metadata only (harness/live/taskoutputs.py); a bundle without `task_outputs.read` (schema 1.0: outputs taken
    from Argo executor nodes, which never have any) must not make "no outputs" look like "equal outputs"."""
    marker = data.get("task_outputs")
    if not isinstance(marker, Mapping):
        return "the bundle does not say where task outputs were read (written before schema 1.1)"
    if not marker.get("read"):
        return f"task outputs not read: {marker.get('reason') or 'no reason given'}"
    return ""


def _same_parameter(got: Any, want: Any) -> bool:
    """A typed output against a declared value: 7 equals 7 but not "7" nor True; a LIST/STRUCT output is
    held as canonical JSON text after normalisation, so it is parsed before comparing."""
    if isinstance(want, dict | list):
        return parse_json_text(got) == want
    return same_value(got, want) and isinstance(got, bool) == isinstance(want, bool) \
        and isinstance(got, str) == isinstance(want, str)


def _artifact_mismatch(want: Mapping[str, Any], got: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(differs, not-verified reason) for a declared artifact ({type, metadata?, digest?})."""
    if got is None:
        return True, ""
    if "type" in want and want["type"] != got.get("type"):
        return True, ""
    if "metadata" in want and want["metadata"] != parse_json_text(got.get("metadata")):
        return True, ""
    if want.get("digest") is not None:
        if got.get("digest") is None:  # MLMD holds the URI; the content in the object store is not read
            return False, "artifact content digests not verified (the object store is not read)"
        if got["digest"] != want["digest"]:
            return True, ""
    return False, ""


def _check_expectations(norm: NormalRun, data: dict[str, Any], f: _Findings) -> Check | None:
    """None when the scenario promises nothing beyond its state and the baseline (corpus scenarios)."""
    scenario = data["scenario"]
    expected_outputs: dict[str, dict[str, Any]] = scenario.get("expected_outputs") or {}
    oracle = data.get("oracle") or {}
    missing_oracle = ""
    unread = outputs_unread(data)
    unverified_outputs = ""
    checked = 0
    for path, outputs in sorted(expected_outputs.items()):
        task = norm.tasks.get(path)
        for name, want in sorted(outputs.items()):
            if want == SAME_AS_BASELINE:
                continue  # the outputs check compares with the baseline
            if want == ORACLE:
                if not oracle.get("available"):
                    missing_oracle = oracle.get("reason") or "the bundle holds no oracle (kfp.local) result"
                    continue
                want = (oracle.get("outputs") or {}).get(path, {}).get(name)
                if want is None:
                    missing_oracle = f"the oracle result has no output {name} for {path}"
                    continue
            if unread:
                unverified_outputs = unread
                continue
            if isinstance(want, Mapping) and "type" in want:  # an artifact (harness.catalogue.scenarios.artifact)
                got_artifact = None if task is None else task.artifacts.get(name)
                differs, why = _artifact_mismatch(want, got_artifact)
                if why:
                    unverified_outputs = why
                checked += 1
                if differs:
                    f.add("oracle.output-mismatch", "outputs", f"task {path}",
                          f"{norm.key[1]}: artifact {name} of {path} is {_show(got_artifact)}, expected "
                          f"{_show(want)}", field=name, expected_value=want, actual=got_artifact)
                continue
            checked += 1
            got = None if task is None else task.parameters.get(name)
            if not _same_parameter(got, want):
                f.add("oracle.output-mismatch", "outputs", f"task {path}",
                      f"{norm.key[1]}: output {name} of {path} is {_show(got)}, expected {_show(want)}",
                      field=name, expected_value=want, actual=got)
    for path, want_hit in sorted((scenario.get("expected_cache") or {}).items()):
        # the last of the repeated runs: its container driver decides whether the task comes from the cache
        checked += 1
        driver = norm.drivers.get(path)
        got = None if driver is None else driver.outputs.get("cached-decision")
        hit = str(got).lower() == "true"  # absent (central-driver omits nil) or "false": not from the cache
        if driver is None or hit != want_hit:
            f.add("oracle.cache-mismatch", "caching", f"task {path}",
                  f"{norm.key[1]}: {path} was {'served from' if hit else 'not served from'} the cache on the "
                  f"repeated run (cached-decision {_show(got)}); expected {'a cache hit' if want_hit else 'a fresh run'}",
                  field="cached-decision", expected_value=want_hit, actual=got)
    for path in scenario.get("failing_tasks") or []:
        checked += 1
        task = norm.tasks.get(path)
        if task is None or task.state != "FAILED":
            f.add("oracle.failure-missing", "failure", f"task {path}",
                  f"{norm.key[1]}: {path} was expected to fail but is {task.state if task else 'absent'}",
                  field="state", expected_value="FAILED", actual=task.state if task else None)
    if oracle.get("available") and oracle.get("state"):
        checked += 1
        if oracle["state"] != norm.state:
            f.add("oracle.state-mismatch", "run", f"run of {norm.key[0]}",
                  f"{norm.key[1]} run ended {norm.state}, the local oracle run ended {oracle['state']}",
                  field="state", expected_value=oracle["state"], actual=norm.state)
    findings = f.done()
    if missing_oracle:
        return judge("expectations", findings, not_verified=f"oracle outputs not verified: {missing_oracle}")
    if unverified_outputs:
        return judge("expectations", findings, not_verified=f"expected outputs not verified: {unverified_outputs}")
    if not checked:
        return None
    return judge("expectations", findings)


def _check_dag(norm: NormalRun, base: NormalRun, f: _Findings) -> Check:
    variant, reference = norm.key[1], base.key[1]
    for path in sorted(base.tasks.keys() - norm.tasks.keys()):
        f.add("dag.task-missing", "dag", f"task {path}", f"{variant} has no task {path}; {reference} ran it "
              f"({base.tasks[path].state})", field="task", baseline=base.tasks[path].state, actual=None)
    for path in sorted(norm.tasks.keys() - base.tasks.keys()):
        f.add("dag.task-extra", "dag", f"task {path}", f"{variant} ran task {path}, which {reference} did not",
              field="task", baseline=None, actual=norm.tasks[path].state)
    return judge("dag", f.done())


def _check_task_states(norm: NormalRun, base: NormalRun, f: _Findings) -> Check:
    for path in sorted(norm.tasks.keys() & base.tasks.keys()):
        mine, theirs = norm.tasks[path].state, base.tasks[path].state
        if mine != theirs:
            f.add("task.state-differs", "states", f"task {path}",
                  f"{norm.key[1]}: {path} is {mine}, {base.key[1]} has {theirs}",
                  field="state", baseline=theirs, actual=mine)
    return judge("task-states", f.done())


def _compare_values(kind: str, category: str, subject: str, where: str, mine: Mapping[str, Any],
                    theirs: Mapping[str, Any], variant: str, reference: str, f: _Findings,
                    **extra: Any) -> None:
    if mine == theirs:
        return  # the common case on big runs: nothing differs, no per-name walk
    for name in sorted(set(mine) | set(theirs)):
        a, b = mine.get(name), theirs.get(name)
        if (name in mine) == (name in theirs) and same_value(a, b):
            continue
        if name not in mine:
            f.add(f"{kind}-missing", category, subject, f"{variant}: {where} has no {name}; {reference} has "
                  f"{_show(b)}", field=name, baseline=b, actual=None, **extra)
        elif name not in theirs:
            f.add(f"{kind}-extra", category, subject, f"{variant}: {where} has {name}={_show(a)}; {reference} "
                  "has none", field=name, baseline=None, actual=a, **extra)
        else:
            f.add(f"{kind}-differs", category, subject, f"{variant}: {name} of {where} is {_show(a)}, "
                  f"{reference} has {_show(b)}", field=name, baseline=b, actual=a, diff=_diff(b, a), **extra)


def _check_outputs(norm: NormalRun, base: NormalRun, f: _Findings, unread: str = "") -> Check:
    if unread:
        return judge("outputs", f.done(), not_verified=unread)
    variant, reference = norm.key[1], base.key[1]
    for path in sorted(norm.tasks.keys() & base.tasks.keys()):
        mine, theirs = norm.tasks[path], base.tasks[path]
        _compare_values("output.parameter", "outputs", f"task {path}", path, mine.parameters,
                        theirs.parameters, variant, reference, f)
        _compare_values("output.artifact", "outputs", f"task {path}", path, mine.artifacts, theirs.artifacts,
                        variant, reference, f)
    return judge("outputs", f.done())


def _check_failure(norm: NormalRun, base: NormalRun, f: _Findings) -> Check:
    mine = norm.failed_tasks + [f"driver:{p}" for p in norm.failed_drivers]
    theirs = base.failed_tasks + [f"driver:{p}" for p in base.failed_drivers]
    if mine != theirs:
        f.add("failure.location-differs", "failure", f"run of {norm.key[0]}",
              f"{norm.key[1]} failed at {', '.join(mine) or 'nothing'}; {base.key[1]} failed at "
              f"{', '.join(theirs) or 'nothing'}", field="failed", baseline=theirs, actual=mine)
    for path in sorted(set(norm.failed_tasks) & set(base.failed_tasks)):
        a, b = norm.tasks[path].error_class, base.tasks[path].error_class
        if a != b:
            f.add("failure.error-class-differs", "failure", f"task {path}",
                  f"{norm.key[1]}: {path} failed with {a}; {base.key[1]} failed with {b}",
                  field="error_class", baseline=b, actual=a)
    return judge("failure", f.done())


def _check_drivers(norm: NormalRun, base: NormalRun, f: _Findings) -> Check:
    variant, reference = norm.key[1], base.key[1]
    mine_types = dict(sorted(Counter(d.node_type for d in norm.drivers.values()).items()))
    theirs_types = dict(sorted(Counter(d.node_type for d in base.drivers.values()).items()))
    if mine_types != theirs_types:
        f.add("driver.transport-differs", "driver", f"driver nodes of {norm.key[0]}",
              f"{variant} driver nodes are {mine_types}; {reference} has {theirs_types}",
              field="node_type", baseline=theirs_types, actual=mine_types)
    for path in sorted(base.drivers.keys() - norm.drivers.keys()):
        f.add("driver.node-missing", "driver", f"driver {path}", f"{variant} has no driver node for {path}",
              field="driver", baseline=base.drivers[path].phase, actual=None,
              driver_type=base.drivers[path].driver_type)
    for path in sorted(norm.drivers.keys() - base.drivers.keys()):
        f.add("driver.node-extra", "driver", f"driver {path}", f"{variant} has a driver node for {path}, "
              f"{reference} does not", field="driver", baseline=None, actual=norm.drivers[path].phase,
              driver_type=norm.drivers[path].driver_type)
    for path in sorted(norm.drivers.keys() & base.drivers.keys()):
        mine, theirs = norm.drivers[path], base.drivers[path]
        subject = f"driver {path} ({theirs.driver_type})"
        if mine.phase != theirs.phase:
            f.add("driver.phase-differs", "driver", subject, f"{variant}: driver of {path} is {mine.phase}, "
                  f"{reference} has {theirs.phase}", field="phase", baseline=theirs.phase, actual=mine.phase,
                  driver_type=theirs.driver_type)
        _compare_values("driver.output", "driver", subject, f"driver of {path}", mine.outputs, theirs.outputs,
                        variant, reference, f, driver_type=theirs.driver_type)
    return judge("driver-outputs", f.done())


def _check_driver_logs(bundle: Evidence, f: _Findings) -> Check:
    location = bundle.data["driver_logs"]["location"]
    listed = bundle.scan.driver_logs_listed
    if not bundle.data["driver_logs"]["found"] or not bundle.scan.driver_logs_have_text:
        why = "the collector found none" if not bundle.data["driver_logs"]["found"] else \
            "the promised files are missing or empty"
        f.add("logs.driver-missing", "logs", f"driver logs at {location}",
              f"{bundle.variant}: no driver logs where the variant promises them ({location}): {why}",
              field="driver_logs", expected_value=location, actual=listed)
    return judge("driver-logs", f.done())


def _check_log_classes(bundle: Evidence, base: Evidence, f: _Findings) -> Check:
    mine, theirs = bundle.scan.classes, base.scan.classes
    for cls in sorted(mine.keys() ^ theirs.keys()):
        level = cls.split(":", 1)[0]
        severity = Severity.ERROR if level == "error" else Severity.WARNING
        holder, files = (bundle.variant, mine[cls]) if cls in mine else (base.variant, theirs[cls])
        f.add(f"logs.{level}-class-differs", "logs", f"log class {cls!r}",
              f"only {holder} logs {cls!r}", severity=severity, field=cls,
              baseline=cls if cls in theirs else None, actual=cls if cls in mine else None, files=files[:3])
    return judge("log-classes", f.done())


def _check_secrets(bundle: Evidence, f: _Findings) -> Check:
    found = [*bundle.scan.secrets.items(), ("bundle.json (run error and driver messages)",
                                             bundle.scan.inline_secrets)]
    for name, hits in found:
        for pattern, print_, line in hits:
            f.add("security.secret-leak", "security", f"{bundle.variant}.{bundle.mode}: {name}",
                  f"{bundle.variant}: {name} line {line} holds something shaped like a credential ({pattern}, "
                  f"{print_})", field=name, pattern=pattern, fingerprint=print_, line=line)
    return judge("secrets", f.done())


# ---------------------------------------------------------------------------------------------- timings


def timings(bundle: Bundle) -> dict[str, Any]:
    """Driver overhead per task (driver node start→finish), pods per run, run wall time."""
    tally = DriverTimings()
    for node in bundle.driver_nodes:
        tally.add(node)
    return tally.result(bundle.data)


def _check_timing_gates(variant: str, mine: dict[str, Any], theirs: dict[str, Any], policy: Policy,
                        f: _Findings) -> Check | None:
    gates = [g for g in policy.timing_gates if not g.variants or variant in g.variants]
    if not gates:
        return None  # timings are a comparison, not a gate, unless configured
    missing = []
    for gate in gates:
        a, b = mine.get(gate.metric), theirs.get(gate.metric)
        if a is None or not b:
            missing.append(gate.metric)
            continue
        if a / b > gate.max_ratio:
            f.add("timing.over-budget", "timings", f"{gate.metric}",
                  f"{variant}: {gate.metric} is {a} ({a / b:.2f}× the baseline's {b}), above the configured "
                  f"{gate.max_ratio}×", field=gate.metric, baseline=b, actual=a, max_ratio=gate.max_ratio)
    findings = f.done()
    return judge("timings", findings, not_verified=f"no data for {', '.join(missing)}" if missing else "")


# ---------------------------------------------------------------------------------------------- scenario


def compare_scenario(scenario: str, mode: str, bundles: Mapping[str, Bundle | Evidence], *,
                     variants: Sequence[str], baseline: str, policy: Policy,
                     skips: Mapping[str, str] | None = None) -> Comparison:
    """Every cell of `scenario` in `mode`. `bundles` maps variant -> bundle (read whole, or as the compact
    evidence the report reads); a missing one is not verified.

    `skips` maps a variant to the reason it does not run here (reported as skipped, never passed).
    """
    skips = skips or {}
    comparison = Comparison(scenario, mode, baseline)
    evidence = {v: evidence_of(b) for v, b in bundles.items()}
    base_bundle = evidence.get(baseline)
    base = base_bundle.normal if base_bundle is not None else None
    for variant in variants:
        if variant in skips:
            comparison.cells.append(Cell(scenario, mode, variant, (judge("run", skipped=skips[variant]),)))
            continue
        bundle = evidence.get(variant)
        if bundle is None:
            comparison.cells.append(Cell(scenario, mode, variant, (
                judge("evidence", not_verified=f"no bundle for {scenario} on {variant}.{mode}"),)))
            continue
        comparison.timings[variant] = bundle.timings
        comparison.sources[variant] = dict(bundle.data["source"])
        norm = bundle.normal
        solo = (variant,)
        pair = (baseline, variant)

        def new(variants_: tuple[str, ...] = pair) -> _Findings:
            return _Findings(policy, mode, variants_, baseline)

        checks = [judge("evidence", not_verified="" if bundle.complete else
                        f"bundle is partial: {bundle.data.get('reason', 'no reason given')}")]
        checks.append(_check_state(norm, bundle.data, base if variant != baseline else None,
                                   new(solo if variant == baseline or base is None else pair)))
        expectations = _check_expectations(norm, bundle.data, new(solo))
        if expectations is not None:
            checks.append(expectations)
        cross = ("dag", "task-states", "outputs", "failure", "driver-outputs", "log-classes")
        if variant != baseline:
            if base is None or base_bundle is None:
                reason = f"no bundle for the baseline {baseline}.{mode} to compare with"
                checks.extend(judge(name, not_verified=reason) for name in cross)
            else:
                checks.append(_check_dag(norm, base, new()))
                checks.append(_check_task_states(norm, base, new()))
                unread = outputs_unread(bundle.data) or outputs_unread(base_bundle.data)
                checks.append(_check_outputs(norm, base, new(), unread))
                checks.append(_check_failure(norm, base, new()))
                checks.append(_check_drivers(norm, base, new()))
                checks.append(_check_log_classes(bundle, base_bundle, new()))
                gate = _check_timing_gates(variant, bundle.timings, base_bundle.timings, policy, new())
                if gate is not None:
                    checks.append(gate)
        checks.append(_check_driver_logs(bundle, new(solo)))
        checks.append(_check_secrets(bundle, new(solo)))
        comparison.cells.append(Cell(scenario, mode, variant, tuple(checks)))
    return comparison


# ---------------------------------------------------------------------------------------------- RBAC


def _rbac_field(row: Mapping[str, Any]) -> str:
    resource = row["resource"] + (f"/{row['subresource']}" if row.get("subresource") else "")
    text = f"{row['verb']} {resource} in {row.get('namespace') or '(cluster)'}"
    return text + (f" name {row['name']}" if row.get("name") else "")


def _rbac_rows(bundle: Bundle | Evidence, drivers: Iterable[str]) -> dict[tuple[str, ...], tuple[bool, str]]:
    """SAR rows keyed by (role, verb, group, resource, subresource, namespace, name) -> (allowed, identity)."""
    driver_ids = set(drivers)
    rows: dict[tuple[str, ...], tuple[bool, str]] = {}
    for row in bundle.data.get("rbac") or []:
        identity = row["identity"]
        role = DRIVER_ROLE if identity in driver_ids else identity
        key = (role, row["verb"], row.get("group", ""), row["resource"], row.get("subresource", ""),
               row.get("namespace", ""), row.get("name", ""))
        rows[key] = (bool(row["allowed"]), identity)
    return rows


def _static_live_mismatches(bundle: Bundle | Evidence, f: _Findings) -> None:
    """Static and live side by side: the static evaluator (harness/rbac/evaluator.py) predicted each live check from
    the applied render; a disagreement means the cluster grants something the manifests do not say (or the
    other way round) and the static tier's RBAC verdict cannot be trusted for it."""
    for row in bundle.data.get("rbac") or []:
        if "static_allowed" in row and row["static_allowed"] != row["allowed"]:
            f.add("rbac.static-live-mismatch", "rbac", f"ServiceAccount {row['identity']}",
                  f"{bundle.variant}.{bundle.mode}: the cluster {'allows' if row['allowed'] else 'denies'} "
                  f"{_rbac_field(row)} but the rendered manifests predict it is "
                  f"{'allowed' if row['static_allowed'] else 'denied'}",
                  field=_rbac_field(row), identity=row["identity"], live=row["allowed"],
                  static=row["static_allowed"])


def compare_rbac(mode: str, bundles: Mapping[str, Bundle | Evidence], *, variants: Sequence[str], baseline: str,
                 policy: Policy, driver_identities: Mapping[str, Iterable[str]]) -> Comparison:
    """The live SAR matrix of each variant against the baseline's, the driver identities aligned by role.

    `bundles` maps variant -> one bundle of this mode that carries an `rbac` matrix.
    `driver_identities` maps variant -> its driver's `namespace/name` identities in this mode.
    """
    comparison = Comparison(RBAC_ROW, mode, baseline)
    base = bundles.get(baseline)
    base_rows = _rbac_rows(base, driver_identities.get(baseline, ())) if base else {}
    for variant in variants:
        bundle = bundles.get(variant)
        if bundle is None or not bundle.data.get("rbac"):
            comparison.cells.append(Cell(RBAC_ROW, mode, variant, (
                judge("rbac", not_verified=f"no live SubjectAccessReview matrix for {variant}.{mode}"),)))
            continue
        if variant == baseline:  # the reference matrix: checked only against its own static prediction
            f = _Findings(policy, mode, (variant,), baseline)
            _static_live_mismatches(bundle, f)
            comparison.cells.append(Cell(RBAC_ROW, mode, variant, (judge("rbac", f.done()),)))
            continue
        if not base_rows:
            comparison.cells.append(Cell(RBAC_ROW, mode, variant, (
                judge("rbac", not_verified=f"no live SubjectAccessReview matrix for the baseline "
                      f"{baseline}.{mode}"),)))
            continue
        f = _Findings(policy, mode, (baseline, variant), baseline)
        _static_live_mismatches(bundle, f)
        rows = _rbac_rows(bundle, driver_identities.get(variant, ()))
        for key in sorted(rows.keys() | base_rows.keys()):
            mine, identity = rows.get(key, (False, ""))
            theirs, base_identity = base_rows.get(key, (False, ""))
            if mine == theirs:
                continue
            row = dict(zip(("role", "verb", "group", "resource", "subresource", "namespace", "name"), key, strict=True))
            who = identity or base_identity
            subject = f"ServiceAccount {who}" if who else key[0]
            asked = {"baseline": "not asked" if key not in base_rows else theirs,
                     "actual": "not asked" if key not in rows else mine}
            kind = "gained" if mine else "lost"
            role = "driver" if key[0] == DRIVER_ROLE else key[0]
            f.add(f"rbac.permission-{kind}", "rbac", subject,
                  f"{variant}'s {role} identity {'can' if mine else 'cannot'} {_rbac_field(row)}; "
                  f"{baseline}'s {'cannot' if mine else 'can'}", field=_rbac_field(row),
                  identity=who, answers=asked, baseline=theirs, actual=mine)
        comparison.cells.append(Cell(RBAC_ROW, mode, variant, (judge("rbac", f.done()),)))
    return comparison


# ---------------------------------------------------------------------------------------------- many


def driver_identities(config: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    """variant -> mode -> the driver's `namespace/name` identities, from a harness.config.Config."""
    return {
        name: {mode_name: tuple(i.bind(mode.user_namespace).ref for i in variant.driver.identities_for(mode_name))
               for mode_name, mode in config.modes.items()}
        for name, variant in config.variants.items()
    }


def group_bundles(bundles: Iterable[Bundle | Evidence]) -> dict[tuple[str, str], dict[str, Bundle | Evidence]]:
    """(scenario, mode) -> variant -> bundle. Two bundles for one key are refused by the caller."""
    grouped: dict[tuple[str, str], dict[str, Bundle | Evidence]] = {}
    for bundle in bundles:
        grouped.setdefault((bundle.scenario, bundle.mode), {})[bundle.variant] = bundle
    return grouped


def compare_all(bundles: Sequence[Bundle | Evidence], *, variants: Sequence[str], baseline: str, policy: Policy,
                driver_identities: Mapping[str, Mapping[str, Iterable[str]]] | None = None) -> list[Comparison]:
    """Every (scenario, mode) the bundles cover, plus one live-RBAC comparison per mode."""
    grouped = group_bundles(bundles)
    comparisons = [compare_scenario(scenario, mode, by_variant, variants=variants, baseline=baseline,
                                    policy=policy)
                   for (scenario, mode), by_variant in sorted(grouped.items())]
    modes = sorted({mode for _, mode in grouped})
    for mode in modes:
        with_rbac: dict[str, Bundle | Evidence] = {}
        for (_, m), by_variant in sorted(grouped.items()):
            if m != mode:
                continue
            for variant, bundle in by_variant.items():
                if bundle.data.get("rbac") and variant not in with_rbac:
                    with_rbac[variant] = bundle
        identities = {v: tuple((driver_identities or {}).get(v, {}).get(mode, ())) for v in variants}
        comparisons.append(compare_rbac(mode, with_rbac, variants=variants, baseline=baseline, policy=policy,
                                        driver_identities=identities))
    return comparisons
