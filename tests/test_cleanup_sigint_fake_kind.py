"""Cleanup after signals at random points of a real `kfp-conformance run` subprocess, sent as a person and as
CI would send them: one SIGINT; SIGINT twice to the whole process group (a terminal's second Ctrl-C, arriving
while `kind delete` runs); SIGTERM after SIGINT; SIGKILL followed by `clusters prune`.

Fake `kind`, `kubectl` and `docker` executables on PATH keep the "cluster" state in a JSON file and log every
call with its pid; the run is real (ledger, plan, install walk, signal handling). After every trial no
cluster may be left (fake kind state and ledger) and no process the run started may still be alive. Delays
come from a seeded RNG, so a failure is reproducible. Trials run a few at a time (each is a subprocess).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.cluster.ledger import pid_alive
from tests.livefakes import make_fakes, shared_cache

REPO = Path(__file__).resolve().parent.parent
TRIALS = 20
SEED = int(os.environ.get("KFPC_SIGINT_SEED", "20260430"))
PARALLEL = 4
INTERRUPTED = "error: interrupted (cleanup ran; re-run to continue)"


def _wait_for(fakes, proc: subprocess.Popen, anchor: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if fakes.log.exists() and anchor in fakes.log.read_text():
            return True
        time.sleep(0.02)
    return False


def _trial(tmp: Path, kfp_trees: Path, remote_bases: Path, delay: float, signals: tuple[int, ...],
           anchor: str = "", then: str = "") -> dict:
    """Start the run, wait for `anchor` in the fake call log, sleep `delay`, send `signals[0]` to the process
    group; further signals go once `then` appears in the log (e.g. the cluster delete has started)."""
    fakes = make_fakes(tmp / "fakes")
    argv = [sys.executable, "-m", "harness.cli", "run", "--live-only", "--variant", "driver-pod", "--mode", "standalone",
            "--scenario", "single-component", "--no-oracle", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
            "--cache-dir", str(shared_cache()), "--out", str(tmp / "out"), "--run-id", "sig"]
    # renders come from the shared cache; the ledger is per trial (KFPC_STATE_DIR)
    env = {**os.environ, **fakes.env(KFPC_FAKE_CREATE_SLEEP="0.4", KFPC_FAKE_DELETE_SLEEP="0.5",
                                     KFPC_STATE_DIR=str(tmp / "state"))}
    # its own process group, like a job in a terminal: signals go to the whole group (harness + its children)
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    # Anchored at the first fake call (`docker info`) or at `anchor`, so a slow interpreter start on a loaded
    # machine does not push every signal before the cluster exists.
    _wait_for(fakes, proc, anchor)
    time.sleep(delay)
    _signal_group(proc, signals[0])
    for sig in signals[1:]:
        _wait_for(fakes, proc, then, timeout=20)
        _signal_group(proc, sig)
    try:
        _out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    prune = None
    if signal.SIGKILL in signals:
        prune = subprocess.run([sys.executable, "-m", "harness.cli", "clusters", "prune", "--cache-dir",
                                str(shared_cache())], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    ledger = tmp / "state" / "clusters.json"
    data = json.loads(ledger.read_text()) if ledger.is_file() else {}
    pids = {c["pid"] for c in json.loads("[" + ",".join(fakes.log.read_text().splitlines()) + "]")} \
        if fakes.log.exists() else set()
    return {"delay": delay, "rc": proc.returncode, "stderr": err, "clusters": fakes.state_data()["clusters"],
            "created": any(c[:2] == ["create", "cluster"] for c in fakes.calls("kind")),
            "ledger": data.get("clusters", {}), "alive": _still_alive(pids), "prune": prune}


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _still_alive(pids: set[int], grace: float = 3.0) -> list[int]:
    """Fake processes the run started that are still running (short-lived ones get `grace` to finish)."""
    deadline = time.monotonic() + grace
    alive = sorted(p for p in pids if pid_alive(p) and not _zombie(p))
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = sorted(p for p in alive if pid_alive(p) and not _zombie(p))
    return alive


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


def _run_all(jobs: list[tuple]) -> list[dict]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda job: _trial(*job[0], **job[1]), jobs))


def _assert_nothing_left(results: list[dict]) -> None:
    leftovers = [(r["delay"], r["clusters"], r["ledger"], r["alive"]) for r in results
                 if r["clusters"] or r["ledger"] or r["alive"]]
    assert leftovers == [], f"seed {SEED}: clusters, ledger entries or processes left: {leftovers}"


def test_run_fake_kind_sigint_at_random_points_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    rng = random.Random(SEED)
    jobs = []
    for trial in range(TRIALS):
        # every 4th trial counts from the first fake call (`docker info`: startup, scenario compile); the others
        # from the preflight, spread over cluster create (0.4s sleep), registry, images, install and connect
        anchor = "" if trial % 4 == 0 else '"image", "inspect"'
        delay = round(rng.uniform(0.0, 2.5), 2)
        jobs.append(((tmp_path / f"t{trial}", kfp_trees, remote_bases, delay, (signal.SIGINT,)), {"anchor": anchor}))
    results = _run_all(jobs)
    _assert_nothing_left(results)
    interrupted_after_create = [r for r in results if r["created"] and r["rc"] == 130]
    assert len(interrupted_after_create) >= 5, [(r["delay"], r["rc"], r["created"]) for r in results]
    for r in results:
        assert "Traceback" not in r["stderr"], r["stderr"]
    for r in interrupted_after_create:
        assert r["stderr"].strip().endswith(INTERRUPTED)


def test_run_fake_kind_second_sigint_to_group_during_delete_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    """A terminal's second Ctrl-C reaches every process of the foreground group: it must not kill `kind delete`
    (children run in their own session), and the run must still stop with 130, not go on."""
    rng = random.Random(SEED + 1)
    jobs = [((tmp_path / f"d{trial}", kfp_trees, remote_bases, round(rng.uniform(0.1, 1.5), 2),
              (signal.SIGINT, signal.SIGINT)), {"anchor": '"create", "cluster"', "then": '"delete", "cluster"'})
            for trial in range(4)]
    results = _run_all(jobs)
    _assert_nothing_left(results)
    for r in results:
        assert r["rc"] == 130 and "Traceback" not in r["stderr"], r["stderr"]
        assert r["stderr"].strip().endswith(INTERRUPTED)


def test_run_fake_kind_sigterm_after_sigint_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    rng = random.Random(SEED + 2)
    jobs = [((tmp_path / f"s{trial}", kfp_trees, remote_bases, round(rng.uniform(0.1, 1.5), 2),
              (signal.SIGINT, signal.SIGTERM)), {"anchor": '"create", "cluster"', "then": '"delete", "cluster"'})
            for trial in range(4)]
    results = _run_all(jobs)
    _assert_nothing_left(results)
    for r in results:
        assert r["rc"] == 130 and "Traceback" not in r["stderr"], r["stderr"]


def test_run_fake_kind_sigkill_then_prune_leaves_zero_clusters_and_processes(tmp_path, kfp_trees, remote_bases):
    """SIGKILL cannot be handled: whatever the run left (cluster, ledger entry, a `kind create` or
    `kubectl port-forward` still running in its own session) must be found and removed by `clusters prune`."""
    rng = random.Random(SEED + 3)
    jobs = [((tmp_path / f"k{trial}", kfp_trees, remote_bases, round(rng.uniform(0.0, 2.0), 2), (signal.SIGKILL,)),
             {"anchor": '"create", "cluster"'}) for trial in range(4)]
    results = _run_all(jobs)
    _assert_nothing_left(results)
    assert any(r["created"] for r in results)
    for r in results:
        assert r["rc"] == -signal.SIGKILL
        assert r["prune"].returncode == 0 and "Traceback" not in r["prune"].stderr, r["prune"].stderr


def test_run_fake_kind_sigterm_during_install_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    result = _trial(tmp_path, kfp_trees, remote_bases, 0.6, (signal.SIGTERM,), anchor='"create", "cluster"')
    assert result["created"], result["stderr"]
    assert result["clusters"] == {} and result["ledger"] == {} and result["alive"] == []
    assert result["rc"] == 130 and "Traceback" not in result["stderr"]


def _prune(tmp: Path, fakes, **knobs: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **fakes.env(KFPC_STATE_DIR=str(tmp / "state"), **knobs)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "clusters", "prune"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _leftover_ledger(tmp: Path, name: str) -> Path:
    ledger = tmp / "state" / "clusters.json"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text(json.dumps({"version": 1, "clusters": {name: {
        "name": name, "run_id": "x", "variant": "driver-pod", "mode": "standalone", "provider": "kind",
        "state": "ready", "owner": -1, "host": os.uname().nodename, "holders": [], "keep": False,
        "handle": None}}}))
    return ledger


def test_clusters_prune_fake_kind_without_docker_keeps_ledger_and_fails(tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    name = "kfpc-x-driver-pod-standalone"
    fakes.state.write_text(json.dumps({"clusters": {name: {"state": "ready"}}}))
    ledger = _leftover_ledger(tmp_path, name)
    done = _prune(tmp_path, fakes, KFPC_FAKE_DOCKER_DAEMON="0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot delete 1 cluster(s)" in done.stderr and name in done.stderr
    assert name in json.loads(ledger.read_text())["clusters"]  # never erased
    done = _prune(tmp_path, fakes)  # Docker back: the same command finishes the job
    assert done.returncode == 0, done.stderr
    assert json.loads(ledger.read_text())["clusters"] == {} and fakes.state_data()["clusters"] == {}


def test_clusters_prune_fake_kind_corrupt_ledger_is_one_line_and_set_aside(tmp_path):
    fakes = make_fakes(tmp_path / "fakes")
    ledger = tmp_path / "state" / "clusters.json"
    ledger.parent.mkdir(parents=True)
    ledger.write_text('{"version": 1, "clusters": {"kfpc-a": ')  # a truncated write
    done = _prune(tmp_path, fakes)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "not valid" in line]
    assert len(warnings) == 1 and "--unlisted" in warnings[0]
    aside = list(ledger.parent.glob("clusters.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"version": 1, "clusters": {"kfpc-a": ')
