"""Live tier: every catalogue scenario on every selected variant x mode (marker `live`).

Given a cluster with the variant installed (`kfpc_cluster`), when the scenario runs, then its evidence bundle
is complete. Pairs and scenarios come from the selection (`--kfpc-config`, `--kfpc-variant`, `--kfpc-mode`).
Without a Docker engine (or an existing cluster via --kfpc-provider existing) these tests SKIP with the
reason "no Docker engine / no cluster provider"; on a Docker machine they create kind clusters and run.
"""

from __future__ import annotations

import json

import pytest

from harness.catalogue import scenarios as catalogue
from harness.live.session import PairResult

pytestmark = [pytest.mark.live, pytest.mark.kfpc_live("scenarios")]


def test_live_scenario(request, live_scenario, kfpc_cluster, kfpc_live):
    key = request.node.callspec.params["kfpc_cluster"]
    variant, mode = key.split(".", 1)
    spec = next(s for s in catalogue.discover(modes=[mode]) if s.name == live_scenario)
    scenario = catalogue.to_scenario(spec, catalogue.compile_scenario(spec, kfpc_live.out_dir / "pipelines"))
    reason = scenario.skip_reason(variant, mode)
    if reason:
        pytest.skip(reason)
    result = PairResult(key, kfpc_cluster.name)
    kfpc_live.run_scenarios(key, kfpc_cluster, [scenario], result)
    [bundle] = result.bundles
    status = json.loads((kfpc_live.out_dir / bundle / "bundle.json").read_text())["status"]
    assert status == "complete", f"{live_scenario} on {key}: bundle {bundle} is {status} ({result.error})"
