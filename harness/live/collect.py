"""Cluster -> evidence bundle for one run: states, Argo nodes, task outputs (MLMD), driver outputs, logs,
events, pods, timings.

Reads only through `harness.boundary.kube`, the MLMD reader and the KFP run the caller already fetched, and writes only
through `harness.evidence.bundle.write_bundle`. Every text and every JSON value passes through `harness.boundary.redact.redact`
with the session's known secrets before it is written. A single failing read (one pod's log, say) is recorded
in `collection-errors.json` and marks the bundle partial rather than losing everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from harness.boundary.kube import ARGO_WORKFLOWS, CORE, Kube
from harness.boundary.redact import redact, redact_value
from harness.errors import HarnessError
from harness.evidence.bundle import dump_json, write_bundle
from harness.evidence.normalize import parse_time
from harness.live.taskoutputs import check_against_drivers, task_outputs
from harness.models import Mode, Scenario, Source, Variant
from harness.rbac.live import profile_objects

# Argo template names the KFP compiler uses in every ref (kfp-variants.md §4). A component with a retry
# policy gets `retry-system-container-executor`/`-impl` (backend/src/v2/compiler/argocompiler/container.go
# @81fc181b1 "retry-" + name; test_data/compiled-workflows/pipeline_with_retry.yaml in all three trees).
DRIVER_TEMPLATES = ("system-dag-driver", "system-container-driver")
EXECUTOR_TEMPLATES = ("system-container-executor", "retry-system-container-executor")
ITERATION_DRIVER = "iteration-driver"  # drives the loop DAG itself
ITERATION_ITEM = "iteration-item"  # the body DAG of one iteration: same path as its iteration
ITERATION_INDEX = re.compile(r"^(?P<name>.+)\((?P<index>\d+)(?::.*)?\)$")  # `iteration-iterations(1)`
PHASE_TO_STATE = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED", "Skipped": "SKIPPED",
                  "Omitted": "SKIPPED", "Running": "RUNNING", "Pending": "PENDING"}
EVENT_SLACK = timedelta(seconds=30)
NODE_NAME = "workflows.argoproj.io/node-name"  # Argo's pod annotation (workflow/common/common.go v3.7.3)


@dataclass
class Collected:
    """What `collect_run` gathered: the bundle.json fields and the raw files, all already redacted."""

    workflow: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    driver_nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    driver_logs: dict[str, Any] = field(default_factory=dict)
    task_outputs: dict[str, Any] = field(default_factory=lambda: {"source": "mlmd", "read": False,
                                                                   "reason": "not collected"})
    rbac: list[dict[str, Any]] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class _Collector:
    def __init__(self, kube: Kube, secrets: Sequence[str]) -> None:
        self.kube, self.secrets = kube, list(secrets)
        self.out = Collected()
        self.pod_summaries: list[dict[str, Any]] = []  # pods.json entries, read by the driver-log step
        self.nodes: dict[str, dict[str, Any]] = {}

    def text(self, relative: str, body: str) -> str:
        self.out.files[relative] = redact(body, self.secrets)
        return relative

    def json(self, relative: str, data: Any) -> str:
        # values first (a secret JSON escaping would alter), then the text (`"token": "..."` spans key and value)
        self.out.files[relative] = redact(dump_json(redact_value(data, self.secrets)), self.secrets)
        return relative

    def attempt(self, what: str, call: Any, default: Any = None) -> Any:
        try:
            return call()
        except HarnessError as exc:
            self.out.errors.append({"what": what, "error": redact(exc.line(), self.secrets)})
            return default


def task_paths(nodes: dict[str, dict[str, Any]], root_id: str) -> dict[str, str]:
    """Node id -> task path built from the DAG structure with iteration indexes, e.g.
    `root/for-loop-2[1]/consumer`. Driver nodes get the path of the task they drive. Never uses pod names."""
    return {node_id: path for node_id, (path, _depth) in _walk(nodes, root_id).items()}


def _walk(nodes: dict[str, dict[str, Any]], root_id: str) -> dict[str, tuple[str, int]]:
    """Node id -> (task path, depth in the node tree)."""
    found: dict[str, tuple[str, int]] = {}

    def visit(node_id: str, parent_path: str, parent: dict[str, Any] | None, depth: int) -> None:
        node = nodes.get(node_id)
        if node is None:
            return
        name, template = node.get("displayName", ""), node.get("templateName", "")
        if parent is None:
            path = ""
        elif parent.get("type") == "Retry" or parent.get("templateName") in EXECUTOR_TEMPLATES:
            path = parent_path  # retry attempts and the executor's pod belong to their task
        elif template in DRIVER_TEMPLATES:
            if name == ITERATION_DRIVER or name == f"{ITERATION_ITEM}-driver":
                path = parent_path
            else:
                path = _join(parent_path, name.removesuffix("-driver"))
        elif node.get("type") == "TaskGroup" or name == ITERATION_ITEM:
            path = parent_path
        elif match := ITERATION_INDEX.match(name):
            path = f"{parent_path}[{match.group('index')}]" if parent.get("type") == "TaskGroup" else \
                _join(parent_path, f"{match.group('name')}[{match.group('index')}]")
        else:
            path = _join(parent_path, name)
        found[node_id] = (path, depth)
        for child in node.get("children") or []:
            if child not in found:
                visit(child, path, node, depth + 1)

    visit(root_id, "", None, 0)
    return found


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _driver_type(node: dict[str, Any]) -> str:
    for parameter in (node.get("inputs") or {}).get("parameters") or []:
        if parameter.get("name") == "driver-type" and parameter.get("value") in ("ROOT_DAG", "DAG", "CONTAINER"):
            return parameter["value"]
    if node.get("templateName") == "system-container-driver":
        return "CONTAINER"
    return "ROOT_DAG" if node.get("displayName") == "root-driver" else "DAG"


def _epoch(value: str | None) -> int | None:
    moment = parse_time(value)
    return int(moment.timestamp()) if moment else None


def details_by_node(nodes: Mapping[str, dict[str, Any]], task_details: Sequence[Mapping[str, Any]]
                    ) -> dict[str, Mapping[str, Any]]:
    """Node id -> the v2beta1 task detail built from that node, where exactly one matches.

    `task_id` is a random UUID (backend/src/apiserver/storage/task_store.go CreateTask @81fc181b1), not the
    node id, and the detail does not expose the node id itself. What links them (api_converter.go
    toModelTask, `case util.NodeStatus`; common/util/workflow.go NodeStatuses @81fc181b1): display_name is
    the node's displayName, child_tasks[].pod_name are the node's `children` ids, start_time is the node's
    startedAt in whole seconds. Ambiguous or missing matches are left out (the node phase then decides).
    """
    keyed: dict[tuple[str, frozenset[str], int | None], list[Mapping[str, Any]]] = {}
    for detail in task_details:
        children = frozenset(c.get("pod_name") or c.get("task_id") or "" for c in detail.get("child_tasks") or [])
        key = (str(detail.get("display_name") or ""), children, _epoch(detail.get("start_time")))
        keyed.setdefault(key, []).append(detail)
    matched: dict[str, Mapping[str, Any]] = {}
    for node_id, node in nodes.items():
        key = (node.get("displayName", ""), frozenset(node.get("children") or []), _epoch(node.get("startedAt")))
        candidates = keyed.get(key) or []
        if len(candidates) == 1:
            matched[node_id] = candidates[0]
    return matched


def nodes_to_records(workflow: dict[str, Any], task_details: Sequence[Mapping[str, Any]] = ()
                     ) -> tuple[list[dict], list[dict]]:
    """(tasks, driver_nodes) for bundle.json from an Argo Workflow's status.nodes and the run's task details.

    Several nodes share one task path (the executor DAG node, its Pod child, retry attempts, the iteration
    group): the task record is the node nearest the root, so a cache hit is the Succeeded executor DAG
    node, not its Skipped/Omitted Pod child (the executor's `when: cached-decision != true`, compiled
    workflows @81fc181b1). Task outputs are not here: Argo has none for executors (harness.live.taskoutputs).
    """
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    root = workflow["metadata"]["name"]
    if root not in nodes:  # the root node's id is the workflow name; fall back to the node without parent
        children = {c for n in nodes.values() for c in n.get("children") or []}
        root = next((i for i in nodes if i not in children), root)
    walked = _walk(nodes, root)
    details = details_by_node(nodes, task_details)
    tasks: dict[str, dict[str, Any]] = {}
    drivers: list[dict[str, Any]] = []
    under_retry = {c for n in nodes.values() if n.get("type") == "Retry" for c in n.get("children") or []}
    for node_id, (path, _depth) in sorted(walked.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0])):
        node = nodes[node_id]
        if node.get("templateName") in DRIVER_TEMPLATES:
            if node_id not in under_retry:
                drivers.append(_driver_record(node, path))
            continue
        if not path or path in tasks:
            continue  # sorted by (path, depth): the first node of a path is the one nearest the root
        detail = details.get(node_id) or {}
        state = str(detail.get("state") or "")
        if state in ("", "RUNTIME_STATE_UNSPECIFIED"):
            state = PHASE_TO_STATE.get(node.get("phase", ""), node.get("phase", "UNKNOWN"))
        tasks[path] = {"path": path, "display_name": node.get("displayName", ""), "state": state,
                       "started_at": node.get("startedAt"), "finished_at": node.get("finishedAt"),
                       "pod_names": [], "is_driver": False}
    return list(tasks.values()), drivers


def _driver_record(node: dict[str, Any], path: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    raw = node.get("outputs") or {}
    if raw.get("parameters"):
        outputs["parameters"] = {p["name"]: p.get("value") for p in raw["parameters"]}
    if "result" in raw:
        outputs["result"] = raw["result"]
    return {"task_path": path or "root", "driver_type": _driver_type(node), "phase": node.get("phase", ""),
            "node_type": node.get("type", ""), "started_at": node.get("startedAt"),
            "finished_at": node.get("finishedAt"), "outputs": outputs, "message": node.get("message")}


def collect_run(kube: Kube, variant: Variant, mode: Mode, run: dict[str, Any], *, secrets: Sequence[str],
                window_start: datetime,
                rbac: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]] | None = None,
                profile_namespace: str | None = None, mlmd: Any = None,
                pipeline_spec: Mapping[str, Any] | None = None,
                followed_logs: Mapping[str, str] | None = None) -> Collected:
    """Read everything the run left in the cluster. Call right after the run ends (Argo deletes the agent pod
    at completion; the persistence agent's Workflow TTL is 24 h).

    `mlmd` is a `harness.boundary.mlmd.MlmdReader` (None: task outputs are not read and the bundle is partial);
    `pipeline_spec` the compiled IR, for output types; `followed_logs` maps `pod/container` to the log text
    a `harness.live.follow.LogFollower` captured while the run was in flight.
    """
    c = _Collector(kube, [*secrets, *kube.secrets])
    if callable(rbac):  # SubjectAccessReviews are an evidence step: a failure marks the bundle partial, no more
        rbac = c.attempt("SubjectAccessReviews of the run's identities", rbac, None)
    namespace = run.get("namespace") or mode.user_namespace
    run_id = run.get("run_id", "")
    c.json("run.json", run)
    workflows = c.attempt("list Argo Workflows of the run",
                          lambda: kube.list(*ARGO_WORKFLOWS, namespace, label_selector=f"pipeline/runid={run_id}"),
                          [])
    workflow = workflows[0] if workflows else None
    task_details = (run.get("run_details") or {}).get("task_details") or []
    if workflow is None:
        c.out.errors.append({"what": "find the run's Argo Workflow",
                             "error": f"no Workflow labelled pipeline/runid={run_id} in {namespace}"})
        c.out.task_outputs = {"source": "mlmd", "read": False, "reason": "no Argo Workflow to join outputs to"}
    else:
        wf_name = workflow["metadata"]["name"]
        c.out.workflow = wf_name
        c.json("workflow.json", workflow)
        c.nodes = (workflow.get("status") or {}).get("nodes") or {}
        c.out.tasks, c.out.driver_nodes = nodes_to_records(workflow, task_details)
        c.json("timings.json", {node.get("displayName", i): {"started_at": node.get("startedAt"),
                                                             "finished_at": node.get("finishedAt"),
                                                             "type": node.get("type"), "id": i}
                                for i, node in sorted(c.nodes.items())})
        _collect_outputs(c, mlmd, run_id, pipeline_spec)
        _collect_pods(c, namespace, wf_name)
        ids = (run_id, wf_name)
        _collect_driver_logs(c, variant, ids, window_start, followed_logs or {})
    for problem in run.get("follow_problems") or []:  # harness.live.follow while the run was in flight
        c.out.errors.append({"what": "follow driver logs during the run", "error": redact(problem, c.secrets)})
    events = c.attempt(f"list events in {namespace}", lambda: kube.events(namespace), [])
    window = window_start - EVENT_SLACK
    kept = [e for e in events if (parse_time(e.get("eventTime") or e.get("lastTimestamp") or e.get("firstTimestamp")
                                        or e["metadata"].get("creationTimestamp")) or window) >= window]
    c.json("events.json", kept)
    if rbac is not None:
        c.out.rbac = rbac
        c.json("rbac.json", rbac)
    if profile_namespace:  # multi-user: what the profile controller put in the namespace (no Secret data)
        objects = c.attempt(f"list RBAC objects in {profile_namespace}",
                            lambda: profile_objects(kube, profile_namespace), None)
        if objects is not None:
            c.json("profile-objects.json", {"namespace": profile_namespace, **objects})
    if c.out.errors:
        c.json("collection-errors.json", c.out.errors)
    return c.out


def _collect_outputs(c: _Collector, mlmd: Any, run_id: str, pipeline_spec: Mapping[str, Any] | None) -> None:
    """Task outputs from MLMD, in the system.PipelineRun context named after the KFP run id. The compiler
    writes `run_id: {{workflow.uid}}` for every driver (backend/src/v2/compiler/argocompiler/argo.go runID(),
    "KFP API server converts this to KFP run ID"), and the API server replaces every `{{workflow.uid}}` with
    the run id before it creates the Workflow (apiserver/template/v2_template.go `ReplaceUID(options.RunID)`,
    common/util/workflow.go ReplaceUID; @81fc181b1 and both PoC branches); the root driver names the context
    after that value (v2/metadata/client.go GetPipeline). The Workflow's own metadata.uid is another UUID.
    Without a reader, or on a failed read, the outputs are "not read", never "empty"."""
    if mlmd is None:
        reason = "no ML Metadata connection: task outputs not read"
        c.out.errors.append({"what": "read task outputs from ML Metadata", "error": reason})
        c.out.task_outputs = {"source": "mlmd", "read": False, "reason": reason}
        return
    executions = c.attempt(f"read ML Metadata executions of run context {run_id}",
                           lambda: mlmd.run_executions(run_id), None)
    if executions is None:
        c.out.task_outputs = {"source": "mlmd", "read": False, "reason": c.out.errors[-1]["error"]}
        return
    if not executions:
        reason = f"ML Metadata has no executions in run context {run_id}"
        c.out.errors.append({"what": "read task outputs from ML Metadata", "error": reason})
        c.out.task_outputs = {"source": "mlmd", "read": False, "reason": reason}
        return
    outputs, ids, problems = task_outputs(executions, pipeline_spec)
    problems += check_against_drivers(ids, c.out.driver_nodes)
    c.json("mlmd.json", [{"id": e.id, "type": e.type, "state": e.state, "task_name": e.task_name,
                          "parent_dag_id": e.parent_dag_id, "iteration_index": e.iteration_index,
                          "pod_name": e.pod_name, "path": next((p for p, i in ids.items() if i == e.id), None),
                          "outputs": e.outputs,
                          "output_artifacts": {n: [{"uri": a.uri, "type": a.type} for a in found]
                                               for n, found in e.output_artifacts.items()}}
                         for e in sorted(executions, key=lambda e: e.id)])
    for problem in problems:
        c.out.errors.append({"what": "join ML Metadata executions to task paths", "error": problem})
    for task in c.out.tasks:
        if task["path"] in ids:
            task["execution_id"] = ids[task["path"]]
        if task["path"] in outputs:
            task["outputs"] = outputs[task["path"]]
    c.out.task_outputs = {"source": "mlmd", "read": True, "executions": len(executions)}


def _collect_pods(c: _Collector, namespace: str, wf_name: str) -> None:
    pods = c.attempt("list the run's pods",
                     lambda: c.kube.pods(namespace, f"workflows.argoproj.io/workflow={wf_name}"), [])
    by_name = {n.get("name"): i for i, n in c.nodes.items()}
    summaries = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        node_name = (pod["metadata"].get("annotations") or {}).get(NODE_NAME)
        containers = [x["name"] for x in pod["spec"].get("containers") or []]
        summaries.append({"name": name, "phase": (pod.get("status") or {}).get("phase"), "node": node_name,
                          "node_id": by_name.get(node_name), "containers": containers,
                          "labels": pod["metadata"].get("labels") or {},
                          "service_account": pod["spec"].get("serviceAccountName"),
                          # why a pod is stuck (ImagePullBackOff, CrashLoopBackOff...), as `describe` shows it
                          "container_statuses": [{"name": s.get("name"), "ready": s.get("ready"),
                                                  "restarts": s.get("restartCount"), "state": s.get("state")}
                                                 for s in (pod.get("status") or {}).get("containerStatuses") or []]})
        for container in containers:
            text = c.attempt(f"logs of {name}/{container}",
                             lambda n=name, k=container: c.kube.pod_log(namespace, n, k), None)
            if text is not None:
                c.text(f"logs/pods/{_safe(name)}/{_safe(container)}.log", text)
    c.out.pods = [s["name"] for s in summaries]
    c.json("pods.json", summaries)
    c.pod_summaries = summaries


def _collect_driver_logs(c: _Collector, variant: Variant, ids: tuple[str, str, str], window_start: datetime,
                         followed: Mapping[str, str]) -> None:
    logs = variant.driver.logs
    files: list[str] = []
    if logs.where == "pod":
        for pod in c.pod_summaries:
            if _template_of(c, pod) in DRIVER_TEMPLATES and logs.container in pod["containers"]:
                relative = f"logs/pods/{_safe(pod['name'])}/{_safe(logs.container)}.log"
                if relative in c.out.files:
                    files.append(relative)
    elif logs.where == "agent-pod":
        # Argo deletes the agent pod when the workflow completes (workflow/controller/operator.go,
        # hasTaskSetNodes -> DeletePod, v3.7.3 and v4.0.8) and the plugin removes each /kfp/log file at the end
        # of its request (ntny backend/src/driver/rpc_handler.go, deferred os.Remove): what the harness
        # followed while the run was in flight is the evidence; a pod still there is read as well.
        for key, text in sorted(followed.items()):
            pod, _, container = key.partition("/")
            if container == logs.container:
                files.append(c.text(f"logs/followed/{_safe(pod)}/{_safe(container)}.log", text))
        for pod in c.pod_summaries:
            relative = f"logs/pods/{_safe(pod['name'])}/{_safe(logs.container)}.log"
            if pod["labels"].get("workflows.argoproj.io/component") == "agent" and relative in c.out.files:
                files.append(relative)
    elif logs.where == "deployment":
        files += _deployment_logs(c, logs.namespace or "kubeflow", logs.name, logs.container, ids, window_start)
    c.out.driver_logs = {"location": f"{logs.where}:{logs.container}" + (f":{logs.files}" if logs.files else ""),
                         "files": sorted(set(files)), "found": any(c.out.files.get(f, "").strip() for f in files)}


def _template_of(c: _Collector, pod: dict[str, Any]) -> str:
    """The Argo template of the node a pod runs, through its `workflows.argoproj.io/node-name` annotation
    (never a pod-name substring: v2 pod names are `<wf>-<template>-<hash>` but a template name may hold
    another's, and `pod-name-format: v1` names are node ids)."""
    node = c.nodes.get(pod.get("node_id") or "") or {}
    return str(node.get("templateName") or "")


def _deployment_logs(c: _Collector, namespace: str, name: str, container: str, ids: tuple[str, ...],
                     window_start: datetime) -> list[str]:
    deployment = c.attempt(f"get Deployment {namespace}/{name}", lambda: c.kube.get("apps/v1", "deployments",
                                                                                   name, namespace), None)
    if deployment is None:
        return []
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    files = []
    since = window_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in c.attempt(f"list pods of Deployment {namespace}/{name}",
                         lambda: c.kube.list(CORE, "pods", namespace, label_selector=selector), []):
        pod_name = pod["metadata"]["name"]
        text = c.attempt(f"logs of {pod_name}/{container} since {since}",
                         lambda p=pod_name: c.kube.pod_log(namespace, p, container, since_time=since,
                                                           timestamps=True), None)
        if text is None:
            continue
        # The service is shared by every run: keep only lines that name this run. The driver's own lines carry
        # `run_id` = the KFP run id (the compiled request body sends "run_id":"{{workflow.uid}}", which the
        # API server replaces with the run id: apiserver/template/v2_template.go ReplaceUID, droctothorpe
        # central-driver-poc-backup), its logrus lines the workflow name.
        lines = [line for line in text.splitlines() if any(i and i in line for i in ids)]
        files.append(c.text(f"logs/driver/{_safe(pod_name)}.log", "\n".join(lines) + ("\n" if lines else "")))
    return files


def write_run_bundle(target: Path, scenario: Scenario, variant: Variant, mode: Mode, source: Source,
                     run: dict[str, Any], collected: Collected, *, status: str, reason: str = "",
                     secrets: Sequence[str] = ()) -> Path:
    """Assemble bundle.json from what was collected and write it (raw files first, bundle.json last)."""
    if collected.errors and status == "complete":
        first = collected.errors[0]  # the reason names the fault; the file lists every failed step
        status, reason = "partial", (f"{len(collected.errors)} collection step(s) failed, first {first['what']}: "
                                     f"{first['error']} (see collection-errors.json)")
    data: dict[str, Any] = {
        "status": status,
        "collected_by": "kfp-conformance harness.live.collect",
        # the scenario's expectations travel with the evidence, so a report is rebuilt from files alone
        "scenario": {"name": scenario.name, "origin": scenario.origin, "expected_state": scenario.expected_state,
                     **({"upstream_path": scenario.upstream_path} if scenario.upstream_path else {}),
                     **({"description": scenario.description} if scenario.description else {}),
                     **({"expected_outputs": scenario.expected_outputs} if scenario.expected_outputs else {}),
                     **({"failing_tasks": list(scenario.failing_tasks)} if scenario.failing_tasks else {}),
                     **({"expected_cache": scenario.expected_cache} if scenario.expected_cache else {})},
        "variant": variant.name, "mode": mode.name,
        "source": {k: v for k, v in {"repository": source.repository, "ref": source.ref,
                                     "commit": source.commit}.items() if v or k == "commit"},
        "run": {"id": run.get("run_id", ""), "state": run.get("state") or "UNKNOWN",
                "namespace": run.get("namespace") or mode.user_namespace,
                **({"workflow": collected.workflow} if collected.workflow else {}),
                "created_at": run.get("created_at"), "finished_at": run.get("finished_at"),
                "error": json.dumps(run["error"]) if isinstance(run.get("error"), dict) else run.get("error"),
                **({"previous_runs": run["previous_runs"]} if run.get("previous_runs") else {})},
        "tasks": collected.tasks, "driver_nodes": collected.driver_nodes, "pods": collected.pods,
        "driver_logs": collected.driver_logs or {"location": variant.driver.logs.where, "files": [], "found": False},
        "task_outputs": collected.task_outputs,
    }
    if reason:
        data["reason"] = reason
    if collected.rbac is not None:
        data["rbac"] = collected.rbac
    if scenario.oracle:
        data["oracle"] = scenario.oracle
    return write_bundle(target, redact_value(data, secrets), collected.files, overwrite=True)
