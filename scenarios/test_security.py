"""Live security probes (multi-user) and TLS checks (tls) per variant (marker `live`).

Pairs come from the selection (multi-user and TLS modes only). Each probe becomes a finding in `<out>/security/<variant>.<mode>/security.json`; the test fails on a blocking
one (a tenant gained something). Without a cluster provider the tests SKIP with the reason. The plans are
tested without a cluster in tests/test_security_plan.py (golden files, fake API).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.catalogue import scenarios as catalogue
from harness.errors import HarnessError
from harness.live.session import PairResult
from pytest_kfp_conformance.outcomes import skip_if_not_verified

pytestmark = [pytest.mark.live, pytest.mark.kfpc_live("security")]


def test_live_security(request, kfpc_cluster, kfpc_live):
    from harness.boundary.kube import Kube
    from harness.live.security import SecurityRun, run_security

    key = request.node.callspec.params["kfpc_cluster"]
    config = kfpc_live.selection.config
    variant, mode = config.variant(key.split(".")[0]), config.mode(key.split(".")[1])
    pair = kfpc_live.pairs[key]
    specs = {s.name: s for s in catalogue.discover(modes=list(config.modes))}
    compiled = {name: catalogue.to_scenario(specs[name], catalogue.compile_scenario(specs[name],
                                                                                  kfpc_live.out_dir / "pipelines"))
                for name in ("single-component", "long-running")}
    states: list[str] = []
    if mode.tls:  # the driver path under TLS: a catalogue run must succeed with TLS on
        result = PairResult(key, kfpc_cluster.name)
        kfpc_live.run_scenarios(key, kfpc_cluster, [compiled["single-component"]], result)
        states = [json.loads((kfpc_live.out_dir / b / "bundle.json").read_text())["run"]["state"]
                  for b in result.bundles]
    kube = Kube.for_cluster(kfpc_cluster, runner=kfpc_live.runner)
    tree = Path(kfpc_live.selection.sources[variant.name].path)
    run = SecurityRun(kube=kube, runner=kfpc_live.runner, kubectl=kfpc_cluster.kubectl(), variant=variant, mode=mode,
                      manifests=kfpc_live.overlay_manifests(pair), out_dir=kfpc_live.out_dir / "security" / key,
                      run_id=kfpc_live.plan.run_id, image=kfpc_live.settings.preload_images[0])
    try:
        findings = run_security(run, kfpc_cluster, short=compiled["single-component"],
                                long_running=compiled["long-running"],
                                workflows_dir=tree / "test_data" / "compiled-workflows", driver_run_states=states)
    except HarnessError as exc:
        pytest.fail(exc.line(), pytrace=False)
    blocking = [f for f in findings if f.blocking]
    shown = "\n".join(f"- {f.id} {f.subject}: {f.message}" for f in blocking)
    assert not blocking, f"{len(blocking)} blocking security finding(s) for {key}:\n{shown}"
    skip_if_not_verified(findings)
