"""Several real worker processes (as pytest-xdist would start) share one cluster per (variant, mode) through the
ledger: exactly one `kind create cluster`, everyone gets the same cluster, and it is gone at the end.

Fake `kind`, `kubectl` and `docker` on PATH; the ledger, plan and install walk are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.livefakes import make_fakes, shared_cache

REPO = Path(__file__).resolve().parent.parent
WORKERS = 3

WORKER = r"""
import json, os, sys, time
from pathlib import Path
from tests.livefakes import DRIVER_IMAGES, selection_for
from harness.live.session import LiveOptions, LiveSession, make_plan

trees, bases, out, cache, barrier, index, workers = sys.argv[1:8]
selection = selection_for(Path(trees), Path(bases), Path(out), Path(cache), ["central-driver"], ["standalone"])
options = LiveOptions(run_id="xdist1", driver_images=DRIVER_IMAGES, poll_interval=0.05,
                      state_dir=os.environ["KFPC_STATE_DIR"])  # as the CLI passes it
plan = make_plan(selection, [], options)
session = LiveSession(selection, plan, options, progress=lambda line: None)
session.ledger.poll = 0.1
session.prepare()
Path(barrier, index).touch()
while len(list(Path(barrier).iterdir())) < int(workers):  # start acquiring together, like xdist workers
    time.sleep(0.05)
with session.cluster(plan.pairs[0].key) as handle:
    print(json.dumps(handle.to_dict()), flush=True)
    time.sleep(2.0)  # the tests of this worker
"""


def test_xdist_workers_fake_kind_share_one_cluster_created_once(tmp_path, kfp_trees, remote_bases):
    fakes = make_fakes(tmp_path / "fakes")
    env = {**os.environ, **fakes.env(KFPC_FAKE_CREATE_SLEEP="0.5", KFPC_STATE_DIR=str(tmp_path / "state"))}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(kfp_trees), str(remote_bases), str(tmp_path / f"out{i}"),
                               str(shared_cache()), str(barrier), str(i), str(WORKERS)],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(WORKERS)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * WORKERS, [o[1][-2000:] for o in outputs]
    handles = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]
    assert len({h["name"] for h in handles}) == 1 and len({h["kubeconfig"] for h in handles}) == 1
    creates = [c for c in fakes.calls("kind") if c[:2] == ["create", "cluster"]]
    assert len(creates) == 1
    applies = [c for c in fakes.calls("kubectl") if "apply" in c]
    assert len(applies) == 2  # the cluster was installed once (cluster-scoped + overlay), not per worker
    assert [c for c in fakes.calls("kind") if c[:2] == ["delete", "cluster"]] == [["delete", "cluster", "--name",
                                                                                   handles[0]["name"]]]
    assert fakes.state_data()["clusters"] == {}
    assert json.loads((tmp_path / "state" / "clusters.json").read_text())["clusters"] == {}
