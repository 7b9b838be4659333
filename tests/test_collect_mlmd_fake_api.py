"""Collection against the faithful fakes: fake Kubernetes/KFP API (harness.testing.fakeapi + fakerun), fake
`kubectl`, and a fake ML Metadata gRPC server (harness.testing.fakemlmd) read by the real MlmdReader.
Each test is one defect of issue 12 (docs/fidelity.md lists what the fakes do and where upstream does it)."""

# no `from __future__ import annotations`: the kfp SDK reads component annotations as types

import json
from pathlib import Path

import pytest

from harness.config import load_config
from harness.evidence.bundle import read_bundle
from harness.evidence.logs import log_classes
from harness.evidence.normalize import Scrubber
from harness.judge.compare import compare_scenario
from harness.judge.policy import load_policy
from harness.judge.verdict import Status
from harness.live.runs import run_scenario
from harness.models import Scenario
from harness.testing.fakeapi import FakeCluster
from harness.testing.fakemlmd import FakeMlmd
from harness.testing.fakerun import simulate
from tests.fakeapi_session import fake_session, seed

CONFIG = load_config()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake run's pipeline, compiled by the real kfp SDK: producer's Output is NUMBER_INTEGER."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def producer(dataset: dsl.Output[dsl.Dataset]) -> int:
        return 7

    @dsl.component(base_image="python:3.11")
    def consumer(x: str) -> str:
        return x

    @dsl.pipeline(name="loops")
    def loops() -> None:
        producer()
        with dsl.ParallelFor(["a", "b"]) as item:
            consumer(x=item)

    path = tmp_path_factory.mktemp("ir") / "loops.yaml"
    compiler.Compiler().compile(loops, str(path))
    return path


def _run(tmp_path: Path, variant: str, pipeline: Path, *, with_mlmd: bool = True, cached: bool = False,
         expected: dict | None = None):
    kind = CONFIG.variant(variant).driver.kind
    scenario = Scenario(name="loops", origin="catalogue", pipeline_file=str(pipeline),
                        expected_outputs=expected or {})
    with FakeMlmd() as mlmd, FakeCluster(on_run=simulate(kind, mlmd=mlmd, cached=cached)) as fake:
        seed(fake)
        with fake_session(tmp_path / variant, variant, "standalone", fake,
                          mlmd=mlmd if with_mlmd else None) as (ctx, _bin):
            path = run_scenario(ctx, scenario, tmp_path / "out")
        return read_bundle(path), fake


def test_collect_fake_api_fake_mlmd_task_outputs_typed_from_compiled_spec(tmp_path: Path, compiled: Path) -> None:
    bundle, _ = _run(tmp_path, "sidecar-plugin", compiled, expected={"root/producer": {"Output": 7}})
    assert bundle.complete, bundle.data.get("reason")
    tasks = {t["path"]: t for t in bundle.tasks}
    output = tasks["root/producer"]["outputs"]["parameters"]["Output"]
    assert output == 7 and type(output) is int  # MLMD held 7.0; the IR declares NUMBER_INTEGER
    assert tasks["root/for-loop-2[1]/consumer"]["outputs"]["parameters"] == {"Output": "consumed 1"}
    [dataset] = tasks["root/producer"]["outputs"]["artifacts"]
    assert dataset["name"] == "dataset" and dataset["type"] == "system.Dataset"
    assert dataset["metadata"] == {"rows": 3} and dataset["uri"].startswith("minio://mlpipeline/")
    assert bundle.data["task_outputs"]["read"] is True
    comparison = compare_scenario("loops", "standalone", {"sidecar-plugin": bundle}, variants=["sidecar-plugin"],
                                  baseline="sidecar-plugin", policy=load_policy())
    checks = {c.name: c for c in comparison.cells[0].checks}
    assert checks["expectations"].status is Status.PASS


def test_collect_fake_api_declared_int_does_not_match_string(tmp_path: Path, compiled: Path) -> None:
    bundle, _ = _run(tmp_path, "sidecar-plugin", compiled, expected={"root/producer": {"Output": "7"}})
    comparison = compare_scenario("loops", "standalone", {"sidecar-plugin": bundle}, variants=["sidecar-plugin"],
                                  baseline="sidecar-plugin", policy=load_policy())
    checks = {c.name: c for c in comparison.cells[0].checks}
    assert checks["expectations"].status is Status.FAIL
    assert [f.id for f in checks["expectations"].findings] == ["oracle.output-mismatch"]


def test_collect_fake_api_without_mlmd_bundle_partial_and_outputs_not_verified(tmp_path: Path, compiled: Path) -> None:
    bundles = {v: _run(tmp_path, v, compiled, with_mlmd=False)[0] for v in ("sidecar-plugin", "driver-pod")}
    for bundle in bundles.values():
        assert bundle.data["status"] == "partial"
        assert bundle.data["task_outputs"] == {"source": "mlmd", "read": False,
                                               "reason": "no ML Metadata connection: task outputs not read"}
    comparison = compare_scenario("loops", "standalone", bundles, variants=["sidecar-plugin", "driver-pod"],
                                  baseline="sidecar-plugin", policy=load_policy())
    cell = next(c for c in comparison.cells if c.variant == "driver-pod")
    outputs = next(c for c in cell.checks if c.name == "outputs")
    assert outputs.status is Status.NOT_VERIFIED and "task outputs not read" in outputs.reason


def test_collect_fake_api_sidecar_logs_followed_before_agent_pod_deleted(tmp_path: Path, compiled: Path) -> None:
    bundle, fake = _run(tmp_path, "sidecar-plugin", compiled)
    # the fake did what Argo does at completion: the agent pod and its log are gone
    assert not [p for p in fake.objects_of("v1", "pods", "kubeflow") if p["metadata"]["name"].endswith("-agent")]
    logs = bundle.data["driver_logs"]
    assert logs["found"] is True
    text = "".join(bundle.read_text(f) for f in logs["files"])
    for driver in ("ROOT_DAG", "DAG", "CONTAINER"):
        assert f"KFP driver {driver}" in text
    comparison = compare_scenario("loops", "standalone", {"sidecar-plugin": bundle}, variants=["sidecar-plugin"],
                                  baseline="sidecar-plugin", policy=load_policy())
    assert next(c for c in comparison.cells[0].checks if c.name == "driver-logs").status is Status.PASS


def test_compare_fake_api_plugin_outputs_verbatim_are_declared(tmp_path: Path, compiled: Path) -> None:
    variants = ["sidecar-plugin", "driver-pod", "central-driver"]
    bundles = {v: _run(tmp_path, v, compiled)[0] for v in variants}
    plugin = {d["task_path"]: d["outputs"]["parameters"] for d in bundles["sidecar-plugin"].driver_nodes}
    assert plugin["root/producer"]["execution-id"] and plugin["root"]["pod-spec-patch"] == ""  # verbatim
    comparison = compare_scenario("loops", "standalone", bundles, variants=variants, baseline="sidecar-plugin",
                                  policy=load_policy())
    for cell in comparison.cells:
        if cell.variant == "sidecar-plugin":
            continue
        drivers = next(c for c in cell.checks if c.name == "driver-outputs")
        assert drivers.status is Status.PASS, [f.message for f in drivers.findings if not f.expected]
        assert next(c for c in cell.checks if c.name == "outputs").status is Status.PASS
    pod_cell = next(c for c in comparison.cells if c.variant == "driver-pod")
    declared = {f.evidence.get("declared_by") for f in pod_cell.findings}
    assert {"sidecar-plugin.container-execution-id-verbatim", "sidecar-plugin.dag-empty-pod-spec-patch-verbatim"} \
        <= declared
    # the MLMD id inside a driver pod's pod-spec-patch is noise: no pod-spec-patch difference is reported
    assert not [f for f in pod_cell.findings if f.evidence.get("field") == "pod-spec-patch"
                and f.id == "driver.output-differs"]


def test_collect_fake_api_cached_task_uses_executor_dag_node_and_uuid_task_ids(tmp_path: Path,
                                                                                compiled: Path) -> None:
    bundle, fake = _run(tmp_path, "driver-pod", compiled, cached=True)
    run = json.loads(bundle.read_text("run.json"))
    task_ids = [t["task_id"] for t in run["run_details"]["task_details"]]
    workflow = json.loads(bundle.read_text("workflow.json"))
    assert not set(task_ids) & set(workflow["status"]["nodes"])  # KFP task ids are not node ids
    tasks = {t["path"]: t for t in bundle.tasks}
    assert tasks["root/producer"]["state"] == "SUCCEEDED"  # the DAG node, not its Skipped pod child
    assert tasks["root/producer"]["outputs"]["parameters"] == {"Output": 7}  # CACHED execution's outputs
    assert not [p for p in tasks if p.endswith("/executor") or "executor(" in p]


def test_collect_fake_api_central_driver_error_lines_naming_the_run_id_are_kept_and_classified(tmp_path: Path,
                                                                              compiled: Path) -> None:
    bundle, _ = _run(tmp_path, "central-driver", compiled)
    files = [f for f in bundle.data["driver_logs"]["files"] if f.startswith("logs/driver/")]
    text = "".join(bundle.read_text(f) for f in files)
    assert "driver request failed" in text  # names the run only by its run id (ReplaceUID)
    assert "someone-else" not in text
    classes = log_classes(text, Scrubber.for_bundle(bundle.data))  # read with timestamps=True
    assert any(c.startswith("error: driver request failed") for c in classes), classes
