"""The kind provider, the ledger and the live orchestration, with fake kind/kubectl/docker executables on PATH.

The fakes record every argv; the KFP trees, renders, plan and install walk are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cluster.base import cluster_name
from harness.cluster.ledger import Ledger
from harness.live.session import LiveOptions, LiveSession, make_plan
from tests.installtrees import mirror_with_cert_manager, runnable_sources
from tests.livefakes import DRIVER_IMAGES, make_fakes, selection_for, shared_cache

REPO = Path(__file__).resolve().parent.parent


def _session(tmp_path, kfp_trees, remote_bases, fakes, variant, mode, *, keep="never", **knobs):
    selection = selection_for(kfp_trees, remote_bases, tmp_path / "out", shared_cache(), [variant], [mode])
    options = LiveOptions(run_id="t1", keep=keep, driver_images=DRIVER_IMAGES, poll_interval=0.05)
    plan = make_plan(selection, [], options)
    session = LiveSession(selection, plan, options, runner=fakes.runner(**knobs), progress=lambda _l: None,
                          state_dir=tmp_path / "state")
    return session, plan


def _kinds(calls):
    """Each recorded call reduced to what the order assertions need."""
    out = []
    for tool, argv in calls:
        if tool == "kubectl":
            words = argv[4:]
            if words[0] == "apply":
                out.append(("apply", words[-1]))
            elif words[0] in ("wait", "rollout", "get"):
                out.append((words[0], " ".join(words[1:3])))
        elif tool == "kind":
            out.append(("kind", " ".join(argv[:2])))
        else:
            out.append(("docker", argv[0]))
    return out


@pytest.mark.parametrize("mode", ["standalone", "multi-user", "tls"])
def test_run_fake_kind_kubectl_docker_execute_the_plan_in_order(tmp_path, kfp_trees, remote_bases, mode):
    """The fake kubectl applies like an API server (harness.testing.fakebin): a namespaced object in a missing
    Namespace or a kind without its CRD fails, so the whole install passing proves the order works. Multi-user
    needs a tree whose sync.py has code (the shared one is a placeholder the plan refuses); TLS a mirror with
    cert-manager (tests/installtrees.py)."""
    fakes = make_fakes(tmp_path / "fakes")
    sources = runnable_sources(kfp_trees, tmp_path / "src", ["sidecar-plugin"])
    mirror = mirror_with_cert_manager(remote_bases, tmp_path / "mirror") if mode == "tls" else remote_bases
    session, plan = _session(tmp_path, sources, mirror, fakes, "sidecar-plugin", mode)
    results = session.run([])
    assert [r.status for r in results] == ["ok"], results
    calls = fakes.tool_calls()
    # Exactly the planned argv ran, in plan order (argv[0] is resolved on PATH by the fake tools).
    planned = [list(s.argv) for s in [*plan.preflight, *plan.pairs[0].steps]
               if s.action in ("command", "apply", "wait") and s.phase != "cleanup"]
    ran = [[tool, *argv] for tool, argv in calls if not (tool == "kubectl" and "get" in argv[4:5])]
    assert ran[: len(planned)] == planned
    order = _kinds(calls)
    names = [k for k, _ in order]
    first = {kind: names.index(kind) for kind in ("kind", "apply")}
    assert order[0] == ("docker", "image")  # preflight before any cluster
    assert first["kind"] < first["apply"]
    applies = [target for kind, target in order if kind == "apply"]
    prefix = f"rendered/sidecar-plugin.{mode}/"
    # KFP CI's order (deploy-kfp.sh@81fc181b1): cluster-scoped, prerequisites, overlay, then the profile files
    assert applies[0] == prefix + "cluster-scoped.yaml"
    overlay = applies.index(prefix + "overlay.yaml")
    if mode == "tls":
        assert applies[1:overlay] == [prefix + "cert-manager.yaml"]
    if mode == "multi-user":
        assert applies[1:overlay] == [prefix + name for name in (
            "istio-crds-base.yaml", "istio-namespace-base.yaml", "istio-install-base.yaml", "metacontroller-crd.yaml",
            "profile-controller.yaml")]
        assert applies[overlay + 1:] == [prefix + "test_data/kubernetes/seaweedfs/" + name for name in (
            "test-profiles.yaml", "kubeflow-edit-clusterrole.yaml", "allow-user-namespace-access.yaml",
            "shared-pipeline-rbac.yaml")]
        assert ("get", "secret mlpipeline-minio-artifact") in order[names.index("apply") :]
    # Readiness: every Deployment of the overlay rolled out, then the pods condition, before cleanup.
    rollouts = [t for k, t in order if k == "rollout"]
    deployments = [m["metadata"]["name"] for m in session.overlay_manifests(plan.pairs[0]) if m["kind"] == "Deployment"]
    assert [r.split("/")[-1] for r in rollouts if r.startswith("status deployment/")] == deployments
    assert order[-1] == ("kind", "delete cluster")
    assert fakes.state_data()["clusters"] == {}
    assert Ledger(tmp_path / "state" / "clusters.json").entries() == {}


def test_plan_sidecar_driver_image_patched_into_configmap_string(tmp_path, kfp_trees, remote_bases):
    selection = selection_for(kfp_trees, remote_bases, tmp_path / "out", shared_cache(), ["sidecar-plugin"], ["standalone"])
    options = LiveOptions(run_id="t2", driver_images={"sidecar-plugin": "ghcr.io/me/kfp-driver:sc-test"})
    plan = make_plan(selection, [], options)
    overlay = [m for m in yaml.safe_load_all(plan.files["rendered/sidecar-plugin.standalone/overlay.yaml"]) if m]
    cm = next(m for m in overlay if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "ml-pipeline-driver-agent")
    assert "image: ghcr.io/me/kfp-driver:sc-test" in cm["data"]["sidecar.container"]
    assert "kind-registry:5000/driver" not in plan.files["rendered/sidecar-plugin.standalone/overlay.yaml"]
    assert any("data[sidecar.container].image" in c for c in plan.pairs[0].image_changes)


def test_run_fake_kind_keeps_cluster_on_failure_when_asked(tmp_path, kfp_trees, remote_bases):
    fakes = make_fakes(tmp_path / "fakes")
    session, plan = _session(tmp_path, kfp_trees, remote_bases, fakes, "driver-pod", "standalone", keep="on-failure",
                             KFPC_FAKE_FAIL="apply --server-side")
    results = session.run([])
    assert results[0].status == "failed" and results[0].kept
    name = plan.pairs[0].cluster.name
    assert name in fakes.state_data()["clusters"]
    entry = Ledger(tmp_path / "state" / "clusters.json").entries()[name]
    assert entry["keep"] and entry["kept_because"] == "failed"
    assert (tmp_path / "out" / "diagnostics" / "driver-pod.standalone" / "kind-logs").is_dir()  # kind export logs
    assert fakes.calls("kind")[-1][:2] == ["export", "logs"]


def test_run_fake_kind_deletes_cluster_when_install_fails(tmp_path, kfp_trees, remote_bases):
    fakes = make_fakes(tmp_path / "fakes")
    session, plan = _session(tmp_path, kfp_trees, remote_bases, fakes, "driver-pod", "standalone",
                             KFPC_FAKE_FAIL="apply --server-side")
    results = session.run([])
    assert results[0].status == "failed" and "exited 1" in results[0].error
    assert fakes.state_data()["clusters"] == {}
    assert fakes.calls("kind")[-1][:2] == ["delete", "cluster"]


def _cli(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _selection_args(kfp_trees, remote_bases, tmp_path):
    return ["--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--cache-dir", str(shared_cache()),
            "--out", str(tmp_path / "out")]


def test_run_fake_docker_without_daemon_says_so_and_exits_2(tmp_path, kfp_trees, remote_bases):
    fakes = make_fakes(tmp_path / "fakes")
    result = _cli(["run", "--variant", "driver-pod", "--mode", "standalone", *_selection_args(kfp_trees, remote_bases, tmp_path)],
                  fakes.env(KFPC_FAKE_DOCKER_DAEMON="0"), REPO)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: no Docker engine: the Docker daemon does not answer `docker info` (start Docker, or use "
                     "--provider existing --kubeconfig PATH, or --static-only)"]
    assert fakes.calls("kind") == [] and not (tmp_path / "out").exists()


def test_run_fake_kind_missing_driver_image_fails_before_creating_anything(tmp_path, kfp_trees, remote_bases):
    fakes = make_fakes(tmp_path / "fakes")
    result = _cli(["run", "--variant", "sidecar-plugin", "--mode", "standalone", *_selection_args(kfp_trees, remote_bases, tmp_path)],
                  fakes.env(), REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no driver image for sidecar-plugin") and "Traceback" not in result.stderr
    assert fakes.calls() == [] and not (tmp_path / "out").exists()


def test_run_existing_bad_kubeconfig_is_one_line_exit_2_no_fakes_needed(tmp_path, kfp_trees, remote_bases):
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\ncontexts: [{name: a, context: {}}]\n")
    result = _cli(["run", "--provider", "existing", "--kubeconfig", str(bad), "--context", "b", "--variant", "driver-pod",
                   "--mode", "standalone", *_selection_args(kfp_trees, remote_bases, tmp_path)], {}, REPO)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: context 'b' is not in {bad} (choose one of: a)"


def test_clusters_prune_fake_kind_removes_crashed_runs_leftovers(tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    env = fakes.env()
    name = cluster_name("dead0001", "driver-pod", "tls")
    subprocess.run(["kind", "create", "cluster", "--name", name], env={**os.environ, **env}, check=True)
    subprocess.run(["kind", "create", "cluster", "--name", "kfpc-unlisted-x"], env={**os.environ, **env}, check=True)
    subprocess.run(["kind", "create", "cluster", "--name", "users-own"], env={**os.environ, **env}, check=True)
    ledger_file = tmp_path / "cache" / "clusters.json"
    ledger_file.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    entry = {"name": name, "run_id": "dead0001", "variant": "driver-pod", "mode": "tls", "provider": "kind",
             "state": "creating", "owner": int(dead), "host": os.uname().nodename, "holders": [int(dead)], "keep": False}
    ledger_file.write_text(json.dumps({"version": 1, "clusters": {name: entry}}))
    listed = _cli(["clusters", "list", "--cache-dir", str(tmp_path / "cache")], env, REPO)
    assert f"{name}\tdriver-pod.tls\trun dead0001\tcreating\tabandoned (exists)" in listed.stdout
    assert "kfpc-unlisted-x\t?\t?\tunlisted" in listed.stdout
    pruned = _cli(["clusters", "prune", "--cache-dir", str(tmp_path / "cache")], env, REPO)
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(fakes.state_data()["clusters"]) == ["kfpc-unlisted-x", "users-own"]
    assert json.loads(ledger_file.read_text())["clusters"] == {}
    _cli(["clusters", "prune", "--unlisted", "--cache-dir", str(tmp_path / "cache")], env, REPO)
    assert sorted(fakes.state_data()["clusters"]) == ["users-own"]  # never a cluster without our prefix


def test_run_fake_kind_placeholder_sync_py_refused_one_line_exit_2_before_any_cluster(tmp_path, kfp_trees,
                                                                                       remote_bases):
    """The shared trees' sync.py is a comment only: a multi-user install would time out with no hint."""
    fakes = make_fakes(tmp_path / "fakes")
    result = _cli(["run", "--live-only", "--variant", "driver-pod", "--mode", "multi-user", "--scenario",
                   "single-component", *_selection_args(kfp_trees, remote_bases, tmp_path)], fakes.env(), REPO)
    assert result.returncode == 2, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "key sync.py in the multi-user overlay is a placeholder without code" in error
    assert error.endswith("(use a full checkout of driver-pod's branch (--variant driver-pod=PATH or a git URL@ref), "
                          "or drop --mode multi-user)")
    assert "Traceback" not in result.stderr and fakes.calls("kind") == []


def test_ledger_keeps_child_records_only_in_the_file_and_ends_those_of_a_dead_harness(tmp_path):
    """No fake: real child processes. The process records live in the ledger file, not in a Ledger object, so a
    second Ledger (another worker, or `clusters prune` after a SIGKILL) sees and ends what the first recorded."""
    file = tmp_path / "clusters.json"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    crashed, worker, prune = (Ledger(file, notify=lambda _l: None) for _ in range(3))
    crashed.pid = dead  # the harness process that recorded the child is gone (as after SIGKILL)
    children = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(2)]
    try:
        crashed.record_process(children[0].pid, ["kubectl", "port-forward", "svc/ml-pipeline"])
        worker.record_process(children[1].pid, ["kubectl", "wait", "pod"])
        assert sorted(json.loads(file.read_text())["processes"]) == sorted(str(c.pid) for c in children)
        worker.forget_process(children[0].pid + 10**7)  # an unknown pid changes nothing
        assert [e.split(" ")[0] for e in prune.end_orphans()] == [str(children[0].pid)]
        assert children[0].wait(timeout=10) == -9 and children[1].poll() is None  # the live worker's child stays
        assert list(json.loads(file.read_text())["processes"]) == [str(children[1].pid)]
        worker.forget_process(children[1].pid)
        assert json.loads(file.read_text())["processes"] == {}
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
