"""Submit a scenario, wait for it, collect its evidence bundle at once.

Argo deletes a workflow's agent pod when the workflow completes, so the sidecar-plugin driver's log is
followed while the run is in flight (harness.live.follow); task outputs are read from ML Metadata
(harness.live.taskoutputs) through `RunContext.mlmd`.

`run_scenario` is what `harness.live.session` and the pytest layer call per (variant, mode, scenario). The same
compiled IR and the same arguments go to every variant. A run that does not finish in time still gets a
`partial` bundle with the diagnostics that exist, so the report can say what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from harness.boundary.kfpapi import KfpSession
from harness.boundary.kube import Kube
from harness.errors import ConfigError, HarnessError
from harness.evidence.bundle import bundle_dir
from harness.live.collect import Collected, collect_run, write_run_bundle
from harness.live.follow import LogFollower
from harness.live.wait import Status, WaitTimeout, wait_for
from harness.manifests.yamlload import load_all
from harness.models import TERMINAL_STATES, Mode, Scenario, Source, Variant
from harness.rbac.live import Check, snapshot

DEFAULT_RUN_TIMEOUT = 900


@dataclass
class RunContext:
    """Everything one (variant, mode) needs to run scenarios. `cluster` is a harness.cluster ClusterHandle."""

    cluster: Any
    variant: Variant
    mode: Mode
    source: Source
    kube: Kube
    kfp: KfpSession
    run_id: str  # the harness run id (experiment `kfpc-<run-id>`), not a KFP run id
    timeouts: Mapping[str, int] = field(default_factory=dict)  # overrides mode.timeouts (key "run")
    poll_interval: float = 5.0
    rbac_checks: Sequence[Check] = ()
    rbac_static: Mapping[Check, bool] = field(default_factory=dict)  # static prediction per check
    progress: Callable[[str], None] = lambda _line: None
    mlmd: Any = None  # a harness.boundary.mlmd.MlmdReader; None: task outputs are not read (bundles are partial)

    @property
    def run_timeout(self) -> int:
        return int(self.timeouts.get("run") or self.mode.timeouts.get("run") or DEFAULT_RUN_TIMEOUT)

    @property
    def secrets(self) -> list[str]:
        return [*self.kfp.secrets, *self.kube.secrets]


def wait_for_run(ctx: RunContext, run_id: str, follower: LogFollower | None = None) -> tuple[dict[str, Any], str]:
    """Named condition `KFP run <id> reaches a terminal state` (harness.live.wait): (last run JSON, "" or why not).

    A failing read is a pending status, not an error: the API may blip while the run goes on. `follower`
    attaches to new agent pods before each read, so their logs are followed before the run can complete.
    """
    last: dict[str, Any] = {"run_id": run_id, "state": "UNKNOWN"}

    def check() -> Status:
        if follower is not None:
            follower.poll()
        try:
            last.clear()
            last.update(ctx.kfp.get_run(run_id))
        except HarnessError as exc:
            last.setdefault("run_id", run_id)
            last.setdefault("state", "UNKNOWN")
            return Status(False, f"reading the run failed: {exc.line()}")
        state = str(last.get("state") or "UNKNOWN")
        return Status(state in TERMINAL_STATES, f"state {state}")

    name = f"KFP run {run_id} reaches a terminal state ({', '.join(TERMINAL_STATES)})"
    try:
        wait_for(name, check, ctx.run_timeout, interval=ctx.poll_interval, progress=ctx.progress)
    except WaitTimeout as exc:
        return dict(last), f"{name}: not done within {ctx.run_timeout}s; last {exc.last.line}"
    return dict(last), ""


def run_scenario(ctx: RunContext, scenario: Scenario, out_dir: str | Path) -> Path:
    """Submit `scenario.pipeline_file` with `scenario.arguments`, wait, collect; returns the bundle directory.

    Skips are the caller's business (`scenario.skip_reason`): this function always runs.
    """
    pipeline = Path(scenario.pipeline_file)
    if not pipeline.is_file():
        raise ConfigError(str(pipeline), f"compiled pipeline of scenario {scenario.name} not found",
                          "compile the scenario first (kfp-conformance scenarios)")
    target = bundle_dir(out_dir, scenario.name, ctx.variant.name, ctx.mode.name)
    created = apply_setup(ctx, scenario)
    try:
        started = datetime.now(timezone.utc)
        try:
            run, problem, followed = _submit_runs(ctx, scenario, pipeline)
        except HarnessError as exc:
            # the submission failed even after the retry policy: this scenario's evidence is a partial bundle
            # saying why, and the session goes on with the next scenario (issue: faults never lose the rest)
            reason = f"the run could not be submitted or followed: {exc.line()}"
            write_run_bundle(target, scenario, ctx.variant, ctx.mode, ctx.source,
                             {"run_id": "", "state": "UNKNOWN", "error": exc.line()}, Collected(),
                             status="partial", reason=reason, secrets=ctx.secrets)
            return target
        # called inside collection, so a failing SubjectAccessReview costs its own evidence only
        rbac = (lambda: snapshot(ctx.kube, ctx.rbac_checks, ctx.rbac_static)) if ctx.rbac_checks else None
        collected = collect_run(ctx.kube, ctx.variant, ctx.mode, run, secrets=ctx.secrets, window_start=started,
                                rbac=rbac, profile_namespace=ctx.mode.user_namespace if ctx.mode.multi_user else None,
                                mlmd=ctx.mlmd, pipeline_spec=pipeline_spec(pipeline), followed_logs=followed)
        write_run_bundle(target, scenario, ctx.variant, ctx.mode, ctx.source, run, collected,
                         status="partial" if problem else "complete", reason=problem, secrets=ctx.secrets)
    finally:
        remove_setup(ctx, created)
    return target


def pipeline_spec(path: Path) -> dict[str, Any]:
    """The PipelineSpec (first YAML document) of a compiled pipeline; {} if it cannot be read (outputs are
    then left as MLMD holds them, untyped)."""
    try:
        docs = load_all(path.read_text())  # libyaml: read for every run (pure-Python PyYAML took ~0.1 s each)
        return (docs[0] if docs else None) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _follower(ctx: RunContext, run_id: str) -> LogFollower | None:
    logs = ctx.variant.driver.logs
    if logs.where != "agent-pod":  # driver pods and the central Deployment outlive the run
        return None
    return LogFollower(ctx.kube, ctx.mode.user_namespace, run_id, logs.container, timeout=ctx.run_timeout + 60)


def _submit_runs(ctx: RunContext, scenario: Scenario, pipeline: Path) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Submit the scenario (`repeat_runs` times, one after the other) and wait; the last run is the evidence.

    A single run has caching off (a reused cluster must not serve it from an earlier harness run); repeated
    runs keep the caching the pipeline was compiled with, since their point is the second run's cache hit.
    """
    caching = None if scenario.repeat_runs > 1 else False
    previous: list[dict[str, Any]] = []
    for attempt in range(1, scenario.repeat_runs + 1):
        submitted = ctx.kfp.submit(str(pipeline), scenario.arguments,
                                   run_name=f"{scenario.name}-{ctx.variant.name}-{ctx.mode.name}"
                                            + (f"-{attempt}" if scenario.repeat_runs > 1 else ""),
                                   experiment=f"kfpc-{ctx.run_id}", enable_caching=caching)
        follower = _follower(ctx, submitted["run_id"])
        run, problem = wait_for_run(ctx, submitted["run_id"], follower)
        followed = follower.stop(grace=0.0 if problem else 5.0) if follower is not None else {}
        if follower is not None and follower.problems:
            run["follow_problems"] = follower.problems
        run = {**submitted, **run, "namespace": ctx.mode.user_namespace}
        if attempt == scenario.repeat_runs or problem:
            return {**run, "previous_runs": previous}, problem, followed
        previous.append({"id": run.get("run_id", ""), "state": run.get("state") or "UNKNOWN"})
    raise AssertionError("unreachable: repeat_runs >= 1")


SETUP_PLURALS = {("v1", "Secret"): "secrets", ("v1", "ConfigMap"): "configmaps"}


def apply_setup(ctx: RunContext, scenario: Scenario) -> list[tuple[str, str, str]]:
    """Create the scenario's Secrets and ConfigMaps in the user namespace, labelled as ours; returns what
    was created (deleted in reverse order after collection). An object left by a killed run is replaced."""
    created: list[tuple[str, str, str]] = []
    namespace = ctx.mode.user_namespace
    for obj in scenario.setup:
        plural = SETUP_PLURALS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if plural is None:
            raise ConfigError(scenario.name, f"setup object kind {obj.get('kind')!r} is not supported",
                              "scenario setup may create v1 Secrets and ConfigMaps")
        for value in [*(obj.get("stringData") or {}).values(), *(obj.get("data") or {}).values()]:
            if obj["kind"] == "Secret":
                ctx.kube.remember_secret(str(value))  # redacted from every log and bundle
        meta = dict(obj.get("metadata") or {})
        labels = {**(meta.get("labels") or {}), "app.kubernetes.io/managed-by": "kfp-conformance",
                  "kfp-conformance/run": ctx.run_id}
        body = {**obj, "metadata": {**meta, "namespace": namespace, "labels": labels}}
        if ctx.kube.find("v1", plural, meta["name"], namespace) is not None:
            ctx.kube.delete("v1", plural, meta["name"], namespace)
        ctx.kube.create("v1", plural, namespace, body)
        created.append(("v1", plural, meta["name"]))
    return created


def remove_setup(ctx: RunContext, created: list[tuple[str, str, str]]) -> None:
    for api_version, plural, name in reversed(created):
        with contextlib.suppress(HarnessError):  # cleanup must not hide the run's own outcome
            ctx.kube.delete(api_version, plural, name, ctx.mode.user_namespace)
