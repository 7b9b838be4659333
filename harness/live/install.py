"""Walk a pair's planned install steps through kubectl (and docker/kind) via `harness.boundary.proc.Runner`.

Every apply is server-side with `--force-conflicts`: the Argo and cert-manager CRDs exceed the 256 KiB
`last-applied-configuration` annotation that client-side apply writes, and a re-install over a kept
cluster must win over the previous field manager (KFP's deploy script relies on plain `apply` because its
CI clusters are always fresh). A step with `attempts` > 1 is tried again after its pause, as KFP CI runs its
deploy script under a retry of 2 attempts. Waits run with the plan's per-step timeouts. When a wait fails, the pods,
events, `describe` and logs of what is not ready are written to `diagnostics/<pair>/<step>/` (redacted),
and a `ClusterError` names the resource and that directory.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.boundary.proc import Runner
from harness.boundary.redact import redact
from harness.cluster.base import ClusterHandle
from harness.errors import ClusterError, CommandFailedError, CommandTimeoutError, HarnessError
from harness.live.wait import WaitImpossible, WaitTimeout, object_exists, pods_calm, pods_ready, wait_for
from harness.plan.build import PlanStep

RUNNABLE = ("refuse", "command", "apply", "wait", "condition")
DEFAULT_INTERVAL = 2.0  # seconds between polls of a condition that names no interval
INSTALL_PHASES = ("registry", "images", "prerequisites", "cluster-scoped", "overlay", "readiness", "profile")
# Slack on top of a kubectl `--timeout`, so kubectl reports the timeout itself (with the resource name).
SLACK = 30


@dataclass
class Installer:
    runner: Runner
    out_dir: Path
    progress: Callable[[str], None] = lambda _line: None
    # None: each condition's own interval (the calm readiness poll is 10 s like KFP's) and each retry's pause;
    # a number replaces both (tests).
    poll_interval: float | None = None
    diagnostics_timeout: int = 60
    secrets: list[str] = field(default_factory=list)
    clusters: dict[str, ClusterHandle] = field(default_factory=dict)  # by name: kubectl for steps without argv
    # where commands run and the plan's files (with their Secret values) and kubeconfigs live: a private
    # directory outside the out dir, so nothing a CI job uploads holds a credential; None: the out dir
    work_dir: Path | None = None

    @property
    def cwd(self) -> Path:
        return self.work_dir or self.out_dir

    def run_steps(self, steps: Iterable[PlanStep]) -> None:
        for number, step in enumerate(steps, 1):
            if step.action in RUNNABLE:
                self.progress(f"[{step.pair} {step.phase}] {step.description}")
                self.run_step(step, number)

    def run_step(self, step: PlanStep, number: int = 0) -> None:
        if step.action == "refuse":
            raise HarnessError(step.description, step.condition.get("fix", ""))
        if step.action == "condition":
            self._condition(step, number)
            return
        if step.skip_if and self.runner.run(list(step.skip_if), timeout=120, cwd=self.cwd,
                                            check=False).returncode == 0:
            self.progress("  already done; skipped")  # e.g. an image built earlier exists locally
            return
        for attempt in range(1, max(step.attempts, 1) + 1):
            try:
                result = self.runner.run(list(step.argv), timeout=step.timeout + SLACK, cwd=self.cwd,
                                         check=False)
            except CommandTimeoutError as exc:
                if step.action == "wait":
                    self._not_ready(step, number, exc.problem, ())
                raise
            if result.returncode == 0 or any(t in result.stderr for t in step.tolerate):
                return
            if attempt < step.attempts:
                tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                pause = step.pause if self.poll_interval is None else self.poll_interval
                self.progress(f"  attempt {attempt} failed ({redact(tail, self.secrets)}); trying again in {pause:g}s")
                time.sleep(pause)
        if step.action == "wait":
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            self._not_ready(step, number, redact(tail, self.secrets), ())
        shown = [redact(a, self.secrets) for a in step.argv]
        raise CommandFailedError(shown, result.returncode, redact(result.stderr[-2000:], self.secrets),
                                 fix=f"step '{step.description}' of {step.pair} failed; fix the cause and re-run "
                                     "(add --keep-clusters on-failure to inspect the cluster)")

    def _condition(self, step: PlanStep, number: int) -> None:
        kubectl = _kubectl_prefix(step.argv) or self._kubectl_for(step)
        spec = step.condition
        if spec["name"] == "pods-ready":
            check = pods_ready(self.runner, kubectl, spec["namespace"], spec.get("skip", ()), spec.get("selector", ""))
        elif spec["name"] == "pods-calm":
            check = pods_calm(self.runner, kubectl, spec["namespace"], spec.get("skip", ()), spec["polls"])
        elif spec["name"] == "object-exists":
            check = object_exists(self.runner, kubectl, spec["kind"], spec["object"], spec["namespace"])
        else:
            raise ClusterError(f"unknown wait condition {spec['name']!r} in the plan", "regenerate the plan")
        try:
            interval = self.poll_interval if self.poll_interval is not None else spec.get("interval", DEFAULT_INTERVAL)
            wait_for(step.target or spec["name"], check, step.timeout, interval=interval,
                     progress=lambda line: self.progress("  " + line))
        except WaitTimeout as exc:
            self._not_ready(step, number, f"not ready after {step.timeout}s: {exc.last.line}", exc.last.pending)
        except WaitImpossible as exc:
            self._not_ready(step, number, exc.last.impossible, exc.last.pending)

    def _kubectl_for(self, step: PlanStep) -> list[str]:
        """kubectl for a step without a kubectl argv (conditions): its cluster's handle (an existing cluster's
        own kubeconfig), else a kind cluster as `harness.plan.build` names it (kubeconfig relative to the out dir)."""
        handle = self.clusters.get(step.cluster)
        if handle:
            return handle.kubectl()
        cluster = step.cluster
        return ["kubectl", "--kubeconfig", f"clusters/{cluster}/kubeconfig", "--context", f"kind-{cluster}"]

    # -- diagnostics -------------------------------------------------------------------------------------
    def _not_ready(self, step: PlanStep, number: int, reason: str, pending: Iterable[str]) -> None:
        directory = self.collect_diagnostics(step, number, reason, pending)
        raise ClusterError(f"{step.pair}: {step.target or step.description} not ready ({reason})",
                           f"diagnostics in {directory}; raise live.timeouts in the config if it is only slow")

    def collect_diagnostics(self, step: PlanStep, number: int, reason: str, pending: Iterable[str] = ()) -> Path:
        """Pods, events, describe and logs of what is not ready; best effort, every file redacted."""
        slug = re.sub(r"[^a-z0-9.-]+", "-", f"{number:02d}-{step.phase}-{step.target or step.action}".lower()).strip("-")
        directory = self.out_dir / "diagnostics" / step.pair / slug[:80]
        directory.mkdir(parents=True, exist_ok=True)
        kubectl = _kubectl_prefix(step.argv) or self._kubectl_for(step)
        kind, namespace, name = _split_target(step.target, step.namespace)
        commands: dict[str, list[str]] = {}
        if namespace:
            commands["pods.txt"] = [*kubectl, "get", "pods", "-n", namespace, "-o", "wide"]
            commands["events.txt"] = [*kubectl, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]
        if kind and name and name != "*":
            ns = ["-n", namespace] if namespace else []
            for one in name.split(","):
                commands[f"describe-{kind}-{one}.txt"] = [*kubectl, "describe", f"{kind}/{one}", *ns]
                if kind in ("deployment", "statefulset", "daemonset"):
                    commands[f"logs-{kind}-{one}.txt"] = [*kubectl, "logs", f"{kind}/{one}", *ns,
                                                          "--all-containers", "--tail=500"]
        elif kind and namespace:
            commands[f"describe-{kind}.txt"] = [*kubectl, "describe", kind, "-n", namespace]
        for item in pending:
            pod = item.split(" ", 1)[0]
            if "/" in pod:
                continue
            commands[f"describe-pod-{pod}.txt"] = [*kubectl, "describe", f"pod/{pod}", "-n", namespace]
            commands[f"logs-pod-{pod}.txt"] = [*kubectl, "logs", f"pod/{pod}", "-n", namespace, "--all-containers",
                                               "--tail=500"]
        written: dict[str, str] = {}
        for filename, argv in commands.items():
            try:
                result = self.runner.run(argv, timeout=self.diagnostics_timeout, cwd=self.cwd, check=False)
                text = result.stdout + (f"\n# stderr:\n{result.stderr}" if result.stderr.strip() else "")
            except (CommandFailedError, CommandTimeoutError) as exc:
                text = f"# collector failed: {exc.line()}\n"
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename)
            (directory / safe).write_text(redact(text, self.secrets))
            written[safe] = " ".join(redact(a, self.secrets) for a in argv[5:] if a)
        summary = {"pair": step.pair, "step": step.description, "target": step.target, "reason": reason,
                   "pending": list(pending), "timeout": step.timeout, "files": written}
        (directory / "diagnostics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return directory


def _kubectl_prefix(argv: Iterable[str]) -> list[str]:
    """`kubectl --kubeconfig K --context C` from a planned kubectl argv, or [] if it is not one."""
    argv = list(argv)
    return argv[:5] if argv[:2] == ["kubectl", "--kubeconfig"] and len(argv) >= 5 else []


def _split_target(target: str, namespace: str) -> tuple[str, str, str]:
    """`deployment/kubeflow/ml-pipeline` -> (deployment, kubeflow, ml-pipeline); `crd/a,b` -> (crd, '', 'a,b')."""
    parts = target.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], namespace if parts[0] in ("pods", "pod") else "", parts[1] if parts[0] not in ("pods",) else ""
    return "", namespace, ""
