"""Cleanup after SIGINT/SIGTERM at random points of a real `kfp-conformance run` subprocess.

Fake `kind`, `kubectl` and `docker` executables on PATH keep the "cluster" state in a JSON file; the
run is real (ledger, plan, install walk, signal handling). After every trial no cluster may be left, in the
fake kind state or in the ledger. Delays come from a seeded RNG, so a failure is reproducible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.livefakes import make_fakes, shared_cache

REPO = Path(__file__).resolve().parent.parent
TRIALS = 20
SEED = int(os.environ.get("KFPC_SIGINT_SEED", "20260430"))


def _trial(tmp: Path, kfp_trees: Path, remote_bases: Path, delay: float, sig: int, anchor: str = "") -> dict:
    fakes = make_fakes(tmp / "fakes")
    argv = [sys.executable, "-m", "harness.cli", "run", "--live-only", "--variant", "driver-pod", "--mode", "standalone",
            "--scenario", "single-component", "--no-oracle", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
            "--cache-dir", str(shared_cache()), "--out", str(tmp / "out"), "--run-id", "sig"]
    # renders come from the shared cache; the ledger is per trial (KFPC_STATE_DIR)
    env = {**os.environ, **fakes.env(KFPC_FAKE_CREATE_SLEEP="0.4", KFPC_STATE_DIR=str(tmp / "state"))}
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Anchor the delay at the first fake call (`docker info`) or at `anchor`, so a slow interpreter start on
    # a loaded machine does not push every signal before the cluster exists.
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if fakes.log.exists() and anchor in fakes.log.read_text():
            break
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    ledger = tmp / "state" / "clusters.json"
    entries = json.loads(ledger.read_text())["clusters"] if ledger.is_file() else {}
    return {"delay": delay, "rc": proc.returncode, "stderr": err, "clusters": fakes.state_data()["clusters"],
            "created": any(c[:2] == ["create", "cluster"] for c in fakes.calls("kind")),
            "ledger": entries}


def test_run_fake_kind_sigint_at_random_points_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    rng = random.Random(SEED)
    results = []
    for trial in range(TRIALS):
        # every 4th trial counts from the first fake call (`docker info`: startup, scenario compile); the others
        # from the preflight, spread over cluster create (0.4s sleep), registry, images, install and connect
        anchor = "" if trial % 4 == 0 else '"image", "inspect"'
        delay = round(rng.uniform(0.0, 2.5), 2)
        results.append(_trial(tmp_path / f"t{trial}", kfp_trees, remote_bases, delay, signal.SIGINT, anchor))
    leftovers = [(r["delay"], r["clusters"], r["ledger"]) for r in results if r["clusters"] or r["ledger"]]
    assert leftovers == [], f"seed {SEED}: clusters left after SIGINT: {leftovers}"
    interrupted_after_create = [r for r in results if r["created"] and r["rc"] == 130]
    assert len(interrupted_after_create) >= 5, [(r["delay"], r["rc"], r["created"]) for r in results]
    for r in interrupted_after_create:
        assert "Traceback" not in r["stderr"], r["stderr"]
        assert r["stderr"].strip().endswith("error: interrupted (cleanup ran; re-run to continue)")


def test_run_fake_kind_sigterm_during_install_leaves_zero_clusters(tmp_path, kfp_trees, remote_bases):
    result = _trial(tmp_path, kfp_trees, remote_bases, 0.6, signal.SIGTERM, anchor='"create", "cluster"')
    assert result["created"], result["stderr"]
    assert result["clusters"] == {} and result["ledger"] == {}
    assert result["rc"] == 130 and "Traceback" not in result["stderr"]
