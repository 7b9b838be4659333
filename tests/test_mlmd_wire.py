"""Wire compatibility of harness/mlmd with the official `ml-metadata` package (its real SQLite store).

The official package cannot live in the main venv (protobuf pins clash with kfp 2.17), so it runs in the
side venv .venv-mlmd (made by `bash scripts/bootstrap.sh --test-tools`) through tests/mlmd_official_side.py.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from harness.boundary.mlmd import MlmdReader
from harness.boundary.mlmd import messages as m
from harness.testing.fakemlmd import FakeMlmd

ROOT = Path(__file__).resolve().parents[1]
SIDE_PYTHON = ROOT / ".venv-mlmd" / "bin" / "python"
SIDE_SCRIPT = Path(__file__).with_name("mlmd_official_side.py")


def _side(phase: str, db: Path, stdin: str = "") -> dict[str, Any]:
    done = subprocess.run([str(SIDE_PYTHON), str(SIDE_SCRIPT), phase, str(db)], input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"side venv `{phase}` failed: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not SIDE_PYTHON.exists():
        pytest.fail(f"{SIDE_PYTHON.parent.parent} (the official ml-metadata package) is missing: "
                    "create it with `bash scripts/bootstrap.sh --test-tools`", pytrace=False)
    db = tmp_path_factory.mktemp("mlmd") / "store.sqlite"
    return {"db": db, **_side("write", db)}


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _serve_reader_run(official: dict, run_ids: list[str]) -> list[list[Any]]:
    server = subprocess.Popen([str(SIDE_PYTHON), str(SIDE_SCRIPT), "serve", str(official["db"])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("PORT "), f"side server did not start: {line!r}"
        with MlmdReader(f"127.0.0.1:{line.split()[1]}", timeout=20) as reader:
            return [reader.run_executions(run_id) for run_id in run_ids]
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)


@pytest.mark.parametrize("rpc", list(m.METHODS))
def test_mlmd_wire_official_store_responses_parse_with_harness_definitions(official: dict, rpc: str) -> None:
    sent = official["responses"][rpc]
    ours = m.METHODS[rpc][1].FromString(base64.b64decode(sent["bytes"]))
    # every field the real store sends for KFP's records is declared (an undeclared one would be
    # missing from our JSON form), with the same number, type and value
    assert _dict(ours) == sent["dict"]


def test_mlmd_wire_official_struct_outputs_read_as_kfp_wrote_them(official: dict) -> None:
    raw = base64.b64decode(official["responses"]["GetExecutionsByContext"]["bytes"])
    executions = {e.id: e for e in m.GetExecutionsByContextResponse.FromString(raw).executions}
    producer = executions[official["ids"]["producer_id"]]
    assert m.to_python(producer.custom_properties["outputs"]) == {
        "n": 7.0, "s": "seven", "nested": {"list": [1.0, "b"], "flag": True}}
    assert m.to_python(producer.custom_properties["parent_dag_id"]) == official["ids"]["root_id"]
    assert m.Execution.State.Name(producer.last_known_state) == "COMPLETE"


def test_mlmd_wire_harness_requests_parse_with_official_classes(official: dict) -> None:
    ids = official["ids"]
    ours = {
        "GetContextByTypeAndName": m.GetContextByTypeAndNameRequest(
            type_name="system.PipelineRun", context_name=ids["run_id"]),
        "GetExecutionsByContext": m.GetExecutionsByContextRequest(context_id=ids["context_id"]),
        "GetEventsByExecutionIDs": m.GetEventsByExecutionIDsRequest(
            execution_ids=[ids["root_id"], ids["producer_id"], ids["consumer_id"]]),
        "GetArtifactsByID": m.GetArtifactsByIDRequest(artifact_ids=[ids["model_id"], ids["metrics_id"]]),
    }
    parsed = _side("parse", official["db"], json.dumps(
        {rpc: base64.b64encode(msg.SerializeToString()).decode() for rpc, msg in ours.items()}))
    for rpc, msg in ours.items():
        assert parsed[rpc]["request"] == _dict(msg), rpc
        # the real store answers our request as it answered the official one
        assert parsed[rpc]["response"]["dict"] == official["responses"][rpc]["dict"], rpc
    assert parsed["GetContextByTypeAndName"]["request"] == {
        "type_name": "system.PipelineRun", "context_name": ids["run_id"]}


def test_mlmd_wire_reader_reads_official_store_over_grpc(official: dict) -> None:
    ids = official["ids"]
    executions, unknown = _serve_reader_run(official, [ids["run_id"], "no-such-run"])
    assert unknown == []
    by_task = {e.task_name: e for e in executions}
    assert [e.id for e in executions] == [ids["root_id"], ids["producer_id"], ids["consumer_id"]]
    root, producer, consumer = by_task[""], by_task["producer"], by_task["consumer"]
    assert (root.type, root.state, root.parent_dag_id) == ("system.DAGExecution", "RUNNING", None)
    assert producer.type == "system.ContainerExecution" and producer.state == "COMPLETE"
    assert producer.outputs == {"n": 7.0, "s": "seven", "nested": {"list": [1.0, "b"], "flag": True}}
    assert producer.parent_dag_id == ids["root_id"] and producer.iteration_index is None
    assert producer.pod_name == "hello-pipeline-abcde-system-container-impl-1"
    [model] = producer.output_artifacts["model"]
    assert (model.type, model.custom) == ("system.Model", {"accuracy": 0.5, "display_name": "model"})
    assert model.uri.endswith(f"/{ids['run_id']}/producer/model")
    # the consumer's INPUT event to the model is not one of its outputs
    assert set(consumer.output_artifacts) == {"metrics"}
    assert (consumer.state, consumer.iteration_index, consumer.cached_execution_id) == (
        "CACHED", 1, str(ids["producer_id"]))
    assert consumer.outputs == {}




def _normalised(executions: list[Any]) -> list[dict[str, Any]]:
    """Reader results with store-assigned ids replaced by their rank, to compare two stores."""
    rank = {e.id: i for i, e in enumerate(executions)}
    out = []
    for e in executions:
        row = dict(vars(e))
        row["id"] = rank[e.id]
        row["parent_dag_id"] = rank.get(e.parent_dag_id) if e.parent_dag_id is not None else None
        row["cached_execution_id"] = rank[int(e.cached_execution_id)] if e.cached_execution_id else None
        row["custom"] = {k: v for k, v in e.custom.items() if k not in ("parent_dag_id", "cached_execution_id")}
        out.append(row)
    return out


def test_mlmd_wire_fake_answers_like_the_official_store(official: dict) -> None:
    """FakeMlmd filled as tests/mlmd_official_side.py fills the real store gives the reader the same run."""
    run_id = official["ids"]["run_id"]
    with FakeMlmd() as fake:
        fake.add_run(run_id, pipeline_name="hello-pipeline")
        root = fake.add_execution(run_id, type="system.DAGExecution", state="RUNNING",
                                  custom={"display_name": "", "task_name": "", "inputs": {"message": "hi"}})
        producer = fake.add_execution(run_id, type="system.ContainerExecution", state="RUNNING", custom={
            "display_name": "producer", "task_name": "producer", "parent_dag_id": root,
            "pod_name": "hello-pipeline-abcde-system-container-impl-1",
            "pod_uid": "0d6a6f0e-1111-2222-3333-444455556666", "namespace": "kubeflow", "image": "python:3.11",
            "cache_fingerprint": "f00d"})
        fake.update_execution(producer, state="COMPLETE", custom={
            "outputs": {"n": 7, "s": "seven", "nested": {"list": [1, "b"], "flag": True}}})
        model = fake.add_output_artifact(
            producer, "model", type="system.Model", custom={"accuracy": 0.5},
            uri=f"minio://mlpipeline/v2/artifacts/hello-pipeline/{run_id}/producer/model")
        consumer = fake.add_execution(run_id, type="system.ContainerExecution", state="CACHED", custom={
            "display_name": "consumer", "task_name": "consumer", "parent_dag_id": root, "iteration_index": 1,
            "pod_name": "", "cached_execution_id": str(producer), "outputs": {}})
        fake.add_input_artifact(consumer, "in_model", model)
        fake.add_output_artifact(consumer, "metrics", uri="minio://mlpipeline/metrics", type="system.Metrics")
        with MlmdReader(fake.address, timeout=10) as reader:
            from_fake = [reader.run_executions(r) for r in (run_id, "no-such-run")]
    from_official = _serve_reader_run(official, [run_id, "no-such-run"])
    assert _normalised(from_fake[0]) == _normalised(from_official[0])
    assert from_fake[1] == from_official[1] == []


def test_mlmd_wire_unknown_ids_are_empty_answers_in_official_store_and_fake(tmp_path: Path) -> None:
    """An unknown context type/name, context id, execution id or artifact id is an OK, empty answer
    (metadata_store.cc v1.14.0), not NOT_FOUND, in the real store and in FakeMlmd."""
    if not SIDE_PYTHON.exists():
        pytest.fail(f"{SIDE_PYTHON.parent.parent} is missing: create it with "
                    "`bash scripts/bootstrap.sh --test-tools`", pytrace=False)
    asks = {
        "GetContextByTypeAndName": m.GetContextByTypeAndNameRequest(type_name="system.PipelineRun",
                                                                    context_name="nope"),
        "GetExecutionsByContext": m.GetExecutionsByContextRequest(context_id=424242),
        "GetEventsByExecutionIDs": m.GetEventsByExecutionIDsRequest(execution_ids=[424242]),
        "GetArtifactsByID": m.GetArtifactsByIDRequest(artifact_ids=[424242]),
    }
    official = _side("parse", tmp_path / "empty.sqlite", json.dumps(
        {rpc: base64.b64encode(msg.SerializeToString()).decode() for rpc, msg in asks.items()}))
    assert {rpc: official[rpc]["response"]["dict"] for rpc in asks} == dict.fromkeys(asks, {})
    with FakeMlmd() as fake, grpc.insecure_channel(fake.address) as channel:
        for rpc, msg in asks.items():
            call = channel.unary_unary(m.method_path(rpc), request_serializer=lambda x: x.SerializeToString(),
                                       response_deserializer=m.METHODS[rpc][1].FromString)
            assert _dict(call(msg, timeout=10)) == {}, rpc
