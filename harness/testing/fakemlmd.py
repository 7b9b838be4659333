"""A fake ML Metadata server: real gRPC on 127.0.0.1, an in-memory store, answers like metadata_store_server.

It serves the MetadataStoreService methods harness/mlmd reads (GetContextByTypeAndName,
GetExecutionsByContext, GetEventsByExecutionIDs, GetArtifactsByID) with the messages of
harness/boundary/mlmd/messages.py, and is filled the way KFP's backend/src/v2/metadata/client.go (81fc181b1) fills
the real store. Every simulated behaviour is listed in docs/fidelity.md with its upstream source; other
methods answer UNIMPLEMENTED (grpc's answer for an unregistered method).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import unknown_fields

from harness.boundary.mlmd import messages as m

PIPELINE_CONTEXT_TYPE = "system.Pipeline"
PIPELINE_RUN_CONTEXT_TYPE = "system.PipelineRun"


@dataclass
class _Tables:
    # MLMD keeps Type, Context, Execution and Artifact in separate tables with their own AUTO_INCREMENT id
    # (ml_metadata/util/metadata_source_query_config.cc v1.14.0). One store serves every run of the
    # cluster, so a run's ids start wherever earlier runs left them: random starts make code that assumes
    # small ids, or one id space for executions and artifacts, fail here too (never 1: a store in use).
    next_id: dict[str, int] = field(default_factory=lambda: {
        t: random.randint(2, 5000) for t in ("type", "context", "execution", "artifact")})
    types: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, name) -> id
    contexts: dict[int, Any] = field(default_factory=dict)
    executions: dict[int, Any] = field(default_factory=dict)
    artifacts: dict[int, Any] = field(default_factory=dict)
    associations: list[tuple[int, int]] = field(default_factory=list)  # (context_id, execution_id)
    events: list[Any] = field(default_factory=list)

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] += 1
        return value

    def type_id(self, kind: str, name: str) -> int:
        if (kind, name) not in self.types:
            self.types[(kind, name)] = self.new_id("type")
        return self.types[(kind, name)]


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakeMlmd:
    """Context manager serving the MLMD gRPC API on 127.0.0.1:<random port> (TLS with `tls=(key, cert)`)."""

    def __init__(self, *, tls: tuple[bytes, bytes] | None = None) -> None:
        self._db = _Tables()
        self._lock = threading.Lock()
        self._tls = tls
        self._server: grpc.Server | None = None
        self.address = ""
        self.requests: list[tuple[str, Any]] = []  # (rpc, request) in arrival order

    # --- the server -------------------------------------------------------------------------------
    def __enter__(self) -> FakeMlmd:
        handlers = {
            rpc: grpc.unary_unary_rpc_method_handler(
                self._handler(rpc), request_deserializer=req.FromString,
                response_serializer=lambda msg: msg.SerializeToString())
            for rpc, (req, _resp) in m.METHODS.items()
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(m.SERVICE, handlers),))
        if self._tls:
            # metadata-grpc-deployment in TLS mode: ssl_config {server_key, server_cert, custom_ca,
            # client_verify: false}: server-side TLS, no client certificate asked
            creds = grpc.ssl_server_credentials([self._tls], require_client_auth=False)
            port = server.add_secure_port("127.0.0.1:0", creds)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server, self.address = server, f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def _handler(self, rpc: str) -> Any:
        answer = getattr(self, f"_rpc_{rpc}")

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.requests.append((rpc, request))
                # a field this fake does not model (list options, transaction options...) would be
                # answered wrongly: refuse it rather than answer kinder than the real server
                unknown = [f.field_number for f in unknown_fields.UnknownFieldSet(request)]
                if unknown:
                    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                  f"fakemlmd does not simulate {rpc} field(s) {unknown}")
                return answer(request)

        return handle

    # metadata_store.cc v1.14.0 GetContextByTypeAndName: an unknown type or an unknown name is OK with
    # an empty response (no context), not NOT_FOUND; KFP's client.go relies on it ("Bug in MLMD ...").
    def _rpc_GetContextByTypeAndName(self, req: Any) -> Any:
        res = m.GetContextByTypeAndNameResponse()
        type_id = self._db.types.get(("context", req.type_name))
        for ctx in self._db.contexts.values():
            if ctx.type_id == type_id and ctx.name == req.context_name:
                res.context.CopyFrom(ctx)
        return res

    # rdbms_metadata_access_object.cc FindExecutionsByContext: executions associated with the context;
    # none (or an unknown context id) is OK and empty; without list options every one, no page token.
    def _rpc_GetExecutionsByContext(self, req: Any) -> Any:
        ids = sorted(e for c, e in self._db.associations if c == req.context_id)
        return m.GetExecutionsByContextResponse(executions=[self._db.executions[i] for i in ids])

    # metadata_store.cc GetEventsByExecutionIDs: every event (any type) of those executions; NotFound
    # becomes OK and empty.
    def _rpc_GetEventsByExecutionIDs(self, req: Any) -> Any:
        wanted = set(req.execution_ids)
        return m.GetEventsByExecutionIDsResponse(
            events=[e for e in self._db.events if e.execution_id in wanted])

    # metadata_store_service.proto GetArtifactsByIDResponse: "not index-aligned: if an id is not found,
    # it is not returned".
    def _rpc_GetArtifactsByID(self, req: Any) -> Any:
        return m.GetArtifactsByIDResponse(
            artifacts=[self._db.artifacts[i] for i in dict.fromkeys(req.artifact_ids) if i in self._db.artifacts])

    # --- filling the store as KFP does ------------------------------------------------------------
    def add_run(self, run_id: str, *, pipeline_name: str = "pipeline", namespace: str = "kubeflow",
                pipeline_root: str = "minio://mlpipeline/v2/artifacts") -> int:
        """The root driver's GetPipeline: a system.Pipeline context and a system.PipelineRun context
        named run_id with namespace, resource_name ("run-resource", root_dag.go) and pipeline_root
        (store_session_info, the bucket's session JSON, is not simulated: nothing here reads it)."""
        with self._lock:
            if self._context(PIPELINE_RUN_CONTEXT_TYPE, run_id) is not None:
                raise ValueError(f"run context {run_id} exists")  # PutContexts: AlreadyExists
            if self._context(PIPELINE_CONTEXT_TYPE, pipeline_name) is None:
                self._new_context(PIPELINE_CONTEXT_TYPE, pipeline_name, {})
            root = f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}"  # client.go GenerateOutputURI
            return self._new_context(PIPELINE_RUN_CONTEXT_TYPE, run_id, {
                "namespace": namespace, "resource_name": "run-resource", "pipeline_root": root})

    def add_execution(self, run_id: str, *, type: str, state: str, custom: dict[str, Any],
                      pipeline_name: str = "pipeline") -> int:
        """CreateExecution/PublishExecution: an execution in both the pipeline and the run context.
        `custom` holds KFP's custom properties as Python values (a dict becomes a Struct, whose numbers
        are doubles, as `outputs` is)."""
        with self._lock:
            run_ctx = self._context(PIPELINE_RUN_CONTEXT_TYPE, run_id)
            if run_ctx is None:
                raise ValueError(f"no run context {run_id}: call add_run first")
            execution = m.Execution(
                id=self._db.new_id("execution"), type_id=self._db.type_id("execution", type), type=type,
                last_known_state=m.Execution.State.Value(state),
                create_time_since_epoch=_now_ms(), last_update_time_since_epoch=_now_ms())
            for key, value in custom.items():
                m.fill_value(execution.custom_properties[key], value)
            self._db.executions[execution.id] = execution
            self._db.associations.append((run_ctx.id, execution.id))
            pipeline_ctx = self._context(PIPELINE_CONTEXT_TYPE, pipeline_name)
            if pipeline_ctx is not None:
                self._db.associations.append((pipeline_ctx.id, execution.id))
            return execution.id

    def update_execution(self, execution_id: int, *, state: str | None = None,
                         custom: dict[str, Any] | None = None) -> None:
        """PublishExecution: a new state and more custom properties (e.g. `outputs`) on an execution."""
        with self._lock:
            execution = self._db.executions[execution_id]
            if state is not None:
                execution.last_known_state = m.Execution.State.Value(state)
            for key, value in (custom or {}).items():
                m.fill_value(execution.custom_properties[key], value)
            execution.last_update_time_since_epoch = _now_ms()

    def add_output_artifact(self, execution_id: int, name: str, *, uri: str, type: str = "system.Artifact",
                            custom: dict[str, Any] | None = None) -> int:
        """The launcher's RecordArtifact (state LIVE, `display_name` defaults to the output name) and
        PublishExecution's OUTPUT event whose path is {step {key: name}}."""
        with self._lock:
            if execution_id not in self._db.executions:
                raise ValueError(f"no execution {execution_id}")
            props = {"display_name": name, **(custom or {})}
            artifact = m.Artifact(
                id=self._db.new_id("artifact"), type_id=self._db.type_id("artifact", type), type=type, uri=uri,
                state=m.Artifact.State.Value("LIVE"),
                create_time_since_epoch=_now_ms(), last_update_time_since_epoch=_now_ms())
            for key, value in props.items():
                m.fill_value(artifact.custom_properties[key], value)
            self._db.artifacts[artifact.id] = artifact
            self._event(execution_id, artifact.id, name, "OUTPUT")
            return artifact.id

    def add_input_artifact(self, execution_id: int, name: str, artifact_id: int) -> None:
        """CreateExecution's INPUT event: a consumer's link to an artifact another task produced."""
        with self._lock:
            if artifact_id not in self._db.artifacts:
                raise ValueError(f"no artifact {artifact_id}")
            self._event(execution_id, artifact_id, name, "INPUT")

    # --- internals ---------------------------------------------------------------------------------
    def _context(self, type_name: str, name: str) -> Any | None:
        type_id = self._db.types.get(("context", type_name))
        return next((c for c in self._db.contexts.values() if c.type_id == type_id and c.name == name), None)

    def _new_context(self, type_name: str, name: str, custom: dict[str, Any]) -> int:
        ctx = m.Context(id=self._db.new_id("context"), type_id=self._db.type_id("context", type_name),
                        type=type_name, name=name, create_time_since_epoch=_now_ms(),
                        last_update_time_since_epoch=_now_ms())
        for key, value in custom.items():
            m.fill_value(ctx.custom_properties[key], value)
        self._db.contexts[ctx.id] = ctx
        return ctx.id

    def _event(self, execution_id: int, artifact_id: int, name: str, kind: str) -> None:
        event = m.Event(artifact_id=artifact_id, execution_id=execution_id, type=m.Event.Type.Value(kind),
                        milliseconds_since_epoch=_now_ms())
        event.path.steps.add(key=name)
        self._db.events.append(event)
