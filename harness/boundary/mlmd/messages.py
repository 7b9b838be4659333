"""The subset of ML Metadata's protobuf messages that KFP's MLMD records need, built at run time.

Why not the `ml-metadata` package: it pins protobuf<5 while kfp 2.17 needs protobuf>=6.31, so they cannot
share a venv. These descriptors are written by hand from the field numbers documented in
google/ml-metadata `ml_metadata/proto/metadata_store.proto` and `metadata_store_service.proto` (tags
v1.14.0, the server KFP deploys: manifests/kustomize/base/metadata/base/metadata-grpc-deployment.yaml,
`ml_metadata_store_server:1.14.0`; the numbers are unchanged up to v1.16.0). Only the fields the reader
and the fake use are declared: protobuf keeps any other field as unknown bytes, so the wire stays
compatible. Full names are ML Metadata's own (package `ml_metadata`) so gRPC method paths and the JSON
form match; they live in a private descriptor pool so nothing clashes with another copy.
tests/test_mlmd_wire.py checks every message here against the official package's classes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, struct_pb2

F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "ml_metadata"
SERVICE = f"{PACKAGE}.MetadataStoreService"

# (name, number, type, label, type_name) per message; type_name is relative to the package or absolute.
_OPT, _REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
FieldSpec = tuple[str, int, int, int, str]


def _f(name: str, number: int, ftype: int, label: int = _OPT, type_name: str = "") -> FieldSpec:
    return (name, number, ftype, label, type_name)


def _add_fields(msg: descriptor_pb2.DescriptorProto, fields: list[FieldSpec],
                oneof: dict[str, str] | None = None) -> None:
    for name, number, ftype, label, type_name in fields:
        field = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name
        if oneof and name in oneof:
            names = [d.name for d in msg.oneof_decl]
            if oneof[name] not in names:
                msg.oneof_decl.add(name=oneof[name])
                names.append(oneof[name])
            field.oneof_index = names.index(oneof[name])


def _map(msg: descriptor_pb2.DescriptorProto, name: str, number: int, entry: str, value_type: str) -> None:
    """A `map<string, Value>` field: a repeated nested *Entry message with the map_entry option."""
    nested = msg.nested_type.add(name=entry)
    nested.options.map_entry = True
    _add_fields(nested, [_f("key", 1, F.TYPE_STRING), _f("value", 2, F.TYPE_MESSAGE, _OPT, value_type)])
    msg.field.add(name=name, number=number, type=F.TYPE_MESSAGE, label=_REP,
                  type_name=f".{PACKAGE}.{msg.name}.{entry}")


def _enum(msg: descriptor_pb2.DescriptorProto, name: str, values: list[str]) -> None:
    enum = msg.enum_type.add(name=name)
    for number, value in enumerate(values):
        enum.value.add(name=value, number=number)


def _file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="kfpc/ml_metadata_subset.proto", package=PACKAGE, syntax="proto2",
        dependency=["google/protobuf/struct.proto", "google/protobuf/any.proto"])
    value_ref = f".{PACKAGE}.Value"

    # metadata_store.proto v1.14.0 `message Value`: oneof value {int_value = 1; double_value = 2;
    # string_value = 3; struct_value = 4 (google.protobuf.Struct); proto_value = 5 (Any); bool_value = 6}
    value = fdp.message_type.add(name="Value")
    _add_fields(value, [
        _f("int_value", 1, F.TYPE_INT64), _f("double_value", 2, F.TYPE_DOUBLE),
        _f("string_value", 3, F.TYPE_STRING),
        _f("struct_value", 4, F.TYPE_MESSAGE, _OPT, ".google.protobuf.Struct"),
        _f("proto_value", 5, F.TYPE_MESSAGE, _OPT, ".google.protobuf.Any"),
        _f("bool_value", 6, F.TYPE_BOOL)],
        oneof={n: "value" for n in ("int_value", "double_value", "string_value", "struct_value",
                                    "proto_value", "bool_value")})

    # `message Artifact`: id = 1, type_id = 2, uri = 3, properties = 4, custom_properties = 5,
    # state = 6 (enum State UNKNOWN..REFERENCE = 0..6), name = 7, type = 8, create_time_since_epoch = 9,
    # last_update_time_since_epoch = 10, external_id = 11
    artifact = fdp.message_type.add(name="Artifact")
    _enum(artifact, "State", ["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED",
                              "ABANDONED", "REFERENCE"])
    _add_fields(artifact, [
        _f("id", 1, F.TYPE_INT64), _f("type_id", 2, F.TYPE_INT64), _f("uri", 3, F.TYPE_STRING),
        _f("state", 6, F.TYPE_ENUM, _OPT, f".{PACKAGE}.Artifact.State"), _f("name", 7, F.TYPE_STRING),
        _f("type", 8, F.TYPE_STRING), _f("create_time_since_epoch", 9, F.TYPE_INT64),
        _f("last_update_time_since_epoch", 10, F.TYPE_INT64), _f("external_id", 11, F.TYPE_STRING)])
    _map(artifact, "properties", 4, "PropertiesEntry", value_ref)
    _map(artifact, "custom_properties", 5, "CustomPropertiesEntry", value_ref)

    # `message Execution`: id = 1, type_id = 2, last_known_state = 3 (enum State UNKNOWN, NEW, RUNNING,
    # COMPLETE, FAILED, CACHED, CANCELED = 0..6), properties = 4, custom_properties = 5, name = 6,
    # type = 7, create_time_since_epoch = 8, last_update_time_since_epoch = 9, external_id = 10
    execution = fdp.message_type.add(name="Execution")
    _enum(execution, "State", ["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"])
    _add_fields(execution, [
        _f("id", 1, F.TYPE_INT64), _f("type_id", 2, F.TYPE_INT64),
        _f("last_known_state", 3, F.TYPE_ENUM, _OPT, f".{PACKAGE}.Execution.State"),
        _f("name", 6, F.TYPE_STRING), _f("type", 7, F.TYPE_STRING),
        _f("create_time_since_epoch", 8, F.TYPE_INT64), _f("last_update_time_since_epoch", 9, F.TYPE_INT64),
        _f("external_id", 10, F.TYPE_STRING)])
    _map(execution, "properties", 4, "PropertiesEntry", value_ref)
    _map(execution, "custom_properties", 5, "CustomPropertiesEntry", value_ref)

    # `message Context`: id = 1, type_id = 2, name = 3, properties = 4, custom_properties = 5, type = 6,
    # create_time_since_epoch = 7, last_update_time_since_epoch = 8, external_id = 9
    context = fdp.message_type.add(name="Context")
    _add_fields(context, [
        _f("id", 1, F.TYPE_INT64), _f("type_id", 2, F.TYPE_INT64), _f("name", 3, F.TYPE_STRING),
        _f("type", 6, F.TYPE_STRING), _f("create_time_since_epoch", 7, F.TYPE_INT64),
        _f("last_update_time_since_epoch", 8, F.TYPE_INT64), _f("external_id", 9, F.TYPE_STRING)])
    _map(context, "properties", 4, "PropertiesEntry", value_ref)
    _map(context, "custom_properties", 5, "CustomPropertiesEntry", value_ref)

    # `message Event`: artifact_id = 1, execution_id = 2, path = 3, type = 4 (enum Type UNKNOWN,
    # DECLARED_OUTPUT, DECLARED_INPUT, INPUT, OUTPUT, INTERNAL_INPUT, INTERNAL_OUTPUT, PENDING_OUTPUT =
    # 0..7), milliseconds_since_epoch = 5; `message Path {repeated Step steps = 1}`,
    # `message Step {oneof value {int64 index = 1; string key = 2}}`
    event = fdp.message_type.add(name="Event")
    path = event.nested_type.add(name="Path")
    step = path.nested_type.add(name="Step")
    _add_fields(step, [_f("index", 1, F.TYPE_INT64), _f("key", 2, F.TYPE_STRING)],
                oneof={"index": "value", "key": "value"})
    _add_fields(path, [_f("steps", 1, F.TYPE_MESSAGE, _REP, f".{PACKAGE}.Event.Path.Step")])
    _enum(event, "Type", ["UNKNOWN", "DECLARED_OUTPUT", "DECLARED_INPUT", "INPUT", "OUTPUT",
                          "INTERNAL_INPUT", "INTERNAL_OUTPUT", "PENDING_OUTPUT"])
    _add_fields(event, [
        _f("artifact_id", 1, F.TYPE_INT64), _f("execution_id", 2, F.TYPE_INT64),
        _f("path", 3, F.TYPE_MESSAGE, _OPT, f".{PACKAGE}.Event.Path"),
        _f("type", 4, F.TYPE_ENUM, _OPT, f".{PACKAGE}.Event.Type"),
        _f("milliseconds_since_epoch", 5, F.TYPE_INT64)])

    # metadata_store_service.proto v1.14.0:
    # GetContextByTypeAndNameRequest {type_name = 1; context_name = 2; type_version = 3}
    # GetContextByTypeAndNameResponse {Context context = 1}
    # GetExecutionsByContextRequest {int64 context_id = 1} (options = 2 unused: no options = every one)
    # GetExecutionsByContextResponse {repeated Execution executions = 1; string next_page_token = 2}
    # GetEventsByExecutionIDsRequest {repeated int64 execution_ids = 1}
    # GetEventsByExecutionIDsResponse {repeated Event events = 1}
    # GetArtifactsByIDRequest {repeated int64 artifact_ids = 1; bool populate_artifact_types = 3}
    # GetArtifactsByIDResponse {repeated Artifact artifacts = 1} (artifact_types = 2 unused)
    for name, fields in {
        "GetContextByTypeAndNameRequest": [_f("type_name", 1, F.TYPE_STRING),
                                           _f("context_name", 2, F.TYPE_STRING),
                                           _f("type_version", 3, F.TYPE_STRING)],
        "GetContextByTypeAndNameResponse": [_f("context", 1, F.TYPE_MESSAGE, _OPT, f".{PACKAGE}.Context")],
        "GetExecutionsByContextRequest": [_f("context_id", 1, F.TYPE_INT64)],
        "GetExecutionsByContextResponse": [_f("executions", 1, F.TYPE_MESSAGE, _REP, f".{PACKAGE}.Execution"),
                                           _f("next_page_token", 2, F.TYPE_STRING)],
        "GetEventsByExecutionIDsRequest": [_f("execution_ids", 1, F.TYPE_INT64, _REP)],
        "GetEventsByExecutionIDsResponse": [_f("events", 1, F.TYPE_MESSAGE, _REP, f".{PACKAGE}.Event")],
        "GetArtifactsByIDRequest": [_f("artifact_ids", 1, F.TYPE_INT64, _REP),
                                    _f("populate_artifact_types", 3, F.TYPE_BOOL)],
        "GetArtifactsByIDResponse": [_f("artifacts", 1, F.TYPE_MESSAGE, _REP, f".{PACKAGE}.Artifact")],
    }.items():
        _add_fields(fdp.message_type.add(name=name), fields)
    return fdp


def _build() -> dict[str, type[Any]]:
    pool = descriptor_pool.DescriptorPool()
    for dep in (struct_pb2, any_pb2):
        pool.AddSerializedFile(dep.DESCRIPTOR.serialized_pb)
    pool.Add(_file())
    names = [m.name for m in _file().message_type] + ["google.protobuf.Struct"]
    classes: dict[str, type[Any]] = {}
    for name in names:
        full = name if "." in name else f"{PACKAGE}.{name}"
        classes[name.rsplit(".", 1)[-1]] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
    return classes


_CLASSES = _build()
Value = _CLASSES["Value"]
Struct = _CLASSES["Struct"]
Artifact = _CLASSES["Artifact"]
Execution = _CLASSES["Execution"]
Context = _CLASSES["Context"]
Event = _CLASSES["Event"]
GetContextByTypeAndNameRequest = _CLASSES["GetContextByTypeAndNameRequest"]
GetContextByTypeAndNameResponse = _CLASSES["GetContextByTypeAndNameResponse"]
GetExecutionsByContextRequest = _CLASSES["GetExecutionsByContextRequest"]
GetExecutionsByContextResponse = _CLASSES["GetExecutionsByContextResponse"]
GetEventsByExecutionIDsRequest = _CLASSES["GetEventsByExecutionIDsRequest"]
GetEventsByExecutionIDsResponse = _CLASSES["GetEventsByExecutionIDsResponse"]
GetArtifactsByIDRequest = _CLASSES["GetArtifactsByIDRequest"]
GetArtifactsByIDResponse = _CLASSES["GetArtifactsByIDResponse"]

# rpc name -> (request class, response class), as `service MetadataStoreService` declares them
METHODS: dict[str, tuple[type[Any], type[Any]]] = {
    "GetContextByTypeAndName": (GetContextByTypeAndNameRequest, GetContextByTypeAndNameResponse),
    "GetExecutionsByContext": (GetExecutionsByContextRequest, GetExecutionsByContextResponse),
    "GetEventsByExecutionIDs": (GetEventsByExecutionIDsRequest, GetEventsByExecutionIDsResponse),
    "GetArtifactsByID": (GetArtifactsByIDRequest, GetArtifactsByIDResponse),
}


def method_path(rpc: str) -> str:
    return f"/{SERVICE}/{rpc}"


def to_python(value: Any) -> Any:
    """An ml_metadata.Value as a Python value: Struct -> dict (numbers stay float, as Struct stores them)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    if kind == "proto_value":
        return {"@type": value.proto_value.type_url, "value": bytes(value.proto_value.value)}
    return getattr(value, kind)


def struct_to_python(struct: Any) -> dict[str, Any]:
    return {key: _json_value(v) for key, v in struct.fields.items()}


def _json_value(v: Any) -> Any:
    # google/protobuf/struct.proto: oneof kind {null_value = 1; number_value = 2; string_value = 3;
    # bool_value = 4; struct_value = 5; list_value = 6}
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_python(v.struct_value)
    if kind == "list_value":
        return [_json_value(item) for item in v.list_value.values]
    if kind in (None, "null_value"):
        return None
    return getattr(v, kind)


def fill_value(target: Any, value: Any) -> None:
    """Sets an ml_metadata.Value from a Python value the way KFP's client.go does (bool before int)."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, dict):
        fill_struct(target.struct_value, value)
    else:
        raise TypeError(f"no MLMD Value kind for {type(value).__name__}")


def fill_struct(struct: Any, data: dict[str, Any]) -> None:
    struct.SetInParent()
    for key, item in data.items():
        _fill_json_value(struct.fields[key], item)


def _fill_json_value(target: Any, item: Any) -> None:
    if item is None:
        target.null_value = 0
    elif isinstance(item, bool):
        target.bool_value = item
    elif isinstance(item, (int, float)):
        target.number_value = float(item)  # Struct has only doubles: KFP's 7 is stored as 7.0
    elif isinstance(item, str):
        target.string_value = item
    elif isinstance(item, dict):
        fill_struct(target.struct_value, item)
    elif isinstance(item, list):
        target.list_value.SetInParent()
        for element in item:
            _fill_json_value(target.list_value.values.add(), element)
    else:
        raise TypeError(f"no Struct kind for {type(item).__name__}")
