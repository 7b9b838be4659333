"""Live tier: every catalogue scenario on every variant x mode (marker `live`).

Without a Docker engine (or an existing cluster via --kfpc-provider existing) these tests SKIP with the
reason "no Docker engine / no cluster provider"; on a Docker machine they create kind clusters and run.
"""

from __future__ import annotations

import json

import pytest

from harness import catalogue
from harness.config import load_config
from harness.live import PairResult

_CONFIG = load_config()
PAIRS = [f"{v}.{m}" for v in _CONFIG.variants for m in _CONFIG.modes]
SPECS = {spec.name: spec for spec in catalogue.discover(modes=list(_CONFIG.modes))}


@pytest.mark.live
@pytest.mark.parametrize("kfpc_cluster", PAIRS, indirect=True)
@pytest.mark.parametrize("scenario_name", sorted(SPECS))
def test_live_scenario(request, scenario_name, kfpc_cluster, kfpc_live):
    key = request.node.callspec.params["kfpc_cluster"]
    variant, mode = key.split(".", 1)
    spec = SPECS[scenario_name]
    scenario = catalogue.to_scenario(spec, catalogue.compile_scenario(spec, kfpc_live.out_dir / "pipelines"))
    reason = scenario.skip_reason(variant, mode)
    if reason:
        pytest.skip(reason)
    result = PairResult(key, kfpc_cluster.name)
    kfpc_live.run_scenarios(key, kfpc_cluster, [scenario], result)
    [bundle] = result.bundles
    status = json.loads((kfpc_live.out_dir / bundle / "bundle.json").read_text())["status"]
    assert status == "complete", f"{scenario_name} on {key}: bundle {bundle} is {status} ({result.error})"
