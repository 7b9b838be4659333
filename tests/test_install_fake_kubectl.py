"""Install steps and readiness waits through a fake `kubectl` on PATH: timeouts give diagnostics and a clear error.

The steps come from a real plan over the shared trees; only kubectl (and kind/docker) are fakes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ClusterError, CommandFailedError
from harness.live.install import Installer
from harness.live.session import LiveOptions, LiveSession, existing_handle, make_plan, write_plan
from tests.installtrees import mirror_with_cert_manager
from tests.livefakes import make_fakes, selection_for, shared_cache

CANARY = "eyJhbGciOiJSUzI1NiJ9.Y2FuYXJ5LXRva2VuLXBheWxvYWQ.c2lnbmF0dXJlLWNhbmFyeQ"


@pytest.fixture(scope="module")
def plan(kfp_trees, remote_bases, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), ["driver-pod"], ["standalone"])
    return make_plan(selection, [], LiveOptions(run_id="inst"))


def _step(plan, phase, contains):
    return next(s for s in plan.pairs[0].steps if s.phase == phase and contains in s.description)


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_install_fake_kubectl_rollout_timeout_writes_diagnostics_and_names_the_deployment(plan, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    step = _step(plan, "readiness", "kubeflow/ml-pipeline rolled out")
    installer = Installer(fakes.runner(KFPC_FAKE_WAIT_TIMEOUT="deployment/ml-pipeline -n", KFPC_FAKE_TOKEN=CANARY),
                          tmp_path, secrets=[CANARY])
    with pytest.raises(ClusterError) as raised:
        installer.run_step(step, 7)
    message = raised.value.line()
    directory = tmp_path / "diagnostics" / "driver-pod.standalone" / "07-readiness-deployment-kubeflow-ml-pipeline"
    assert message.startswith("driver-pod.standalone: deployment/kubeflow/ml-pipeline not ready (error: timed out")
    assert str(directory) in message
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["describe-deployment-ml-pipeline.txt", "diagnostics.json", "events.txt",
                     "logs-deployment-ml-pipeline.txt", "pods.txt"]
    # the collectors ran against the same cluster and namespace as the wait
    describes = [c for c in fakes.calls("kubectl") if "describe" in c]
    assert describes == [[*step.argv[1:5], "describe", "deployment/ml-pipeline", "-n", "kubeflow"]]
    # canary: a token the component logged never reaches a file
    assert CANARY not in _all_text(tmp_path)
    assert "Bearer <redacted>" in (directory / "logs-deployment-ml-pipeline.txt").read_text()


def test_install_fake_kubectl_pods_not_ready_times_out_naming_the_pod(plan, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    step = _step(plan, "readiness", "pods in kubeflow ready")
    fast = type(step)(**{**step.__dict__, "timeout": 1})
    installer = Installer(fakes.runner(KFPC_FAKE_NOT_READY="ml-pipeline-ui-6b8c-xyz,argo-system-1,wf-abc-agent"),
                          tmp_path, poll_interval=0.2)
    with pytest.raises(ClusterError) as raised:
        installer.run_step(fast, 3)
    message = raised.value.line()
    assert "pods/kubeflow not ready (not ready after 1s: 4/5 pods ready; waiting for ml-pipeline-ui-6b8c-xyz " \
           "(CrashLoopBackOff))" in message  # `*system*` and `*-agent` pods are skipped like wait_for_pods.py
    directory = tmp_path / "diagnostics" / "driver-pod.standalone" / "03-readiness-pods-kubeflow"
    assert (directory / "describe-pod-ml-pipeline-ui-6b8c-xyz.txt").is_file()
    assert (directory / "logs-pod-ml-pipeline-ui-6b8c-xyz.txt").is_file()
    assert len([c for c in fakes.calls("kubectl") if c[4:6] == ["get", "pods"] and "json" in c]) >= 2


def _installed(plan, fakes, tmp_path, *phases, **knobs) -> Installer:
    """A fake kind cluster with the given phases of the plan applied (the fake kubectl keeps its objects)."""
    write_plan(plan, tmp_path)
    installer = Installer(fakes.runner(**knobs), tmp_path, poll_interval=0.01)
    installer.run_steps(plan.pairs[0].phase_steps("cluster", *phases))
    return installer


def test_install_fake_kubectl_readiness_waits_for_calm_not_one_ready_poll(plan, tmp_path):
    """wait_for_pods.py (kubeflow/pipelines@81fc181b1): the statuses must stay all-ready and unchanged over 5 more
    polls. A pod that is Ready on every other poll never calms down; a steady install needs at least 6 polls."""
    fakes = make_fakes(tmp_path / "fakes")
    installer = _installed(plan, fakes, tmp_path, "cluster-scoped", "overlay")
    step = next(s for s in plan.pairs[0].steps if s.action == "condition" and s.phase == "readiness")
    flapping = Installer(fakes.runner(KFPC_FAKE_FLAPPING="mysql-"), tmp_path, poll_interval=0.01)
    with pytest.raises(ClusterError) as raised:
        flapping.run_step(type(step)(**{**step.__dict__, "timeout": 2}), 9)
    assert "pods/kubeflow not ready (not ready after 2s:" in raised.value.line()
    polls = len([c for c in fakes.calls("kubectl") if c[4:6] == ["get", "pods"]])
    installer.run_step(step)
    after = len([c for c in fakes.calls("kubectl") if c[4:6] == ["get", "pods"]]) - polls
    assert after >= step.condition["polls"] + 1 == 6


def test_install_fake_kubectl_failed_apply_is_retried_once_like_kfp_ci(plan, tmp_path):
    """KFP CI runs deploy-kfp.sh with nick-fields/retry max_attempts: 2: a webhook that does not serve yet on the
    first apply (cert-manager's, in TLS mode) is no failure; a second failure is."""
    fakes = make_fakes(tmp_path / "fakes")
    overlay = _step(plan, "overlay", "apply the standalone overlay")
    _installed(plan, fakes, tmp_path, "cluster-scoped", KFPC_FAKE_WEBHOOK_RACE="standalone/overlay.yaml")
    racing = Installer(fakes.runner(KFPC_FAKE_WEBHOOK_RACE="standalone/overlay.yaml"), tmp_path, poll_interval=0.01)
    racing.run_step(overlay)
    assert len([c for c in fakes.calls("kubectl") if c[-1].endswith("standalone/overlay.yaml")]) == 2
    failing = Installer(fakes.runner(KFPC_FAKE_FAIL="standalone/overlay.yaml"), tmp_path, poll_interval=0.01)
    with pytest.raises(CommandFailedError):
        failing.run_step(overlay)
    assert len([c for c in fakes.calls("kubectl") if c[-1].endswith("standalone/overlay.yaml")]) == 4


def test_install_fake_kubectl_multi_user_prerequisites_need_namespace_kubeflow_first(kfp_trees, remote_bases,
                                                                                     tmp_path):
    """In the old order (prerequisites before the cluster-scoped resources) a fresh cluster has no Namespace
    kubeflow: kubeflow/manifests' istio-install puts Sidecars in it and the Profile controller overlay deletes its
    own Namespace, so both fail as the API server answers (NamespaceLifecycle). After cluster-scoped they apply."""
    fakes = make_fakes(tmp_path / "fakes")
    selection = selection_for(kfp_trees, remote_bases, tmp_path / "out", shared_cache(), ["driver-pod"], ["multi-user"])
    plan = make_plan(selection, [], LiveOptions(run_id="ns"))
    steps = plan.pairs[0].steps
    applies = {s.description.split(" (")[0]: s for s in steps if s.action == "apply"}
    installer = _installed(plan, fakes, tmp_path)
    installer.run_step(applies["apply Istio istio-crds/base"])
    installer.run_step(applies["apply Istio istio-namespace/base"])
    for name in ("apply Istio istio-install/base", "apply Kubeflow Profile controller"):
        with pytest.raises(CommandFailedError) as raised:
            installer.run_step(applies[name])
        assert 'Error from server (NotFound): namespaces "kubeflow" not found' in raised.value.stderr_tail
    installer.run_step(applies["apply cluster-scoped resources"])
    installer.run_step(applies["apply Istio istio-install/base"])
    installer.run_step(applies["apply Kubeflow Profile controller"])


def test_install_fake_kubectl_failed_apply_is_one_line_without_secrets(plan, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    step = _step(plan, "overlay", "apply the standalone overlay")
    # the fake's stderr echoes the failing argv fragment; declared secret, it must not reach the error
    echoed = "standalone/overlay.yaml"
    # every attempt fails the same way: the step's retry pause (10 s) would only be waited out
    installer = Installer(fakes.runner(KFPC_FAKE_FAIL=echoed), tmp_path, secrets=[echoed], poll_interval=0.01)
    with pytest.raises(CommandFailedError) as raised:
        installer.run_step(step)
    assert "exited 1: fake kubectl: forced failure for '<redacted>'" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert echoed not in raised.value.line() and all(echoed not in a for a in raised.value.argv)


def test_install_fake_kubectl_existing_cluster_conditions_use_the_users_kubeconfig(kfp_trees, remote_bases, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    kubeconfig = tmp_path / "my-kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: mine\ncontexts: [{name: mine, context: {}}]\n")
    selection = selection_for(kfp_trees, remote_bases, tmp_path / "out", shared_cache(), ["driver-pod"], ["standalone"])
    options = LiveOptions(run_id="ex", provider="existing", kubeconfig=str(kubeconfig), poll_interval=0.01)
    _provider, existing = existing_handle(options)
    plan = make_plan(selection, [], options, existing)
    session = LiveSession(selection, plan, options, runner=fakes.runner(), progress=lambda _l: None,
                          state_dir=tmp_path / "state")
    step = next(s for s in plan.pairs[0].steps if s.action == "condition" and s.condition["name"] == "pods-calm")
    assert step.argv == ()  # a condition names no kubectl of its own: the installer must pick this cluster's
    session.installer.run_step(step)
    calls = fakes.calls("kubectl")
    assert len(calls) == step.condition["polls"] + 1  # all ready at once, then unchanged over 5 more polls
    for call in calls:
        assert call[:4] == ["--kubeconfig", str(kubeconfig), "--context", "mine"]
        assert call[4:] == ["get", "pods", "-n", "kubeflow", "-o", "json"]


def test_live_fake_kind_readiness_timeout_fails_the_pair_and_deletes_the_cluster(kfp_trees, remote_bases, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    mirror = mirror_with_cert_manager(remote_bases, tmp_path / "mirror")
    selection = selection_for(kfp_trees, mirror, tmp_path / "out", shared_cache(), ["driver-pod"], ["tls"])
    options = LiveOptions(run_id="rt")
    plan = make_plan(selection, [], options)
    session = LiveSession(selection, plan, options, runner=fakes.runner(KFPC_FAKE_WAIT_TIMEOUT="-n cert-manager",
                                                                        KFPC_FAKE_TOKEN=CANARY),
                          progress=lambda _l: None, state_dir=tmp_path / "state")
    [result] = session.run([])
    assert result.status == "failed"
    assert result.error.startswith("driver-pod.tls: deployment/cert-manager/* not ready")
    assert (tmp_path / "out" / "diagnostics" / "driver-pod.tls").is_dir()
    assert fakes.state_data()["clusters"] == {}
    assert CANARY not in _all_text(tmp_path / "out")
