"""`kfp-conformance run --provider controlplane`: the CLI end to end against a REAL kube-apiserver (etcd,
controller manager, scheduler, kwok node) started from the binaries `scripts/controlplane-build.sh` builds,
and the plan it prints (no binaries needed). What is simulated is what harness.cluster.controlplane lists:
no kubelet, so no container and no scenario runs (reported as not verified, never as passed).

Missing binaries FAIL (never a skip): `.ci/run` builds them first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.cluster.controlplane import ControlPlaneProvider
from harness.plan.build import NO_KUBELET
from tests.livefakes import quick_calm_config
from tests.test_controlplane_install import require_binaries

REPO = Path(__file__).resolve().parent.parent
PAIR = "central-driver.standalone"
# A placeholder driver image is only a name to the apiserver (no container runs under kwok).
ARGS = ["run", "--provider", "controlplane", "--variant", "central-driver", "--mode", "standalone",
        "--driver-image", "central-driver=kind-registry:5000/driver:cp", "--scenario", "single-component"]
INSTALL_PHASES = ("prerequisites", "cluster-scoped", "overlay", "readiness", "profile")


def _env(tmp_path: Path, kfp_trees: Path, remote_bases: Path) -> dict[str, str]:
    return dict(os.environ, KFPC_SOURCES=str(kfp_trees), KFPC_REMOTE_BASES=str(remote_bases),
                KFPC_CONTROLPLANE_STATE=str(tmp_path / "cp-state"), KFPC_STATE_DIR=str(tmp_path / "ledger"))


def _quick_env(tmp_path: Path, kfp_trees: Path, remote_bases: Path) -> dict[str, str]:
    """`_env` with the catalogue's calm readiness polls 1 s apart instead of 10 s (the same 5 polls,
    tests.livefakes.quick_calm_config): these tests assert what the run installs, reports and leaves behind, not
    readiness timing (the plan's 10 s: tests/test_plan_install_order.py)."""
    return dict(_env(tmp_path, kfp_trees, remote_bases), KFPC_CONFIG=str(quick_calm_config(tmp_path / "config")))


def _cli(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=False)


def _ours(state: Path) -> list[str]:
    """Processes whose command line names our state dir (every component's flags point into it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmdline:
                found.append(f"{proc.name} {cmdline.split(chr(0))[0]}")
    return found




def test_controlplane_run_real_apiserver_installs_reports_and_leaves_nothing(tmp_path, kfp_trees, remote_bases):
    require_binaries()
    env = _quick_env(tmp_path, kfp_trees, remote_bases)
    out = tmp_path / "out"
    result = _cli([*ARGS, "--live-only", "--out", str(out), "--run-id", "cpw"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "cpw" / "controlplane" / f"{PAIR}.json").read_text())
    assert report["complete"] and report["pair"] == PAIR
    assert any("cluster-scoped" in a for a in report["applied"]) and any("overlay" in a for a in report["applied"])
    live = json.loads((out / "cpw" / "live.json").read_text())
    (pair,) = live["pairs"]
    # the install tier verified, scenarios never passed: they are "not verified", and the pair is not "ok"
    assert pair["status"] == "installed" and pair["bundles"] == []
    assert pair["skipped"] == {"single-component": NO_KUBELET}
    assert pair["not_verified"] == report["not_verified"]
    summary = [line for line in result.stderr.splitlines() if line.startswith(f"live: {PAIR}")]
    assert len(summary) == 1 and NO_KUBELET in summary[0] and "installed on a real kube-apiserver" in summary[0]
    # everything it started is stopped, its state removed, and the ledger forgot the cluster
    assert _ours(tmp_path / "cp-state") == []
    assert [p.name for p in (tmp_path / "cp-state").iterdir()] == []
    ledger = json.loads((tmp_path / "ledger" / "clusters.json").read_text())
    assert ledger["clusters"] == {}


def test_controlplane_run_real_apiserver_sigterm_stops_everything(tmp_path, kfp_trees, remote_bases):
    """SIGTERM once every component runs (start-up or install): the control plane is stopped and its state
    removed, exit 130."""
    require_binaries()
    env = _env(tmp_path, kfp_trees, remote_bases)
    state = tmp_path / "cp-state"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", *ARGS, "--live-only", "--out",
                                str(tmp_path / "out"), "--run-id", "cpterm"], env=env, cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    def every_component() -> bool:
        for record in state.glob("*/processes.json"):
            try:
                return "kwok" in {p["name"] for p in json.loads(record.read_text())}
            except ValueError:  # being written
                return False
        return False

    while time.monotonic() < deadline and not every_component():
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.5)
    assert every_component(), "the control plane never started"
    assert _ours(state), "no process of the control plane found"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert _ours(state) == []
    assert [p.name for p in state.iterdir()] == []
    assert json.loads((tmp_path / "ledger" / "clusters.json").read_text())["clusters"] == {}


def _plan(provider: str, env: dict[str, str], out: Path) -> dict:
    result = _cli([*ARGS[:2], provider, *ARGS[3:], "--plan", "--plan-format", "json", "--out", str(out)], env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_controlplane_plan_same_install_steps_as_kind_no_images_scenarios_not_verified(
        tmp_path, kfp_trees, remote_bases):
    env = _env(tmp_path, kfp_trees, remote_bases)
    (plane,) = _plan("controlplane", env, tmp_path / "cp")["pairs"]
    (kind,) = _plan("kind", env, tmp_path / "kind")["pairs"]
    steps = plane["steps"]
    assert [(s["phase"], s["action"]) for s in steps if s["phase"] == "cluster"] == [("cluster", "controlplane")]
    assert "start a local control plane" in steps[0]["description"]
    assert not [s for s in steps if s["phase"] in ("registry", "images")], "no container runs: nothing to load"
    assert [s for s in kind["steps"] if s["phase"] in ("registry", "images")], "the kind plan loads images"

    def install(pair: dict) -> list[tuple[str, str, str]]:
        return [(s["phase"], s["action"], s["description"]) for s in pair["steps"] if s["phase"] in INSTALL_PHASES]

    assert install(plane) == install(kind) and install(plane)
    handle = ControlPlaneProvider(env=env).handle(plane["cluster"]["name"])
    assert handle.kubeconfig.startswith(str(tmp_path / "cp-state"))
    applies = [s for s in steps if s["action"] == "apply"]
    assert applies and all(handle.kubeconfig in s["argv"] for s in applies)
    assert [s["description"] for s in steps if s["phase"] == "scenario"] == \
        [f"skip single-component: {NO_KUBELET}"]
    assert not [s for s in steps if s["action"] in ("access", "scenario")]


def test_controlplane_run_refuses_keep_clusters_one_line(tmp_path, kfp_trees, remote_bases):
    result = _cli([*ARGS, "--live-only", "--keep-clusters", "always", "--out", str(tmp_path / "out")],
                  _env(tmp_path, kfp_trees, remote_bases), timeout=300)
    assert result.returncode == 2
    assert "--provider controlplane cannot keep or reuse clusters" in result.stderr
    assert "Traceback" not in result.stderr


def test_controlplane_clusters_prune_stops_crashed_runs_recorded_process_and_state(tmp_path):
    """A run SIGKILLed with a control plane up leaves a ledger entry (provider controlplane, dead owner) and a
    state dir whose processes.json names its processes: `clusters prune` stops them (only pids whose command
    line is still the recorded executable) and removes the state. A real `sleep` stands in for the binaries."""
    import socket

    env = dict(os.environ, KFPC_CONTROLPLANE_STATE=str(tmp_path / "cp-state"), KFPC_STATE_DIR=str(tmp_path / "ledger"))
    name = "kfpc-crashed-central-stand-0001"
    directory = ControlPlaneProvider(env=env).directory(name)
    directory.mkdir(parents=True)
    sleeper = subprocess.Popen(["/bin/sleep", "300"])
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()  # a pid that no longer runs: the crashed run's owner
    try:
        (directory / "processes.json").write_text(json.dumps([{"name": "etcd", "pid": sleeper.pid,
                                                                "exe": "/bin/sleep"}]))
        (tmp_path / "ledger").mkdir()
        entry = {"name": name, "run_id": "crashed", "variant": "central-driver", "mode": "standalone",
                 "provider": "controlplane", "state": "ready", "owner": gone.pid, "host": socket.gethostname(),
                 "holders": [], "keep": False, "handle": None, "install_digest": ""}
        (tmp_path / "ledger" / "clusters.json").write_text(json.dumps({"version": 1, "clusters": {name: entry},
                                                                       "processes": {}}))
        listed = _cli(["clusters", "list"], env, timeout=120)
        assert f"{name}\tcentral-driver.standalone" in listed.stdout and "(exists)" in listed.stdout
        result = _cli(["clusters", "prune"], env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"stopping control plane {name}" in result.stderr
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
        assert not directory.exists()
        assert json.loads((tmp_path / "ledger" / "clusters.json").read_text())["clusters"] == {}
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
