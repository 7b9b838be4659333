"""Runs in the side venv (.venv-mlmd) with the official `ml-metadata` package, never in the main venv.

tests/test_mlmd_wire.py drives it as a subprocess:
  write DB  -> fills a real in-process SQLite MetadataStore as KFP's driver and launcher do, and prints the
               official responses (bytes and JSON) to the four requests harness/mlmd sends;
  parse DB  -> reads {rpc: base64 request bytes} on stdin (written by harness/mlmd's own definitions),
               parses them with the official classes and answers them from the store;
  serve DB  -> serves the store over gRPC with the official servicer registration, prints "PORT n",
               and stops when stdin closes.
The KFP shapes follow kubeflow/pipelines backend/src/v2/metadata/client.go at 81fc181b1.
"""

from __future__ import annotations

import base64
import json
import sys
from concurrent import futures

import grpc
from google.protobuf import json_format
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb
from ml_metadata.proto import metadata_store_service_pb2 as svc
from ml_metadata.proto import metadata_store_service_pb2_grpc as svc_grpc

RPCS = ("GetContextByTypeAndName", "GetExecutionsByContext", "GetEventsByExecutionIDs", "GetArtifactsByID")
RUN_ID = "5f0e8bd4-3a52-4f0b-9d6c-7a1e2b3c4d5e"


def store(path: str) -> metadata_store.MetadataStore:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _string(value: str) -> pb.Value:
    return pb.Value(string_value=value)


def _int(value: int) -> pb.Value:
    return pb.Value(int_value=value)


def _struct(data: dict) -> pb.Value:
    value = pb.Value()
    value.struct_value.SetInParent()  # an empty Struct is still a set oneof, as KFP's empty outputs are
    value.struct_value.update(data)
    return value


def write(db: metadata_store.MetadataStore) -> dict:
    # GetPipeline: system.Pipeline and system.PipelineRun contexts (run context named by the run id)
    pipeline_type = db.put_context_type(pb.ContextType(name="system.Pipeline"))
    run_type = db.put_context_type(pb.ContextType(name="system.PipelineRun"))
    pipeline_ctx_id, run_ctx_id = db.put_contexts([
        pb.Context(type_id=pipeline_type, name="hello-pipeline"),
        pb.Context(type_id=run_type, name=RUN_ID, custom_properties={
            "namespace": _string("kubeflow"), "resource_name": _string("run-resource"),
            "pipeline_root": _string(f"minio://mlpipeline/v2/artifacts/hello-pipeline/{RUN_ID}")}),
    ])
    contexts = db.get_contexts_by_id([pipeline_ctx_id, run_ctx_id])
    dag_type = db.put_execution_type(pb.ExecutionType(name="system.DAGExecution"))
    container_type = db.put_execution_type(pb.ExecutionType(name="system.ContainerExecution"))
    model_type = db.put_artifact_type(pb.ArtifactType(name="system.Model"))
    metrics_type = db.put_artifact_type(pb.ArtifactType(name="system.Metrics"))

    # CreateExecution of the root DAG
    root_id, _, _ = db.put_execution(pb.Execution(
        type_id=dag_type, last_known_state=pb.Execution.RUNNING, custom_properties={
            "display_name": _string(""), "task_name": _string(""),
            "inputs": _struct({"message": "hi"})}), [], contexts)

    # CreateExecution of a container task, then the launcher's PublishExecution with outputs and an artifact
    producer = pb.Execution(type_id=container_type, last_known_state=pb.Execution.RUNNING, custom_properties={
        "display_name": _string("producer"), "task_name": _string("producer"),
        "parent_dag_id": _int(root_id), "pod_name": _string("hello-pipeline-abcde-system-container-impl-1"),
        "pod_uid": _string("0d6a6f0e-1111-2222-3333-444455556666"), "namespace": _string("kubeflow"),
        "image": _string("python:3.11"), "cache_fingerprint": _string("f00d")})
    producer_id, _, _ = db.put_execution(producer, [], contexts)
    producer = db.get_executions_by_id([producer_id])[0]
    producer.last_known_state = pb.Execution.COMPLETE
    producer.custom_properties["outputs"].CopyFrom(
        _struct({"n": 7, "s": "seven", "nested": {"list": [1, "b"], "flag": True}}))
    model = pb.Artifact(type_id=model_type, uri=f"minio://mlpipeline/v2/artifacts/hello-pipeline/{RUN_ID}/producer/model",
                        state=pb.Artifact.LIVE, custom_properties={
                            "display_name": _string("model"), "accuracy": pb.Value(double_value=0.5)})
    out_event = pb.Event(type=pb.Event.OUTPUT)
    out_event.path.steps.add(key="model")
    _, (model_id,), _ = db.put_execution(producer, [(model, out_event)], contexts)

    # a cached task inside a ParallelFor iteration: reads the model (INPUT) and writes metrics (OUTPUT)
    consumer = pb.Execution(type_id=container_type, last_known_state=pb.Execution.CACHED, custom_properties={
        "display_name": _string("consumer"), "task_name": _string("consumer"),
        "parent_dag_id": _int(root_id), "iteration_index": _int(1), "pod_name": _string(""),
        "cached_execution_id": _string(str(producer_id)), "outputs": _struct({})})
    in_event = pb.Event(type=pb.Event.INPUT, artifact_id=model_id)
    in_event.path.steps.add(key="in_model")
    metrics = pb.Artifact(type_id=metrics_type, uri="minio://mlpipeline/metrics", state=pb.Artifact.LIVE,
                          custom_properties={"display_name": _string("metrics")})  # RecordArtifact default
    metrics_event = pb.Event(type=pb.Event.OUTPUT)
    metrics_event.path.steps.add(key="metrics")
    consumer_id, (_, metrics_id), _ = db.put_execution(
        consumer, [(None, in_event), (metrics, metrics_event)], contexts)  # KFP: event only
    return {"run_id": RUN_ID, "context_id": run_ctx_id, "root_id": root_id, "producer_id": producer_id,
            "consumer_id": consumer_id, "model_id": model_id, "metrics_id": metrics_id}


def answer(db: metadata_store.MetadataStore, rpc: str, request) -> object:
    response = getattr(svc, f"{rpc}Response")()
    db._call(rpc, request, response)  # the real store's C++ method, fed the request's bytes
    return response


def _dump(message) -> dict:
    return {"bytes": base64.b64encode(message.SerializeToString()).decode(),
            "dict": json_format.MessageToDict(message, preserving_proto_field_name=True)}


def main() -> int:
    phase, path = sys.argv[1], sys.argv[2]
    db = store(path)
    if phase == "write":
        ids = write(db)
        requests = {
            "GetContextByTypeAndName": svc.GetContextByTypeAndNameRequest(
                type_name="system.PipelineRun", context_name=RUN_ID),
            "GetExecutionsByContext": svc.GetExecutionsByContextRequest(context_id=ids["context_id"]),
            "GetEventsByExecutionIDs": svc.GetEventsByExecutionIDsRequest(
                execution_ids=[ids["root_id"], ids["producer_id"], ids["consumer_id"]]),
            "GetArtifactsByID": svc.GetArtifactsByIDRequest(artifact_ids=[ids["model_id"], ids["metrics_id"]]),
        }
        json.dump({"ids": ids, "responses": {rpc: _dump(answer(db, rpc, req)) for rpc, req in requests.items()}},
                  sys.stdout)
    elif phase == "parse":
        sent = json.load(sys.stdin)
        out = {}
        for rpc, b64 in sent.items():
            request = getattr(svc, f"{rpc}Request").FromString(base64.b64decode(b64))
            out[rpc] = {"request": json_format.MessageToDict(request, preserving_proto_field_name=True),
                        "response": _dump(answer(db, rpc, request))}
        json.dump(out, sys.stdout)
    elif phase == "serve":
        class Servicer(svc_grpc.MetadataStoreServiceServicer):
            pass

        for rpc in RPCS:
            setattr(Servicer, rpc, lambda self, request, context, rpc=rpc: answer(db, rpc, request))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        svc_grpc.add_MetadataStoreServiceServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(f"PORT {port}", flush=True)
        sys.stdin.read()  # serve until the test closes our stdin
        server.stop(grace=None)
    else:
        print(f"unknown phase {phase}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
