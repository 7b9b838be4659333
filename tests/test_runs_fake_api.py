"""run_scenario end to end against a fake Kubernetes + KFP API on 127.0.0.1 and a fake `kubectl` on PATH
(port-forward and exec); the kfp SDK, requests, the kubernetes client, collection and the bundle writer
all run for real. Workflow shapes per variant come from harness.testing.fakerun."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from harness.boundary.kfpapi import ca_secret
from harness.config import load_config
from harness.errors import ConfigError, HarnessError
from harness.evidence.bundle import read_bundle
from harness.live.runs import run_scenario
from harness.models import Scenario
from harness.render.kustomize import Renderer
from harness.testing.fakeapi import FakeCluster
from harness.testing.fakekubectl import recorded_calls
from harness.testing.fakemlmd import FakeMlmd
from harness.testing.fakerun import simulate
from tests.certs import kfp_api_tls_cert
from tests.fakeapi_session import fake_session, seed

CONFIG = load_config()
PIPELINE = "test_data/sdk_compiled_pipelines/valid/pipeline_with_loops_and_conditions.yaml"
ARGUMENTS = {"loop_parameter": ["a", "b"], "msg": "same on every variant"}


def scenario(kfp_trees: Path) -> Scenario:
    return Scenario(name="loops", origin="catalogue", pipeline_file=str(kfp_trees / "sidecar-plugin" / PIPELINE),
                    arguments=ARGUMENTS)


@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
@pytest.mark.parametrize("variant", ["driver-pod", "sidecar-plugin", "central-driver"])
def test_run_scenario_fake_api_fake_kubectl_writes_valid_bundle(tmp_path: Path, kfp_trees: Path, variant: str,
                                                               mode: str) -> None:
    kind = CONFIG.variant(variant).driver.kind
    with FakeMlmd() as mlmd, FakeCluster(on_run=simulate(kind, mlmd=mlmd), multi_user=mode == "multi-user") as fake:
        seed(fake)
        with fake_session(tmp_path, variant, mode, fake, mlmd=mlmd) as (ctx, bin_dir):
            path = run_scenario(ctx, scenario(kfp_trees), tmp_path / "out")
        created = [r for r in fake.requests if r.path == "/apis/v2beta1/runs" and r.method == "POST"]

    bundle = read_bundle(path)  # schema-valid and every file hash checked
    assert path == tmp_path / "out" / "bundles" / "loops" / f"{variant}.{mode}"
    assert bundle.complete and bundle.data["run"]["state"] == "SUCCEEDED"
    namespace = CONFIG.mode(mode).user_namespace
    assert bundle.data["run"]["namespace"] == namespace
    # identical arguments, caching off, in the mode's namespace, as the mode's identity
    assert len(created) == 1
    assert created[0].body["runtime_config"]["parameters"] == ARGUMENTS
    experiment = next(iter(fake.experiments.values()))
    assert experiment["display_name"] == "kfpc-r1"
    assert (experiment.get("namespace") or "kubeflow") == namespace
    issued = fake.tokens[-1]
    assert issued["identity"] == f"{namespace}/{CONFIG.mode(mode).workflow_service_account}"
    assert issued["audiences"] == (["pipelines.kubeflow.org"] if mode == "multi-user" else [])

    paths = [t["path"] for t in bundle.tasks]
    for expected in ("root", "root/producer", "root/for-loop-2", "root/for-loop-2[0]",
                     "root/for-loop-2[0]/consumer", "root/for-loop-2[1]/consumer"):
        assert expected in paths
    assert not any("fake-run" in p or "-agent" in p for p in paths)  # never ids or pod names
    consumer = next(t for t in bundle.tasks if t["path"] == "root/for-loop-2[1]/consumer")
    assert consumer["state"] == "SUCCEEDED" and consumer["started_at"]

    drivers = {(d["task_path"], d["driver_type"]) for d in bundle.driver_nodes}
    assert {("root", "ROOT_DAG"), ("root/producer", "CONTAINER"), ("root/for-loop-2", "DAG"),
            ("root/for-loop-2[1]", "DAG"), ("root/for-loop-2[1]/consumer", "CONTAINER")} <= drivers
    loop_driver = next(d for d in bundle.driver_nodes if d["task_path"] == "root/for-loop-2")
    if kind == "central-service":
        assert loop_driver["node_type"] == "HTTP" and "parameters" not in loop_driver["outputs"]
        assert json.loads(loop_driver["outputs"]["result"])["iteration-count"] == "2"
    else:
        assert loop_driver["node_type"] == {"pod": "Pod", "executor-plugin": "Plugin"}[kind]
        assert loop_driver["outputs"]["parameters"]["iteration-count"] == "2"

    logs = bundle.data["driver_logs"]
    assert logs["found"] is True and logs["files"]
    driver_text = "".join(bundle.read_text(f) for f in logs["files"])
    assert "KFP driver ROOT_DAG" in driver_text
    if kind == "central-service":  # the shared service's log is cut to this run and its window
        assert "someone-else" not in driver_text and "from before" not in driver_text
    if kind == "executor-plugin":  # followed while the run was in flight: the agent pod is gone now
        assert [f for f in logs["files"] if f.startswith("logs/followed/")] == logs["files"]
    # Argo deletes the agent pod (plugin and HTTP templates) when the workflow completes
    assert not [p for p in bundle.data["pods"] if p.endswith("-agent")]
    assert bundle.data["task_outputs"]["read"] is True
    producer = next(t for t in bundle.tasks if t["path"] == "root/producer")
    assert producer["outputs"]["parameters"] == {"Output": 7}  # from MLMD (Argo executor nodes have none)

    events = json.loads(bundle.read_text("events.json"))
    assert [e["reason"] for e in events] == ["WorkflowRunning"]  # the day-old event is outside the window
    workflow = json.loads(bundle.read_text("workflow.json"))
    assert workflow["status"]["nodes"]
    assert "timings.json" in bundle.files and "pods.json" in bundle.files
    if mode == "multi-user":
        profile = json.loads(bundle.read_text("profile-objects.json"))
        assert profile["namespace"] == namespace
        assert {"name": "default-editor"} in profile["serviceaccounts"]
    else:
        assert "profile-objects.json" not in bundle.files
    forward = next(c for c in recorded_calls(bin_dir) if "port-forward" in c)
    assert forward[forward.index("port-forward"):] == ["port-forward", "-n", "kubeflow", "svc/ml-pipeline",
                                                       ":8888", "--address", "127.0.0.1"]


def test_run_scenario_fake_api_timeout_writes_partial_bundle(tmp_path: Path, kfp_trees: Path) -> None:
    with FakeCluster(on_run=simulate("executor-plugin"), polls_until_done=10**6) as fake:
        seed(fake)
        with fake_session(tmp_path, "sidecar-plugin", "standalone", fake, timeouts={"run": 1}) as (ctx, _):
            path = run_scenario(ctx, scenario(kfp_trees), tmp_path / "out")
    bundle = read_bundle(path)
    assert bundle.data["status"] == "partial"
    assert "reaches a terminal state" in bundle.data["reason"] and "state RUNNING" in bundle.data["reason"]
    assert bundle.data["run"]["state"] == "RUNNING"
    assert bundle.driver_nodes and bundle.data["pods"]  # the diagnostics that exist are still collected


def test_run_scenario_fake_api_missing_pipeline_fails_before_submit(tmp_path: Path) -> None:
    with FakeCluster(on_run=simulate("pod")) as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", "standalone", fake) as (ctx, _), pytest.raises(ConfigError) as error:
            run_scenario(ctx, Scenario(name="x", origin="catalogue", pipeline_file=str(tmp_path / "no.yaml")),
                         tmp_path / "out")
        assert not [r for r in fake.requests if r.path == "/apis/v2beta1/runs"]
    assert "no.yaml" in error.value.line()
    assert not (tmp_path / "out").exists()  # nothing half-made


def test_connect_fake_api_missing_service_account_fails_before_port_forward(tmp_path: Path) -> None:
    with FakeCluster() as fake, pytest.raises(HarnessError) as error, fake_session(tmp_path, "driver-pod", "standalone", fake):
        pass
    assert "kubeflow/pipeline-runner" in error.value.line()
    assert not [c for c in recorded_calls(tmp_path / "bin") if "port-forward" in c]


@pytest.fixture(scope="module")
def tls_renders(kfp_trees: Path, remote_bases: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    renderer = Renderer(mirror=remote_bases, cache_dir=tmp_path_factory.mktemp("render-cache"))
    return {v: renderer.render(kfp_trees / v, CONFIG.mode("tls").ci_overlay) for v in CONFIG.variants}


def test_ca_secret_derived_from_real_tls_renders(tls_renders: dict) -> None:
    found = {v: ca_secret(r.manifests) for v, r in tls_renders.items()}
    assert found == {"driver-pod": ("kubeflow", "kfp-api-tls-cert"),
                     "sidecar-plugin": ("kubeflow", "argo-workflows-agent-ca-certificates"),
                     "central-driver": ("kubeflow", "argo-workflows-agent-ca-certificates")}


def _certificate(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """Files of a certificate like the KFP API Certificate's (tests/certs.py)."""
    key_pem, pem = kfp_api_tls_cert()
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(key_pem)
    return cert_file, key_file, pem


def test_connect_tls_fake_api_uses_ca_from_rendered_certificate_secret(tmp_path: Path, kfp_trees: Path,
                                                                      tls_renders: dict) -> None:
    import base64

    cert_file, key_file, pem = _certificate(tmp_path)
    with FakeMlmd() as mlmd, FakeCluster(on_run=simulate("executor-plugin", mlmd=mlmd),
                                         tls=(str(cert_file), str(key_file))) as fake:
        seed(fake)
        fake.add({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                  "metadata": {"name": "argo-workflows-agent-ca-certificates", "namespace": "kubeflow"},
                  "data": {"ca.crt": base64.b64encode(pem).decode()}})
        with fake_session(tmp_path, "sidecar-plugin", "tls", fake, renders=tls_renders["sidecar-plugin"],
                          mlmd=mlmd) as (ctx, _):
            ca_file = Path(ctx.kfp.ca_file)
            assert ctx.kfp.host.startswith("https://localhost:")
            assert stat.S_IMODE(ca_file.stat().st_mode) == 0o600 and ca_file.read_bytes() == pem
            assert tmp_path not in ca_file.parents  # outside the out dir
            path = run_scenario(ctx, scenario(kfp_trees), tmp_path / "out")
        assert not ca_file.exists()  # removed with the session
    assert read_bundle(path).complete


def test_run_scenario_fake_api_creates_setup_objects_repeats_runs_and_cleans_up(tmp_path: Path, kfp_trees: Path) -> None:
    """A scenario with a fixture Secret/ConfigMap and two submissions (caching): the objects exist in the
    user namespace during the runs and are deleted after; the bundle is the last run's; the fixture value
    is never written."""
    fixture_value = "kfpc-fixture-value-never-written"
    setup = ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kfpc-fixture"},
              "stringData": {"fixture": fixture_value}},
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kfpc-config"}, "data": {"colour": "blue"}})
    repeated = Scenario(name="caching", origin="catalogue", pipeline_file=str(kfp_trees / "sidecar-plugin" / PIPELINE),
                        arguments=ARGUMENTS, setup=setup, repeat_runs=2, expected_cache={"root/for-loop-1": True})
    with FakeCluster(on_run=simulate("executor-plugin")) as fake:
        seed(fake)
        with fake_session(tmp_path, "sidecar-plugin", "standalone", fake) as (ctx, _bin):
            path = run_scenario(ctx, repeated, tmp_path / "out")
        calls = [(r.method, r.path) for r in fake.requests]
        left = fake.objects_of("v1", "secrets", "kubeflow") + fake.objects_of("v1", "configmaps", "kubeflow")

    created_at = calls.index(("POST", "/api/v1/namespaces/kubeflow/secrets"))
    runs = [i for i, c in enumerate(calls) if c == ("POST", "/apis/v2beta1/runs")]
    deleted_at = calls.index(("DELETE", "/api/v1/namespaces/kubeflow/secrets/kfpc-fixture"))
    assert created_at < runs[0] and len(runs) == 2 and deleted_at > runs[-1]
    assert ("DELETE", "/api/v1/namespaces/kubeflow/configmaps/kfpc-config") in calls
    assert not [o for o in left if o["metadata"]["name"] in ("kfpc-fixture", "kfpc-config")]
    bundle = read_bundle(path)
    assert len(bundle.data["run"]["previous_runs"]) == 1
    assert bundle.data["scenario"]["expected_cache"] == {"root/for-loop-1": True}
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert fixture_value not in file.read_text(errors="replace"), file
