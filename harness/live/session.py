"""The live tier's orchestration, shared by `kfp-conformance run` and the pytest fixtures.

Per (variant, mode): acquire a cluster through the ledger (first user creates AND installs it, under the
ledger's `creating` state, so xdist workers wait for a ready install) -> connect to the KFP API
(`harness.boundary.kfpapi.connect`) -> run each scenario (`harness.live.runs.run_scenario`) -> bundles. Cleanup is
structural: an ExitStack/finally releases the cluster on success, failure, SIGINT and SIGTERM (raised as
exceptions), and deletes it unless `keep` says otherwise. Signals that arrive during cleanup are deferred
until it is done, so a second Ctrl-C cannot leave a half-deleted cluster behind.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boundary.proc import Runner
from harness.cluster.base import ClusterHandle, ClusterProvider, new_run_id
from harness.cluster.controlplane import ControlPlaneProvider
from harness.cluster.existing import ExistingProvider
from harness.cluster.kind import KindProvider
from harness.cluster.ledger import Claim, Ledger
from harness.cluster.prerequisites import offline_prerequisites, tree_files
from harness.errors import HarnessError
from harness.live.install import INSTALL_PHASES, Installer
from harness.models import Mode, Scenario, Variant
from harness.plan.build import NO_KUBELET, PairInput, PairPlan, Plan, PlanMemo, PlanOptions, build_plan
from harness.rbac.live import Check
from harness.render.kustomize import load_manifests
from harness.selection import Selection
from harness.static.credentials import reviewer_copy


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` and ExitStack runs."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGINT -> KeyboardInterrupt (Python's default), SIGTERM -> Terminated; restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while cleanup runs, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    except BaseException as exc:
        # an interrupt that came during cleanup wins over a cleanup error (e.g. a failed `kind delete`),
        # so no further pair starts
        if pending and not isinstance(exc, KeyboardInterrupt):
            raise (Terminated() if pending[0] == signal.SIGTERM else KeyboardInterrupt()) from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pending:
        raise Terminated() if pending[0] == signal.SIGTERM else KeyboardInterrupt()


@dataclass(frozen=True)
class LiveOptions:
    run_id: str = ""
    provider: str = "kind"
    keep: str = "never"
    reuse: bool = False
    max_clusters: int = 2
    kubeconfig: str | None = None
    context: str | None = None
    images: dict[str, dict[str, str]] = field(default_factory=dict)
    driver_images: dict[str, str] = field(default_factory=dict)
    local_tag: str = ""
    cluster_wait: float = 3 * 3600  # how long to wait for a --max-clusters slot or another worker's create
    poll_interval: float | None = None  # None: the plan's intervals (harness.live.install.Installer); tests shorten them
    state_dir: str | None = None  # where the cluster ledger lives (None: the cache dir); the CLI reads KFPC_STATE_DIR
    # the caller's environment (the library never reads it): --provider controlplane finds its binaries
    # (KFPC_CONTROLPLANE_BIN_DIR, KUBEBUILDER_ASSETS, the build cache) and state dir through it
    env: dict[str, str] = field(default_factory=dict)

    def plan_options(self, existing: ClusterHandle | None) -> PlanOptions:
        return PlanOptions(run_id=self.run_id or new_run_id(), provider=self.provider, keep=self.keep,
                           reuse=self.reuse, max_clusters=self.max_clusters, images=self.images,
                           driver_images=self.driver_images, existing=existing, local_tag=self.local_tag,
                           env=self.env)


def existing_handle(options: LiveOptions) -> tuple[ExistingProvider | None, ClusterHandle | None]:
    """For --provider existing: validate the kubeconfig (one line, exit 2 if bad) before anything else."""
    if options.provider != "existing":
        return None, None
    kubeconfig = options.kubeconfig or str(Path.home() / ".kube" / "config")  # the CLI passes $KUBECONFIG
    provider = ExistingProvider(kubeconfig, options.context)
    return provider, provider.handle(f"existing-{provider.context}")


def pair_inputs(selection: Selection, which: str = "ci", progress: Callable[[str], None] | None = None
                ) -> list[PairInput]:
    """Render each selected (variant, mode) with the static tier's renderer and mirror."""
    inputs = []
    total = len(selection.variants) * len(selection.modes)
    memo = PlanMemo()  # this run's plans share their YAML work (every mode's pairs apply the same prerequisites)
    for variant in selection.variants:
        source = selection.sources[variant.name]
        tree = Path(source.path)
        for mode in selection.modes:
            if progress is not None:
                progress(f"rendering {len(inputs) + 1}/{total} for the plan: {variant.name} {mode.name}")
            render = selection.renderer.render_install(tree, mode, which)
            live, renderer = selection.config.live, selection.renderer
            fetched = offline_prerequisites(mode, live, renderer.mirror, renderer.render_directory)
            inputs.append(PairInput(variant, mode, source, render.cluster_scoped.manifests, render.overlay.manifests,
                                    {"cluster-scoped": render.cluster_scoped.digest,
                                     "overlay": render.overlay.digest}, tree_files(tree, mode, live), fetched,
                                    memo))
    return inputs


def make_plan(selection: Selection, scenarios: list[Scenario], options: LiveOptions,
              existing: ClusterHandle | None = None, progress: Callable[[str], None] | None = None) -> Plan:
    return build_plan(config=selection.config, pairs=pair_inputs(selection, progress=progress), scenarios=scenarios,
                      options=options.plan_options(existing))


def write_plan(plan: Plan, out_dir: Path, work_dir: Path | None = None) -> None:
    """The plan's files (kind configs, patched renders), plan.json and plan.txt in the out dir for reviewers,
    with every Secret value and literal credential replaced by its fingerprint; with `work_dir`, the files as
    they are applied go there (a private directory the commands run in, never uploaded)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reviewed: dict[str, str] = {}  # every pair of a mode writes the same prerequisite copies: mask each text once
    for relative, text in plan.files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith((".yaml", ".yml")):
            if text not in reviewed:
                reviewed[text] = reviewer_copy(text)
            path.write_text(reviewed[text])
        else:
            path.write_text(text)
        if work_dir is not None:
            private = work_dir / relative
            private.parent.mkdir(parents=True, exist_ok=True)
            private.write_text(text)
    (out_dir / "plan.json").write_text(plan.to_json())
    (out_dir / "plan.txt").write_text(plan.to_text())


def private_work_dir(cache_dir: Path, run_id: str) -> Path:
    """`<cache>/runs/<run-id>`, readable by this user only: applied manifests and cluster kubeconfigs."""
    path = Path(cache_dir).resolve() / "runs" / run_id
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def ledger_dir(cache_dir: Path, explicit: Path | str | None = None) -> Path:
    """Where the cluster ledger lives: explicit (the CLI passes KFPC_STATE_DIR), else the cache dir (host-wide)."""
    return Path(explicit or cache_dir)


@dataclass
class PairResult:
    pair: str
    cluster: str
    status: str = "pending"  # ok | installed (control plane: install only) | failed | interrupted
    error: str = ""
    bundles: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    kept: bool = False
    reused: bool = False
    not_verified: list[str] = field(default_factory=list)  # e.g. a control plane's neutralised webhooks


class LiveSession:
    """One run's live tier: the plan, the ledger, the provider and the step runner."""

    def __init__(self, selection: Selection, plan: Plan, options: LiveOptions, *, runner: Runner | None = None,
                 progress: Callable[[str], None] = _stderr, state_dir: Path | None = None) -> None:
        self.selection, self.plan, self.options, self.progress = selection, plan, options, progress
        self.out_dir = selection.out_dir.resolve()
        self.runner = runner or Runner()
        self.settings = selection.config.live
        self.ledger = Ledger(ledger_dir(selection.cache_dir, state_dir or options.state_dir) / "clusters.json")
        # every child's pid goes into the ledger, so `clusters prune` can end it after a SIGKILL
        self.runner.on_spawn, self.runner.on_exit = self.ledger.record_process, self.ledger.forget_process
        if options.provider == "kind":
            self.provider: ClusterProvider | ControlPlaneProvider | None = KindProvider(self.settings, self.runner)
        elif options.provider == "controlplane":
            self.provider = ControlPlaneProvider(env=options.env, progress=progress)
        else:
            self.provider, _ = existing_handle(options)
        self.work_dir = private_work_dir(selection.cache_dir, plan.run_id)
        self.installer = Installer(self.runner, self.out_dir, progress, poll_interval=options.poll_interval,
                                   clusters={p.cluster.name: p.cluster for p in plan.pairs}, work_dir=self.work_dir)
        self.pairs = {p.key: p for p in plan.pairs}

    def prepare(self) -> None:
        write_plan(self.plan, self.out_dir, self.work_dir)
        self.installer.run_steps(self.plan.preflight)

    def static_access(self, pair: PairPlan, variant: Variant, mode: Mode, checks: list[Check]) -> dict[Check, bool]:
        """The static RBAC evaluator's answer to each live check, over exactly what was applied: every file an
        install step applies (cluster-scoped, prerequisites, overlay, the tree's test_data/kubernetes files),
        plus the profile controller's per-namespace objects in multi-user mode. Indexing fewer phases gave
        false denials for the tenant's default-editor (checked against a real apiserver: docs/rbac.md)."""
        from harness.rbac.evaluator import index_manifests, predict_access

        manifests = sorted({s.manifest for s in pair.phase_steps(*INSTALL_PHASES) if s.manifest.endswith(".yaml")
                            and s.manifest in self.plan.files})
        applied = [d for name in manifests for d in load_manifests(self.plan.files[name])]
        index = index_manifests([*applied, *self.selection.config.profile_objects(variant, mode)])
        return {check: answer["allowed"] for check, answer in zip(checks, predict_access(index, checks))}

    def overlay_manifests(self, pair: PairPlan) -> list[dict[str, Any]]:
        text = self.plan.files.get(f"rendered/{pair.key}/overlay.yaml", "")
        return load_manifests(text)

    def _absolute(self, handle: ClusterHandle) -> ClusterHandle:
        path = Path(handle.kubeconfig)
        return handle if path.is_absolute() else ClusterHandle(handle.name, handle.provider,
                                                               str(self.work_dir / path), handle.context)

    def _create_and_install(self, pair: PairPlan) -> ClusterHandle:
        if isinstance(self.provider, ControlPlaneProvider):
            self.provider.create(pair.cluster.name, self.settings.timeout("create-cluster"))
        else:
            self.installer.run_steps(pair.phase_steps("cluster"))
        self.install(pair)
        return self._absolute(pair.cluster)

    def install(self, pair: PairPlan) -> None:
        if isinstance(self.provider, ControlPlaneProvider):
            self._install_on_controlplane(pair)
        else:
            self.installer.run_steps(pair.phase_steps(*INSTALL_PHASES))
        self.ledger.record_install(pair.cluster.name, pair.install_digest)

    def _install_on_controlplane(self, pair: PairPlan) -> None:
        """The same planned steps through `install_on_controlplane` (offline mirror for online URLs, webhooks
        neutralised); its report goes to <out>/controlplane/<pair>.json, written even when a step fails."""
        from harness.live.controlplane_install import InstallReport, install_on_controlplane

        mirror = self.selection.renderer.mirror
        if mirror is None:
            raise HarnessError("--provider controlplane needs the offline mirror of remote bases (it has no "
                               "internet path for Istio, cert-manager or the Profile controller)",
                               "pass --remote-bases DIR (env KFPC_REMOTE_BASES)")
        path = self.out_dir / "controlplane" / f"{pair.key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        report = InstallReport()
        try:
            report = install_on_controlplane(pair, self.installer, mirror)
        except FileNotFoundError as exc:  # a URL the mirror does not hold
            raise HarnessError(f"[{pair.key}] {exc}", "add it to the --remote-bases mirror") from None
        finally:
            data = report.to_dict() | {"pair": pair.key, "cluster": pair.cluster.name,
                                       "complete": bool(report.seconds)}
            path.write_text(json.dumps(data, indent=2) + "\n")
        self.progress(f"[{pair.key}] install on the control plane: {len(report.applied)} apply step(s) accepted in "
                      f"{report.seconds:.0f}s; {len(report.not_verified)} item(s) not verified -> {path}")
        for item in report.not_verified:
            self.progress(f"[{pair.key}] not verified: {item}")

    def skip_scenarios(self, key: str, scenarios: list[Scenario], result: PairResult) -> None:
        """A control plane runs no container: every scenario is not verified (never passed), and so are the
        report's items (neutralised webhooks, conditions that need a workload)."""
        for scenario in scenarios:
            result.skipped[scenario.name] = NO_KUBELET
        report = self.out_dir / "controlplane" / f"{key}.json"
        if report.is_file():
            result.not_verified = list(json.loads(report.read_text()).get("not_verified", []))
        if scenarios:
            self.progress(f"[{key}] {len(scenarios)} scenario(s) {NO_KUBELET}")

    @contextlib.contextmanager
    def cluster(self, key: str, result: PairResult | None = None) -> Iterator[ClusterHandle]:
        """A ready, installed cluster for one pair; released (and deleted per `keep`) on any exit."""
        pair = self.pairs[key]
        result = result or PairResult(key, pair.cluster.name)
        claim = Claim()
        failed = False
        try:
            handle = self.ledger.acquire(
                pair.cluster.name, claim=claim, run_id=self.plan.run_id, variant=pair.variant, mode=pair.mode,
                provider=self.options.provider, create=lambda: self._create_and_install(pair),
                max_clusters=self.options.max_clusters, wait_timeout=self.options.cluster_wait,
                reuse=self.options.reuse, progress=self.progress)
            result.cluster, result.reused = claim.name, claim.reused
            if not claim.created and claim.entry.get("install_digest") != pair.install_digest:
                self.progress(f"[{key}] reusing {claim.name}: install changed, applying it again")
                self.install(pair)
            yield handle
        except BaseException:
            failed = True
            raise
        finally:
            with deferred_signals():
                result.kept = self._release(pair, claim, failed or result.status == "failed")

    def _release(self, pair: PairPlan, claim: Claim, failed: bool) -> bool:
        if not claim.name or not (claim.created or claim.holding):
            return False
        name = claim.name
        remaining = self.ledger.release(name)
        if not self.provider.owns_clusters:
            if remaining == 0:
                self.ledger.forget(name)
            return False
        if failed and claim.created:
            dest = self.provider.export_logs(name, self.out_dir / "diagnostics" / pair.key / "kind-logs")
            if dest:
                self.progress(f"[{pair.key}] kind logs in {dest}")
        keep = self.options.keep == "always" or (self.options.keep == "on-failure" and failed)
        if keep:
            self.ledger.keep(name, "failed" if failed else "--keep-clusters always")
            self.progress(f"[{pair.key}] kept cluster {name} (kubeconfig {self._absolute(pair.cluster).kubeconfig}; "
                          "remove with `kfp-conformance clusters prune --include-kept`)")
            return True
        if remaining == 0 and self.ledger.begin_delete(name):
            self.progress(f"[{pair.key}] deleting cluster {name}")
            try:
                self.provider.delete(name, self.settings.timeout("delete-cluster"))
            except BaseException as exc:
                # never erase what may still exist: the entry stays for `clusters prune`
                reason = exc.line() if isinstance(exc, HarnessError) else type(exc).__name__
                self.ledger.delete_failed(name, reason)
                self.progress(f"[{pair.key}] could not delete cluster {name}: {reason} "
                              "(kept in the ledger; run `kfp-conformance clusters prune`)")
                if not failed or not isinstance(exc, HarnessError):
                    raise
            else:
                self.ledger.forget(name)
        return False

    def run_scenarios(self, key: str, handle: ClusterHandle, scenarios: list[Scenario],
                      result: PairResult) -> None:
        """Connect once, then run every applicable scenario; bundles land in out/bundles/<scenario>/<pair>/."""
        from harness.boundary.kfpapi import PortForward, connect
        from harness.boundary.kube import Kube
        from harness.boundary.mlmd import MlmdReader
        from harness.live.runs import RunContext, run_scenario
        from harness.rbac.live import checks_from_identities

        pair = self.pairs[key]
        variant, mode = self.selection.config.variant(pair.variant), self.selection.config.mode(pair.mode)
        runnable = []
        for scenario in scenarios:
            reason = scenario.skip_reason(variant.name, mode.name)
            if reason:
                result.skipped[scenario.name] = reason
            else:
                runnable.append(scenario)
        if not runnable:
            return
        kube = Kube.for_cluster(handle, runner=self.runner)
        identities = [*variant.driver.identities_for(mode.name), f"{mode.user_namespace}/{mode.workflow_service_account}"]
        namespaces = sorted({self.settings.namespace, mode.user_namespace})
        checks = checks_from_identities(identities, namespaces)
        static = self.static_access(pair, variant, mode, checks)
        # Task outputs are in ML Metadata (harness.live.taskoutputs): Service metadata-grpc-service, port 8080
        # (manifests/kustomize/base/metadata/base/metadata-grpc-service.yaml in every tree). In TLS mode the
        # server serves the API server's certificate without client verification (env/cert-manager/
        # platform-agnostic-standalone-tls/patches/metadata-grpc-config-writer.yaml: ssl_config,
        # client_verify: false), so the API's CA verifies it; the certificate names 127.0.0.1.
        with connect(handle, mode, kube, renders=self.overlay_manifests(pair), runner=self.runner) as session, \
                PortForward(handle, self.runner, namespace="kubeflow", service="metadata-grpc-service", port=8080,
                            timeout=60) as mlmd_forward, \
                MlmdReader(f"127.0.0.1:{mlmd_forward.port}", ca_file=session.ca_file if mode.tls else None) as mlmd:
            for scenario in runnable:
                self.progress(f"[{key}] running {scenario.name}")
                ctx = RunContext(cluster=handle, variant=variant, mode=mode,
                                 source=self.selection.sources[variant.name], kube=kube, kfp=session,
                                 run_id=self.plan.run_id, rbac_checks=checks, rbac_static=static, mlmd=mlmd)
                bundle = run_scenario(ctx, scenario, self.out_dir)
                result.bundles.append(str(bundle.relative_to(self.out_dir)))
                status = json.loads((bundle / "bundle.json").read_text()).get("status")
                if status != "complete":
                    result.status = "failed"
                    result.error = f"bundle {bundle.name} of {scenario.name} is {status}"

    def run(self, scenarios: list[Scenario]) -> list[PairResult]:
        """Every pair in plan order; a failing pair does not stop the next one (its error is recorded)."""
        results: list[PairResult] = []
        with signals_as_exceptions():
            self.prepare()
            for pair in self.plan.pairs:
                result = PairResult(pair.key, pair.cluster.name)
                results.append(result)
                try:
                    with self.cluster(pair.key, result) as handle:
                        if isinstance(self.provider, ControlPlaneProvider):
                            self.skip_scenarios(pair.key, scenarios, result)
                        else:
                            self.run_scenarios(pair.key, handle, scenarios, result)
                    if result.status == "pending":
                        # a control plane verified the install only: said apart from a pair whose scenarios ran
                        result.status = "installed" if isinstance(self.provider, ControlPlaneProvider) else "ok"
                except HarnessError as exc:
                    result.status, result.error = "failed", exc.line()
                    self.progress(f"[{pair.key}] failed: {exc.line()}")
                except KeyboardInterrupt:
                    result.status = "interrupted"
                    self._write_summary(results)
                    raise
        self._write_summary(results)
        return results

    def _write_summary(self, results: list[PairResult]) -> None:
        data = {"run_id": self.plan.run_id, "pairs": [vars(r) for r in results]}
        (self.out_dir / "live.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
