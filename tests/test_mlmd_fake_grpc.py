"""harness/boundary/mlmd's reader against FakeMlmd (harness/testing/fakemlmd.py), a real gRPC server on 127.0.0.1.

The fake is filled the way KFP's backend/src/v2/metadata/client.go (81fc181b1) fills the real store; the
fake's answers themselves are checked against the official store in tests/test_mlmd_wire.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest

from harness.boundary.mlmd import MlmdError, MlmdReader
from harness.boundary.mlmd import messages as m
from harness.errors import HarnessError
from harness.testing.fakemlmd import FakeMlmd
from tests.certs import kfp_api_tls_cert

RUN = "8d2c9b0e-6b1a-4c55-9a4e-1f2e3d4c5b6a"


def _kfp_run(fake: FakeMlmd, run_id: str = RUN) -> dict[str, int]:
    """A run as the drivers and launchers record it: root DAG, a producer with outputs and a model, a
    ParallelFor DAG with two iterations, and a cache hit that reads the model."""
    fake.add_run(run_id, pipeline_name="hello-pipeline")
    root = fake.add_execution(run_id, type="system.DAGExecution", state="RUNNING",
                              custom={"display_name": "", "task_name": "", "inputs": {"n": 3}})
    producer = fake.add_execution(run_id, type="system.ContainerExecution", state="RUNNING", custom={
        "display_name": "producer", "task_name": "producer", "parent_dag_id": root,
        "pod_name": "hello-pipeline-x7k2p-system-container-impl-2181", "pod_uid": "uid-1",
        "namespace": "kubeflow", "image": "python:3.11", "driver_logs_uri": "minio://mlpipeline/driver/1"})
    fake.update_execution(producer, state="COMPLETE",
                          custom={"outputs": {"count": 7, "msg": "hi", "cfg": {"a": [1, "x"]}}})
    model = fake.add_output_artifact(producer, "model", uri=f"minio://mlpipeline/v2/artifacts/{run_id}/model",
                                     type="system.Model", custom={"framework": "none"})
    loop = fake.add_execution(run_id, type="system.DAGExecution", state="COMPLETE", custom={
        "display_name": "for-loop-2", "task_name": "for-loop-2", "parent_dag_id": root, "iteration_count": 2})
    iters = [fake.add_execution(run_id, type="system.DAGExecution", state="COMPLETE", custom={
        "display_name": "for-loop-2", "task_name": "for-loop-2", "parent_dag_id": loop, "iteration_index": i})
        for i in range(2)]
    cached = fake.add_execution(run_id, type="system.ContainerExecution", state="CACHED", custom={
        "display_name": "consumer", "task_name": "consumer", "parent_dag_id": iters[1], "pod_name": "",
        "cached_execution_id": str(producer), "outputs": {}})
    fake.add_input_artifact(cached, "in_model", model)
    return {"root": root, "producer": producer, "model": model, "loop": loop, "cached": cached,
            "iter0": iters[0], "iter1": iters[1]}


def test_mlmd_fake_grpc_reader_returns_kfp_shaped_executions() -> None:
    with FakeMlmd() as fake:
        ids = _kfp_run(fake)
        _kfp_run(fake, "another-run")  # the store is shared by every run of the cluster
        with MlmdReader(fake.address, timeout=10) as reader:
            executions = reader.run_executions(RUN)
    assert [e.id for e in executions] == sorted(v for k, v in ids.items() if k != "model")
    by_id = {e.id: e for e in executions}
    producer = by_id[ids["producer"]]
    assert (producer.type, producer.state, producer.task_name, producer.parent_dag_id) == (
        "system.ContainerExecution", "COMPLETE", "producer", ids["root"])
    # Struct outputs: numbers come back as doubles; typing them is the caller's job
    assert producer.outputs == {"count": 7.0, "msg": "hi", "cfg": {"a": [1.0, "x"]}}
    assert producer.pod_name == "hello-pipeline-x7k2p-system-container-impl-2181"
    assert producer.custom["driver_logs_uri"] == "minio://mlpipeline/driver/1"  # SC/CD branches add it
    [model] = producer.output_artifacts["model"]
    assert (model.name, model.type, model.uri) == ("model", "system.Model", f"minio://mlpipeline/v2/artifacts/{RUN}/model")
    assert model.custom == {"display_name": "model", "framework": "none"}
    assert [by_id[ids[k]].iteration_index for k in ("iter0", "iter1", "loop")] == [0, 1, None]
    cached = by_id[ids["cached"]]
    assert (cached.state, cached.cached_execution_id, cached.parent_dag_id) == (
        "CACHED", str(ids["producer"]), ids["iter1"])
    assert cached.output_artifacts == {} and cached.outputs == {}  # its INPUT event is not an output
    root = by_id[ids["root"]]
    assert (root.parent_dag_id, root.cached_execution_id, root.custom["inputs"]) == (None, None, {"n": 3.0})


def test_mlmd_fake_grpc_unknown_run_is_empty_like_the_real_server() -> None:
    with FakeMlmd() as fake:
        with MlmdReader(fake.address, timeout=10) as reader:
            assert reader.run_executions(RUN) == []  # not even the context type exists yet
            fake.add_run(RUN)
            assert reader.run_executions("other") == []
            assert reader.run_executions(RUN) == []  # a context with no execution yet
        assert [rpc for rpc, _ in fake.requests] == [
            "GetContextByTypeAndName", "GetContextByTypeAndName", "GetContextByTypeAndName",
            "GetExecutionsByContext"]


def test_mlmd_fake_grpc_ids_are_assigned_by_the_store_per_table() -> None:
    with FakeMlmd() as fake:
        ids = _kfp_run(fake)
        next_ids = dict(fake._db.next_id)
    # separate AUTO_INCREMENT sequences that do not start at 1 (earlier runs used the same store)
    execution_ids = sorted(v for k, v in ids.items() if k != "model")
    assert execution_ids == list(range(execution_ids[0], execution_ids[0] + len(execution_ids)))
    assert execution_ids[0] > 1 and ids["model"] > 1
    assert next_ids["execution"] == execution_ids[-1] + 1 and next_ids["artifact"] == ids["model"] + 1
    with FakeMlmd() as other:
        other_ids = _kfp_run(other)
    assert ids != other_ids


def test_mlmd_fake_grpc_refuses_what_it_does_not_simulate() -> None:
    with FakeMlmd() as fake, grpc.insecure_channel(fake.address) as channel:
        fake.add_run(RUN)
        # GetExecutionsByContextRequest.options = 2 (ListOperationOptions {max_result_size = 1}): paging
        raw = m.GetExecutionsByContextRequest(context_id=1).SerializeToString() + b"\x12\x02\x08\x05"
        call = channel.unary_unary(m.method_path("GetExecutionsByContext"))
        with pytest.raises(grpc.RpcError) as err:
            call(raw, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(m.method_path("PutExecution"))(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlmd_unreachable_address_gives_one_clear_line() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    with MlmdReader(address, timeout=5) as reader, pytest.raises(MlmdError) as err:
        reader.run_executions(RUN)
    line = str(err.value)
    assert isinstance(err.value, HarnessError) and "\n" not in line
    assert address in line and "UNAVAILABLE" in line and "port-forward svc/metadata-grpc-service" in line


def test_mlmd_address_without_port_gives_one_clear_line() -> None:
    with pytest.raises(MlmdError, match=r"not HOST:PORT") as err:
        MlmdReader("metadata-grpc-service")
    assert "\n" not in str(err.value)


def _kfp_api_tls_cert(tmp_path: Path) -> tuple[bytes, bytes, Path]:
    key_pem, pem = kfp_api_tls_cert("metadata-grpc-service")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(pem)
    return key_pem, pem, ca_file


def test_mlmd_fake_grpc_tls_needs_the_ca(tmp_path: Path) -> None:
    key_pem, cert_pem, ca_file = _kfp_api_tls_cert(tmp_path)
    with FakeMlmd(tls=(key_pem, cert_pem)) as fake:
        ids = _kfp_run(fake)
        with MlmdReader(fake.address, ca_file=str(ca_file), timeout=10) as reader:
            assert ids["producer"] in {e.id for e in reader.run_executions(RUN)}
        with MlmdReader(fake.address, timeout=5) as plain, pytest.raises(MlmdError) as err:
            plain.run_executions(RUN)  # a plaintext client cannot talk to the TLS server
        assert "\n" not in str(err.value) and "CA of Secret kfp-api-tls-cert" in str(err.value)
    with pytest.raises(MlmdError, match="cannot read MLMD CA file"):
        MlmdReader("127.0.0.1:1", ca_file=str(tmp_path / "missing.crt"))
