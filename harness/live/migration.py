"""Walk a `MigrationPlan` on a cluster: install the old variant, keep runs, move in place, verify.

The install and the cluster's life (ledger, keep policy, SIGINT/SIGTERM cleanup) are `harness.live.session`'s
`LiveSession`; apply/wait steps go through `harness.live.install.Installer` (kubectl via `harness.boundary.proc`); runs
through `harness.boundary.kfpapi` / `harness.live.runs`; object lookups through `harness.boundary.kube`. Everything recorded goes
to `<out>/migration.json` (schema `harness/schemas/migration.schema.json`), redacted, with the verdict's
findings; it is written even when a step fails (status `partial`), so the report says how far it got.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boundary.kube import ARGO_WORKFLOWS, Kube
from harness.boundary.proc import Runner
from harness.boundary.redact import redact_value
from harness.cluster.base import ClusterHandle
from harness.errors import HarnessError
from harness.live.install import RUNNABLE
from harness.live.runs import RunContext, run_scenario, wait_for_run
from harness.live.session import LiveOptions, LiveSession, signals_as_exceptions
from harness.live.wait import Status, WaitTimeout, wait_for
from harness.manifests.yamlload import load_all
from harness.models import Finding, Scenario
from harness.plan.build import PlanStep
from harness.plan.migration import (
    MigrationPlan,
    Move,
    driver_transport,
    new_record,
    plural,
    run_record,
    validate_record,
    verdict,
)
from harness.selection import Selection


@dataclass
class MigrationRun:
    selection: Selection  # both variants, the one mode
    plan: MigrationPlan
    options: LiveOptions
    scenarios: dict[str, Scenario]  # kept scenarios and the in-flight one, compiled
    runner: Runner = field(default_factory=Runner)
    progress: Callable[[str], None] = lambda _line: None
    state_dir: Path | None = None
    poll_interval: float = 5.0

    def __post_init__(self) -> None:
        self.out_dir = self.selection.out_dir.resolve()
        self.record = new_record(self.plan)
        self.mode = self.selection.config.mode(self.plan.mode)
        self.kept: dict[str, str] = {}  # run id -> scenario, every run whose data must survive

    # -- entry point ------------------------------------------------------------------------------------
    def run(self) -> tuple[dict[str, Any], list[Finding]]:
        session = LiveSession(self.selection, self.plan.install, self.options, runner=self.runner,
                              progress=self.progress, state_dir=self.state_dir)
        findings: list[Finding] = []
        try:
            with signals_as_exceptions():
                session.prepare()
                self._write_files()
                with session.cluster(self.plan.pair) as handle:
                    kube = Kube.for_cluster(handle, runner=self.runner)
                    for number, step in enumerate(self.plan.steps, 1):
                        if step.phase == "cleanup":
                            continue
                        self.progress(f"[migration {step.phase}] {step.description}")
                        if step.action == "migration":
                            self._migration_step(step, handle, kube)
                        elif step.action in RUNNABLE:
                            session.installer.run_step(step, number)
                    self.record["status"], self.record["reason"] = "complete", ""
        except HarnessError as exc:
            self.record["reason"] = exc.line()
            raise
        except KeyboardInterrupt:
            self.record["reason"] = "interrupted (cluster cleanup ran)"
            raise
        finally:
            findings = verdict(self.record)
            self._write_record(findings, kube_secrets=self.runner.secrets)
        return self.record, findings

    def _write_files(self) -> None:
        for relative, text in self.plan.files.items():
            path = self.out_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (self.out_dir / "migration-plan.json").write_text(self.plan.to_json())
        (self.out_dir / "migration-plan.txt").write_text(self.plan.to_text())

    def _write_record(self, findings: list[Finding], kube_secrets: list[str]) -> Path:
        data = redact_value({**self.record, "findings": [f.to_dict() for f in findings]}, kube_secrets)
        validate_record(data)
        path = self.out_dir / "migration.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    # -- migration steps --------------------------------------------------------------------------------
    def _move(self, name: str) -> dict[str, Any]:
        return next(m for m in self.record["moves"] if m["name"] == name)

    def _renders(self, variant: str) -> list[dict[str, Any]]:
        path = self.out_dir / "rendered" / f"{variant}.{self.mode.name}" / "overlay.yaml"
        return [d for d in load_all(path.read_text()) if isinstance(d, dict)] if path.is_file() else []

    def _context(self, handle: ClusterHandle, kube: Kube, kfp: Any, variant: str, **timeouts: int) -> RunContext:
        return RunContext(cluster=handle, variant=self.selection.config.variant(variant), mode=self.mode,
                          source=self.selection.sources[variant], kube=kube, kfp=kfp, run_id=self.plan.run_id,
                          timeouts=timeouts, poll_interval=self.poll_interval, progress=self.progress)

    def _migration_step(self, step: PlanStep, handle: ClusterHandle, kube: Kube) -> None:
        from harness.boundary.kfpapi import connect

        spec = step.condition
        name = spec["name"]
        if name == "orphans":
            self._move(spec["move"])["orphans"] = self._lookup_orphans(spec["move"], kube)
            return
        if name == "driver-mode":
            self._move(spec["move"])["driver_mode"]["runs"] = self._driver_modes(spec["move"], kube)
            return
        with connect(handle, self.mode, kube, renders=self._renders(spec["variant"]), runner=self.runner) as kfp:
            ctx = self._context(handle, kube, kfp, spec["variant"])
            if name == "run-scenarios":
                self._run_scenarios(ctx, spec)
            elif name == "start-in-flight":
                self._start_in_flight(ctx, spec, step.timeout)
            elif name == "snapshot-old-runs":
                self._move(spec["move"])["before"] = self._read_kept(ctx)
            elif name == "wait-in-flight":
                self._wait_in_flight(self._context(handle, kube, kfp, spec["variant"], run=step.timeout), spec)
            elif name == "reread-old-runs":
                self._move(spec["move"])["after"] = self._read_kept(ctx)
            else:
                raise HarnessError(f"unknown migration step {name!r} in the plan", "regenerate the plan")

    def _run_scenarios(self, ctx: RunContext, spec: dict[str, Any]) -> None:
        out = self.out_dir / "migration" / spec["stage"]
        for scenario_name in spec["scenarios"]:
            scenario = self.scenarios[scenario_name]
            bundle = run_scenario(ctx, scenario, out)
            data = json.loads((bundle / "bundle.json").read_text())
            run = data.get("run") or {}
            entry = {"scenario": scenario_name, "run_id": run.get("id", ""), "state": run.get("state"),
                     "expected_state": scenario.expected_state, "bundle": str(bundle.relative_to(self.out_dir)),
                     "bundle_status": data.get("status", ""), **({"reason": data["reason"]} if data.get("reason") else {})}
            self.record["runs"].append({**entry, "stage": spec["stage"]})
            if spec.get("move"):
                self._move(spec["move"])["new_runs"].append(entry)
            if entry["run_id"]:
                self.kept[entry["run_id"]] = scenario_name

    def _start_in_flight(self, ctx: RunContext, spec: dict[str, Any], timeout: int) -> None:
        scenario = self.scenarios[spec["scenario"]]
        submitted = ctx.kfp.submit(scenario.pipeline_file, {**scenario.arguments, "seconds": spec["seconds"]},
                                   run_name=f"{scenario.name}-{spec['move']}-in-flight",
                                   experiment=f"kfpc-{self.plan.run_id}")
        last: dict[str, Any] = {}

        def running() -> Status:
            last.clear()
            last.update(ctx.kfp.get_run(submitted["run_id"]))
            state = str(last.get("state") or "UNKNOWN")
            return Status(state not in ("PENDING", "UNKNOWN", "RUNTIME_STATE_UNSPECIFIED"), f"state {state}")

        # a run that never started is recorded as state_before; the verdict notes it was not RUNNING
        with contextlib.suppress(WaitTimeout):
            wait_for(f"in-flight run {submitted['run_id']} starts", running, timeout, interval=self.poll_interval,
                     progress=self.progress)
        self._move(spec["move"])["in_flight"] = {"run_id": submitted["run_id"], "scenario": scenario.name,
                                                 "state_before": last.get("state")}

    def _wait_in_flight(self, ctx: RunContext, spec: dict[str, Any]) -> None:
        flight = self._move(spec["move"])["in_flight"]
        if not flight.get("run_id"):
            return
        run, problem = wait_for_run(ctx, flight["run_id"])
        error = run.get("error") or {}
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        if not message and run.get("state") == "FAILED":  # the failed task's message, if the API has one
            message = _failed_task_message(run)
        flight.update(state=run.get("state"), message=message[:500], timed_out=bool(problem),
                      waited_seconds=float(ctx.run_timeout if problem else 0))
        self.kept[flight["run_id"]] = flight["scenario"]

    def _read_kept(self, ctx: RunContext) -> dict[str, Any]:
        records: dict[str, Any] = {}
        for run_id, scenario in sorted(self.kept.items()):
            try:
                run = ctx.kfp.get_run(run_id)
            except HarnessError as exc:
                records[run_id] = {"scenario": scenario, "read_error": exc.line()}
                continue
            records[run_id] = run_record(run, self._node_outputs(ctx, run_id), scenario=scenario)
        return records

    def _node_outputs(self, ctx: RunContext, run_id: str) -> dict[str, Any] | None:
        """Task outputs of a kept run as ML Metadata holds them (executor outputs exist only there:
        harness.live.taskoutputs), read the same way before and after the move; None when MLMD cannot be read
        (the KFP run record must then do, and the comparison says so)."""
        from harness.boundary.kfpapi import PortForward
        from harness.boundary.mlmd import MlmdReader
        from harness.live.taskoutputs import task_outputs

        try:
            with PortForward(ctx.cluster, self.runner, namespace="kubeflow", service="metadata-grpc-service",
                             port=8080, timeout=60) as forward, \
                    MlmdReader(f"127.0.0.1:{forward.port}", ca_file=ctx.kfp.ca_file if self.mode.tls else None) as mlmd:
                outputs, _ids, _problems = task_outputs(mlmd.run_executions(run_id), None)
        except HarnessError:
            return None
        return outputs or None

    def _driver_modes(self, move_name: str, kube: Kube) -> list[dict[str, Any]]:
        """Each new run's live Workflow (KFP labels it `pipeline/runid`: kubeflow/pipelines 81fc181b1
        backend/src/apiserver/resource/resource_manager.go:1611), reduced to how it called the driver."""
        found = []
        for run in self._move(move_name)["new_runs"]:
            if not run.get("run_id"):
                continue
            entry: dict[str, Any] = {"run_id": run["run_id"], "scenario": run["scenario"]}
            try:
                workflows = kube.list(*ARGO_WORKFLOWS, self.mode.user_namespace,
                                      label_selector=f"pipeline/runid={run['run_id']}")
            except HarnessError as exc:
                workflows, entry["error"] = [], exc.line()
            if workflows:
                entry.update(driver_transport(workflows[0]))
            elif "error" not in entry:
                entry["error"] = f"no Workflow labelled pipeline/runid={run['run_id']} in {self.mode.user_namespace}"
            found.append(entry)
        return found

    def _lookup_orphans(self, move_name: str, kube: Kube) -> list[dict[str, Any]]:
        return lookup_orphans(next(m for m in self.plan.moves if m.name == move_name), kube)


def lookup_orphans(move: Move, kube: Kube) -> list[dict[str, Any]]:
    """GET every object the static prediction says the move leaves behind: `exists` true/false (None + error
    when the lookup itself failed)."""
    found = []
    for orphan in move.orphans:
        entry = {k: orphan[k] for k in ("subject", "kind", "namespace", "name", "origin", "cleanup", "fate")}
        api_version = orphan["api_version"] or ("v1" if not orphan["group"] else "")
        try:
            obj = kube.find(api_version, plural(orphan["kind"]), orphan["name"], orphan["namespace"] or None)
            entry["exists"] = obj is not None
        except HarnessError as exc:
            entry["exists"], entry["error"] = None, exc.line()
        found.append(entry)
    return found


def _failed_task_message(run: dict[str, Any]) -> str:
    for task in (run.get("run_details") or {}).get("task_details") or []:
        error = task.get("error") or {}
        if task.get("state") == "FAILED" and isinstance(error, dict) and error.get("message"):
            return f"{task.get('display_name', '')}: {error['message']}"
    return ""


def compiled_scenarios(plan: MigrationPlan, out_dir: Path) -> dict[str, Scenario]:
    """Compile the kept scenarios and the in-flight one into `<out>/pipelines/` (what the runs submit)."""
    from harness.catalogue import scenarios as catalogue
    from harness.plan.migration import IN_FLIGHT_SCENARIO

    wanted = {*plan.scenarios, IN_FLIGHT_SCENARIO}
    compiled = {}
    for spec in catalogue.discover():
        if spec.name in wanted:
            path = catalogue.compile_scenario(spec, out_dir / "pipelines")
            compiled[spec.name] = catalogue.to_scenario(spec, path)
    missing = wanted - set(compiled)
    if missing:
        raise HarnessError(f"unknown scenario(s) {', '.join(sorted(missing))}", "see `kfp-conformance scenarios`")
    return compiled
