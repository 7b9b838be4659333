"""No token ever reaches a file: a canary token issued by the fake TokenRequest is also planted in a fake pod
log, a fake Argo node message and a fake API error; after a full connect + run + collect against the fake
Kubernetes/KFP API (and a fake kubectl on PATH) every file written must lack it and show the redaction
marker where it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.boundary.redact import PLACEHOLDER
from harness.config import load_config
from harness.evidence.bundle import read_bundle
from harness.live.runs import run_scenario
from harness.models import Scenario
from harness.testing.fakeapi import FakeCluster
from harness.testing.fakerun import simulate
from tests.fakeapi_session import fake_session, seed

CONFIG = load_config()
PIPELINE = "test_data/sdk_compiled_pipelines/valid/pipeline_with_loops_and_conditions.yaml"
CANARIES = {
    "plain": "kfpc-canary-7d3f9a2b1c5e",  # caught only because the boundary registered it
    "jwt-shaped": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ",
}


def plant(canary: str, kind: str):
    base = simulate(kind)

    def on_run(fake: FakeCluster, run: dict) -> None:
        base(fake, run)
        workflow = fake.objects_of("argoproj.io/v1alpha1", "workflows")[-1]
        producer_pod = next(o for o in fake.objects_of("v1", "pods") if "system-container-impl" in
                            o["metadata"]["name"])["metadata"]["name"]
        fake.add_log(run["namespace"], producer_pod, "main", [f"debug: Authorization token {canary} (oops)"])
        driver = next(n for n in workflow["status"]["nodes"].values() if n["displayName"] == "producer-driver")
        driver["message"] = f"driver failed to call the API with {canary}"
        wait_pod = sorted(o["metadata"]["name"] for o in fake.objects_of("v1", "pods")
                          if "system-container-impl" in o["metadata"]["name"])[-1]
        fake.errors[rf"/pods/{wait_pod}/log$"] = (500, f"upstream rejected credential {canary}")

    return on_run


@pytest.mark.parametrize("shape", sorted(CANARIES))
@pytest.mark.parametrize(("variant", "mode"), [("sidecar-plugin", "standalone"), ("central-driver", "multi-user"),
                                                ("driver-pod", "standalone")])
def test_canary_token_fake_api_absent_from_every_written_file(tmp_path: Path, kfp_trees: Path, capfd, variant: str,
                                                             mode: str, shape: str) -> None:
    canary = CANARIES[shape]
    kind = CONFIG.variant(variant).driver.kind
    out = tmp_path / "out"
    with FakeCluster(on_run=plant(canary, kind), token_factory=lambda ref, aud: canary,
                     multi_user=mode == "multi-user") as fake:
        seed(fake)
        with fake_session(tmp_path, variant, mode, fake, run_id="c1") as (ctx, _bin):
            assert canary not in repr(ctx.kfp) and canary not in repr(ctx.kube)
            bundle_path = run_scenario(ctx, Scenario(name="canary", origin="catalogue",
                                                     pipeline_file=str(kfp_trees / variant / PIPELINE),
                                                     arguments={"loop_parameter": [1, 2], "msg": "m"}), out)
        # the token was really used: the fake KFP API accepted it as a bearer token
        assert any(r.path == "/apis/v2beta1/runs" and r.authorization for r in fake.requests)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        assert canary.encode() not in path.read_bytes(), f"token leaked into {path.relative_to(tmp_path)}"
    captured = capfd.readouterr()
    assert canary not in captured.out and canary not in captured.err

    bundle = read_bundle(bundle_path)
    leaked_log = next(f for f in bundle.files if f.startswith("logs/pods/") and "Authorization token" in
                      bundle.read_text(f))
    assert f"Authorization token {PLACEHOLDER}" in bundle.read_text(leaked_log)
    errors = json.loads(bundle.read_text("collection-errors.json"))
    assert any(PLACEHOLDER in e["error"] for e in errors)
    message = next(d["message"] for d in bundle.driver_nodes if d["task_path"] == "root/producer")
    assert PLACEHOLDER in message
    assert PLACEHOLDER in bundle.read_text("workflow.json")
    assert bundle.data["status"] == "partial"  # one log could not be read: said, not hidden
