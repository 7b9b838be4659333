"""Reads a KFP run's executions, output parameters and output artifacts from ML Metadata over gRPC.

Where KFP puts them (kubeflow/pipelines backend/src/v2/metadata/client.go at 81fc181b1, unchanged in the
sidecar-plugin and central-driver branches):
- every execution of a run is associated with the context of type `system.PipelineRun` whose name is the
  run id (`GetPipeline` -> `getOrInsertContext(runID, pipelineRunContextType)`; the driver's `--run_id` /
  `run_id` is `{{workflow.uid}}`, which the API server replaces with the KFP run id:
  backend/src/apiserver/template/v2_template.go `executionSpec.ReplaceUID(options.RunID)`);
- output parameters are the custom property `outputs`, a Struct (`PublishExecution`), so numbers are
  doubles; `display_name`, `task_name`, `pod_name`, `parent_dag_id`, `iteration_index`,
  `cached_execution_id` are custom properties written by `CreateExecution`;
- output artifacts are linked by events of type OUTPUT whose path's first step key is the output name
  (`eventPath`, `getArtifactName`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from harness.boundary.mlmd import messages as m
from harness.boundary.redact import redact
from harness.errors import HarnessError

PIPELINE_RUN_CONTEXT_TYPE = "system.PipelineRun"
# client.go: defaultMaxGRPCMessageSize = 100 MiB; the server is started with the same send limit
# (metadata-grpc-deployment `--grpc_channel_arguments=...max_send_message_length=104857600`).
MAX_MESSAGE_BYTES = 100 * 1024 * 1024
_FIX = ("port-forward svc/metadata-grpc-service 8080 in namespace kubeflow and pass its local address; "
        "in TLS mode pass the CA of Secret kfp-api-tls-cert")


class MlmdError(HarnessError):
    """The MLMD gRPC service could not be reached, or its records are not what KFP writes."""

    exit_code = 1


@dataclass(frozen=True)
class MlmdArtifact:
    name: str  # the output name: the OUTPUT event's path key
    uri: str
    type: str  # MLMD artifact type name, e.g. "system.Artifact", "system.Model"
    custom: dict[str, Any]


@dataclass(frozen=True)
class MlmdExecution:
    id: int
    type: str  # "system.ContainerExecution", "system.DAGExecution", "system.ImporterExecution"
    state: str  # Execution.State name: NEW, RUNNING, COMPLETE, FAILED, CACHED, CANCELED (UNKNOWN if unset)
    task_name: str
    display_name: str
    parent_dag_id: int | None
    iteration_index: int | None
    pod_name: str
    cached_execution_id: str | None
    outputs: dict[str, Any]  # the `outputs` Struct as Python values, untyped (numbers are float)
    output_artifacts: dict[str, list[MlmdArtifact]]
    custom: dict[str, Any]  # every custom property as Python values


class MlmdReader:
    """A read-only client of MetadataStoreService (insecure, or TLS with a CA file as in KFP's TLS mode)."""

    def __init__(self, address: str, *, ca_file: str | None = None, timeout: float = 30.0) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise MlmdError(f"MLMD address {address!r} is not HOST:PORT", _FIX)
        self.address = address
        self.timeout = timeout
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if ca_file is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            # TLS mode: metadata-grpc-deployment's ssl_config has client_verify: false (server TLS only)
            # and kfp-api-tls-cert lists metadata-grpc-service names, localhost and 127.0.0.1, so a
            # port-forward to 127.0.0.1 verifies against the CA (manifests/kustomize/env/cert-manager/
            # platform-agnostic-standalone-tls/patches/metadata-grpc-deployment.yaml, base-tls-certs).
            try:
                ca = Path(ca_file).read_bytes()
            except OSError as exc:
                raise MlmdError(f"cannot read MLMD CA file {ca_file}: {exc.strerror}",
                                "pass the CA certificate (ca.crt of Secret kfp-api-tls-cert)") from None
            creds = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.secure_channel(address, creds, options=options)
        self._calls = {
            rpc: self._channel.unary_unary(m.method_path(rpc), request_serializer=_serialize,
                                           response_deserializer=resp.FromString)
            for rpc, (_req, resp) in m.METHODS.items()
        }

    def _call(self, rpc: str, request: Any) -> Any:
        try:
            return self._calls[rpc](request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            first = redact((details or "").strip().splitlines()[0] if (details or "").strip() else "no details")
            raise MlmdError(f"MLMD {rpc} at {self.address} failed: {code}: {first}", _FIX) from None

    def run_executions(self, run_id: str) -> list[MlmdExecution]:
        """Every execution of the run (ordered by id), with outputs and output artifacts; [] if none."""
        ctx = self._call("GetContextByTypeAndName", m.GetContextByTypeAndNameRequest(
            type_name=PIPELINE_RUN_CONTEXT_TYPE, context_name=run_id))
        # metadata_store.cc GetContextByTypeAndName: an unknown type or name is OK with no context set
        if not ctx.HasField("context"):
            return []
        executions = list(self._call("GetExecutionsByContext", m.GetExecutionsByContextRequest(
            context_id=ctx.context.id)).executions)
        if not executions:
            return []
        ids = [e.id for e in executions]
        events = self._call("GetEventsByExecutionIDs",
                            m.GetEventsByExecutionIDsRequest(execution_ids=ids)).events
        outputs = [e for e in events if e.type == m.Event.Type.Value("OUTPUT")]
        artifacts = self._artifacts(sorted({e.artifact_id for e in outputs}))
        by_execution: dict[int, dict[str, list[MlmdArtifact]]] = {}
        for event in outputs:
            # client.go getArtifactName: the name is the first step's key; KFP fails without one
            if not event.path.steps or event.path.steps[0].WhichOneof("value") != "key":
                raise MlmdError(f"MLMD OUTPUT event of execution {event.execution_id} has no path key",
                                "the record was not written by KFP's driver/launcher")
            name = event.path.steps[0].key
            art = artifacts.get(event.artifact_id)
            if art is None:
                raise MlmdError(f"MLMD artifact {event.artifact_id} of execution {event.execution_id} "
                                "is missing", "the MLMD database is inconsistent; re-run the pipeline")
            by_execution.setdefault(event.execution_id, {}).setdefault(name, []).append(
                MlmdArtifact(name=name, uri=art.uri, type=art.type, custom=_custom(art)))
        return [_execution(e, by_execution.get(e.id, {})) for e in sorted(executions, key=lambda e: e.id)]

    def _artifacts(self, ids: list[int]) -> dict[int, Any]:
        if not ids:
            return {}
        # metadata_store_service.proto: the response is not index-aligned, unknown ids are left out
        res = self._call("GetArtifactsByID", m.GetArtifactsByIDRequest(artifact_ids=ids))
        return {a.id: a for a in res.artifacts}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> MlmdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


def _custom(node: Any) -> dict[str, Any]:
    return {key: m.to_python(value) for key, value in sorted(node.custom_properties.items())}


def _execution(e: Any, artifacts: dict[str, list[MlmdArtifact]]) -> MlmdExecution:
    custom = _custom(e)
    outputs = custom.get("outputs")
    parent, index, cached = custom.get("parent_dag_id"), custom.get("iteration_index"), custom.get(
        "cached_execution_id")
    return MlmdExecution(
        id=e.id, type=e.type, state=m.Execution.State.Name(e.last_known_state),
        task_name=str(custom.get("task_name", "")), display_name=str(custom.get("display_name", "")),
        parent_dag_id=parent if isinstance(parent, int) else None,
        iteration_index=index if isinstance(index, int) else None,
        pod_name=str(custom.get("pod_name", "")),
        cached_execution_id=cached if isinstance(cached, str) and cached else None,
        outputs=outputs if isinstance(outputs, dict) else {},
        output_artifacts=artifacts, custom=custom)
