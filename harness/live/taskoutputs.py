"""Task outputs where KFP v2 really keeps them: ML Metadata executions, joined to task paths.

Why MLMD: every compiled KFP v2 workflow has `outputs: {}` on `system-container-executor` and
`system-container-impl` (test_data/compiled-workflows/*.yaml), and the v2beta1 task details built from Argo
nodes leave outputs unfilled (backend/src/apiserver/server/api_converter.go @81fc181b1, `case
util.NodeStatus`, "TODO(gkcalat): parse input and output artifacts"). The launcher publishes output
parameters as the execution custom property `outputs` (a Struct) and output artifacts as MLMD artifacts
linked by OUTPUT events whose path key is the output name (backend/src/v2/metadata/client.go @81fc181b1,
PublishExecution).

The join: an execution's task path is rebuilt from what the driver records on it (client.go CreateExecution;
driver/dag.go and driver/container.go @81fc181b1): `task_name` (the DAG task key), `parent_dag_id` (the
execution of the enclosing DAG) and `iteration_index` (set on the per-iteration DAG executions of a
ParallelFor, whose task_name is the loop's; same rule as client.go GetExecutionsInDAG, which appends the
index to the task name). The root DAG execution has neither task_name nor parent_dag_id (driver/root_dag.go).
This gives the same `root/for-loop-2[1]/consumer` paths as `harness.live.collect.task_paths` builds from Argo
nodes. Where an Argo driver node states the execution id it created (`execution-id` output, or the
launcher's `--execution_id N` inside a CONTAINER driver's `pod-spec-patch`), the two joins are checked
against each other.

Types: a Struct holds every number as a double (google.protobuf.Value number_value), so the declared
parameter type of the compiled pipeline spec (`outputDefinitions.parameters.<name>.parameterType`)
decides: NUMBER_INTEGER -> int, NUMBER_DOUBLE -> float, BOOLEAN -> bool, STRING -> str, LIST -> list,
STRUCT -> dict (inside LIST/STRUCT, whole numbers become int: JSON cannot tell 1 from 1.0 either).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

ROOT = "root"
# MLMD artifact custom properties KFP itself adds (client.go RecordArtifact @81fc181b1): not user metadata.
INTERNAL_ARTIFACT_PROPERTIES = frozenset({"display_name", "store_session_info"})
# The launcher's command line inside a CONTAINER driver's pod-spec-patch (driver.go initPodSpecPatch @81fc181b1).
EXECUTION_ID_ARG = re.compile(r"--execution_id\W+(\d+)")
DAG_EXECUTION = "system.DAGExecution"


class Execution(Protocol):
    """What `harness.boundary.mlmd.MlmdExecution` provides (docs/… mlmd contract); a Protocol keeps this module pure."""

    id: int
    type: str
    state: str
    task_name: str
    parent_dag_id: int | None
    iteration_index: int | None
    outputs: dict[str, Any]
    output_artifacts: dict[str, list[Any]]


def execution_paths(executions: Sequence[Execution]) -> tuple[dict[int, str], list[str]]:
    """(execution id -> task path, problems). Executions whose parent is unknown get no path."""
    by_id = {e.id: e for e in executions}
    paths: dict[int, str] = {}
    problems: list[str] = []
    roots = [e for e in executions if e.parent_dag_id in (None, 0) and not e.task_name]
    if len(roots) > 1:
        problems.append(f"{len(roots)} root DAG executions in one run context: ids "
                        f"{', '.join(str(e.id) for e in roots)}")

    def path_of(execution: Execution, seen: frozenset[int]) -> str | None:
        if execution.id in paths:
            return paths[execution.id]
        if execution.parent_dag_id in (None, 0):
            return ROOT if not execution.task_name else None
        parent = by_id.get(execution.parent_dag_id)
        if parent is None or parent.id in seen:
            return None
        parent_path = path_of(parent, seen | {execution.id})
        if parent_path is None:
            return None
        if execution.iteration_index is not None and parent.task_name == execution.task_name:
            return f"{parent_path}[{execution.iteration_index}]"  # one iteration of the loop DAG
        return f"{parent_path}/{execution.task_name}"

    for execution in sorted(executions, key=lambda e: e.id):
        found = path_of(execution, frozenset())
        if found is None:
            problems.append(f"execution {execution.id} (task {execution.task_name or '?'}) has no parent DAG "
                            f"execution {execution.parent_dag_id} in the run context")
            continue
        paths[execution.id] = found
    return paths, problems


def output_types(pipeline_spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Task path without iteration indexes -> {output parameter name: parameterType} from a compiled IR."""
    components = pipeline_spec.get("components") or {}
    found: dict[str, dict[str, str]] = {}

    def walk(dag: Mapping[str, Any], prefix: str, seen: frozenset[str]) -> None:
        for task_name, task in (dag.get("tasks") or {}).items():
            ref = ((task.get("componentRef") or {}).get("name")) or ""
            component = components.get(ref) or {}
            path = f"{prefix}/{task_name}"
            parameters = ((component.get("outputDefinitions") or {}).get("parameters")) or {}
            found[path] = {name: str(spec.get("parameterType") or spec.get("type") or "")
                           for name, spec in parameters.items()}
            if component.get("dag") and ref not in seen:
                walk(component["dag"], path, seen | {ref})

    root = pipeline_spec.get("root") or {}
    found[ROOT] = {name: str(spec.get("parameterType") or "")
                   for name, spec in (((root.get("outputDefinitions") or {}).get("parameters")) or {}).items()}
    walk(root.get("dag") or {}, ROOT, frozenset())
    return found


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    return value


def typed(value: Any, parameter_type: str) -> Any:
    """An MLMD Struct value as KFP types the declared parameter (unknown type: unchanged)."""
    if parameter_type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    if parameter_type == "NUMBER_DOUBLE" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if parameter_type in ("LIST", "STRUCT"):
        if isinstance(value, str):  # older launchers stored JSON text
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return _whole(value)
    return value


def _strip_indexes(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def artifact_record(name: str, artifact: Any) -> dict[str, Any]:
    """The bundle's artifact object (schema $defs/artifact) from an MlmdArtifact."""
    metadata = {k: _whole(v) for k, v in (artifact.custom or {}).items() if k not in INTERNAL_ARTIFACT_PROPERTIES}
    return {"name": name, "type": artifact.type, "uri": artifact.uri, "metadata": metadata,
            "digest": None}  # the content is in the object store, not read: see compare (not verified)


def task_outputs(executions: Sequence[Execution], pipeline_spec: Mapping[str, Any] | None
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, int], list[str]]:
    """(task path -> {"parameters", "artifacts"}, task path -> execution id, problems)."""
    paths, problems = execution_paths(executions)
    types = output_types(pipeline_spec or {})
    outputs: dict[str, dict[str, Any]] = {}
    ids: dict[str, int] = {}
    for execution in sorted(executions, key=lambda e: e.id):
        path = paths.get(execution.id)
        if path is None:
            continue
        if path in ids:
            problems.append(f"executions {ids[path]} and {execution.id} both have task path {path}")
            continue
        ids[path] = execution.id
        declared = types.get(_strip_indexes(path), {})
        entry: dict[str, Any] = {}
        if execution.outputs:
            entry["parameters"] = {name: typed(value, declared.get(name, ""))
                                   for name, value in sorted(execution.outputs.items())}
        artifacts = [artifact_record(name, artifact) for name, found in sorted(execution.output_artifacts.items())
                     for artifact in found]
        if artifacts:
            entry["artifacts"] = artifacts
        if entry:
            outputs[path] = entry
    return outputs, ids, problems


def driver_execution_id(outputs: Mapping[str, Any]) -> int | None:
    """The MLMD execution id an Argo driver node reports: `execution-id`, or `--execution_id N` in its
    pod-spec-patch (a driver-pod CONTAINER driver declares no execution-id output)."""
    values = dict(outputs.get("parameters") or {})
    if outputs.get("result"):
        try:
            body = json.loads(outputs["result"])
        except ValueError:
            body = {}
        if isinstance(body, dict):
            values.update(body)
    raw = values.get("execution-id")
    if raw not in (None, "", "0"):
        try:
            return int(str(raw))
        except ValueError:
            return None
    match = EXECUTION_ID_ARG.search(str(values.get("pod-spec-patch") or ""))
    return int(match.group(1)) if match else None


def check_against_drivers(ids: Mapping[str, int], driver_nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Where a driver node names its execution, the MLMD path of that execution must be the node's path."""
    by_id = {execution_id: path for path, execution_id in ids.items()}
    problems = []
    for node in driver_nodes:
        execution_id = driver_execution_id(node.get("outputs") or {})
        if execution_id is None:
            continue
        path = by_id.get(execution_id)
        if path != node["task_path"]:
            problems.append(f"driver of {node['task_path']} created MLMD execution {execution_id}, which "
                            + (f"has task path {path}" if path else "is not in the run context"))
    return problems
