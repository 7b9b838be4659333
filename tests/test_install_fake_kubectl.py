"""Install steps and readiness waits through a fake `kubectl` on PATH: timeouts give diagnostics and a clear error.

The steps come from a real plan over the shared trees; only kubectl (and kind/docker) are fakes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ClusterError, CommandFailedError
from harness.install import Installer
from harness.live import LiveOptions, LiveSession, existing_handle, make_plan
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
    step = _step(plan, "readiness", "pods in kubeflow Ready")
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


def test_install_fake_kubectl_failed_apply_is_one_line_without_secrets(plan, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    step = _step(plan, "overlay", "apply the standalone overlay")
    # the fake's stderr echoes the failing argv fragment; declared secret, it must not reach the error
    echoed = "standalone/overlay.yaml"
    installer = Installer(fakes.runner(KFPC_FAKE_FAIL=echoed), tmp_path, secrets=[echoed])
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
    options = LiveOptions(run_id="ex", provider="existing", kubeconfig=str(kubeconfig))
    _provider, existing = existing_handle(options)
    plan = make_plan(selection, [], options, existing)
    session = LiveSession(selection, plan, options, runner=fakes.runner(), progress=lambda _l: None,
                          state_dir=tmp_path / "state")
    step = next(s for s in plan.pairs[0].steps if s.action == "condition" and s.condition["name"] == "pods-ready")
    assert step.argv == ()  # a condition names no kubectl of its own: the installer must pick this cluster's
    session.installer.run_step(step)
    [call] = fakes.calls("kubectl")
    assert call[:4] == ["--kubeconfig", str(kubeconfig), "--context", "mine"]
    assert call[4:] == ["get", "pods", "-n", "kubeflow", "-o", "json"]


def test_live_fake_kind_readiness_timeout_fails_the_pair_and_deletes_the_cluster(kfp_trees, remote_bases, tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    selection = selection_for(kfp_trees, remote_bases, tmp_path / "out", shared_cache(), ["driver-pod"], ["tls"])
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
