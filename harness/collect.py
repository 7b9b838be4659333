"""Cluster -> evidence bundle for one run: states, Argo nodes, driver outputs, logs, events, pods, timings.

Reads only through `harness.kube` (and the KFP run the caller already fetched) and writes only through
`harness.bundle.write_bundle`. Every text and every JSON value passes through `harness.redact.redact` with
the session's known secrets before it is written. A single failing read (one pod's log, say) is recorded in
`collection-errors.json` and marks the bundle partial rather than losing everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from harness.bundle import dump_json, write_bundle
from harness.errors import HarnessError
from harness.kube import ARGO_WORKFLOWS, CORE, Kube
from harness.models import Mode, Scenario, Source, Variant
from harness.normalize import parse_time
from harness.rbaclive import profile_objects
from harness.redact import redact, redact_value

# Argo template names the KFP compiler uses in every ref (kfp-variants.md §4).
DRIVER_TEMPLATES = ("system-dag-driver", "system-container-driver")
EXECUTOR_TEMPLATE = "system-container-executor"
ITERATION_DRIVER = "iteration-driver"  # drives the loop DAG itself
ITERATION_ITEM = "iteration-item"  # the body DAG of one iteration: same path as its iteration
ITERATION_INDEX = re.compile(r"^(?P<name>.+)\((?P<index>\d+)(?::.*)?\)$")  # `iteration-iterations(1)`
PHASE_TO_STATE = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED", "Skipped": "SKIPPED",
                  "Omitted": "SKIPPED", "Running": "RUNNING", "Pending": "PENDING"}
EVENT_SLACK = timedelta(seconds=30)
FILE_MARKER = "===KFPC-FILE "
# Prints each driver log file after a marker line (the sidecar writes one file per request, §3.2).
LIST_FILES = 'for f in {dir}/*; do [ -f "$f" ] || continue; printf "\\n{marker}%s\\n" "$f"; cat "$f"; done'


@dataclass
class Collected:
    """What `collect_run` gathered: the bundle.json fields and the raw files, all already redacted."""

    workflow: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    driver_nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    driver_logs: dict[str, Any] = field(default_factory=dict)
    rbac: list[dict[str, Any]] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class _Collector:
    def __init__(self, kube: Kube, secrets: Sequence[str]) -> None:
        self.kube, self.secrets = kube, list(secrets)
        self.out = Collected()
        self.pod_summaries: list[dict[str, Any]] = []  # pods.json entries, read by the driver-log step

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
    paths: dict[str, str] = {}

    def visit(node_id: str, parent_path: str, parent: dict[str, Any] | None) -> None:
        node = nodes.get(node_id)
        if node is None:
            return
        name, template = node.get("displayName", ""), node.get("templateName", "")
        if parent is None:
            path = ""
        elif parent.get("type") == "Retry" or parent.get("templateName") == EXECUTOR_TEMPLATE:
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
        paths[node_id] = path
        for child in node.get("children") or []:
            if child not in paths:
                visit(child, path, node)

    visit(root_id, "", None)
    return paths


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _driver_type(node: dict[str, Any]) -> str:
    for parameter in (node.get("inputs") or {}).get("parameters") or []:
        if parameter.get("name") == "driver-type" and parameter.get("value") in ("ROOT_DAG", "DAG", "CONTAINER"):
            return parameter["value"]
    if node.get("templateName") == "system-container-driver":
        return "CONTAINER"
    return "ROOT_DAG" if node.get("displayName") == "root-driver" else "DAG"


def nodes_to_records(workflow: dict[str, Any], task_states: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(tasks, driver_nodes) for bundle.json from an Argo Workflow's status.nodes."""
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    root = workflow["metadata"]["name"]
    if root not in nodes:  # the root node's id is the workflow name; fall back to the node without parent
        children = {c for n in nodes.values() for c in n.get("children") or []}
        root = next((i for i in nodes if i not in children), root)
    paths = task_paths(nodes, root)
    tasks: dict[str, dict[str, Any]] = {}
    drivers: list[dict[str, Any]] = []
    under_retry = {c for n in nodes.values() if n.get("type") == "Retry" for c in n.get("children") or []}
    for node_id, path in sorted(paths.items(), key=lambda kv: (kv[1], kv[0])):
        node = nodes[node_id]
        parent_retry = node_id in under_retry
        if node.get("templateName") in DRIVER_TEMPLATES and not parent_retry:
            outputs: dict[str, Any] = {}
            raw = node.get("outputs") or {}
            if raw.get("parameters"):
                outputs["parameters"] = {p["name"]: p.get("value") for p in raw["parameters"]}
            if "result" in raw:
                outputs["result"] = raw["result"]
            drivers.append({"task_path": path or "root", "driver_type": _driver_type(node),
                            "phase": node.get("phase", ""), "node_type": node.get("type", ""),
                            "started_at": node.get("startedAt"), "finished_at": node.get("finishedAt"),
                            "outputs": outputs, "message": node.get("message")})
            continue
        if not path or path in tasks or node.get("templateName") in DRIVER_TEMPLATES:
            continue
        state = task_states.get(node_id) or PHASE_TO_STATE.get(node.get("phase", ""), node.get("phase", "UNKNOWN"))
        task: dict[str, Any] = {"path": path, "display_name": node.get("displayName", ""), "state": state,
                                "started_at": node.get("startedAt"), "finished_at": node.get("finishedAt"),
                                "pod_names": [], "is_driver": False}
        parameters = (node.get("outputs") or {}).get("parameters")
        if parameters:
            task["outputs"] = {"parameters": {p["name"]: p.get("value") for p in parameters}}
        tasks[path] = task
    return list(tasks.values()), drivers


def collect_run(kube: Kube, variant: Variant, mode: Mode, run: dict[str, Any], *, secrets: Sequence[str],
                window_start: datetime, rbac: list[dict[str, Any]] | None = None,
                profile_namespace: str | None = None) -> Collected:
    """Read everything the run left in the cluster. Call right after the run ends (Argo's TTL is 1h)."""
    c = _Collector(kube, [*secrets, *kube.secrets])
    namespace = run.get("namespace") or mode.user_namespace
    run_id = run.get("run_id", "")
    c.json("run.json", run)
    workflows = c.attempt("list Argo Workflows of the run",
                          lambda: kube.list(*ARGO_WORKFLOWS, namespace, label_selector=f"pipeline/runid={run_id}"),
                          [])
    workflow = workflows[0] if workflows else None
    task_states = {t.get("task_id", ""): t.get("state", "") for t in
                   (run.get("run_details") or {}).get("task_details") or []}
    if workflow is None:
        c.out.errors.append({"what": "find the run's Argo Workflow",
                             "error": f"no Workflow labelled pipeline/runid={run_id} in {namespace}"})
    else:
        wf_name = workflow["metadata"]["name"]
        c.out.workflow = wf_name
        c.json("workflow.json", workflow)
        c.out.tasks, c.out.driver_nodes = nodes_to_records(workflow, task_states)
        c.json("timings.json", {node.get("displayName", i): {"started_at": node.get("startedAt"),
                                                             "finished_at": node.get("finishedAt"),
                                                             "type": node.get("type"), "id": i}
                                for i, node in sorted(((workflow.get("status") or {}).get("nodes") or {}).items())})
        _collect_pods(c, namespace, wf_name, workflow)
        _collect_driver_logs(c, variant, namespace, wf_name, run_id, window_start)
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


def _collect_pods(c: _Collector, namespace: str, wf_name: str, workflow: dict[str, Any]) -> None:
    pods = c.attempt("list the run's pods",
                     lambda: c.kube.pods(namespace, f"workflows.argoproj.io/workflow={wf_name}"), [])
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    by_name = {n.get("name"): i for i, n in nodes.items()}
    summaries = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        node_name = (pod["metadata"].get("annotations") or {}).get("workflows.argoproj.io/node-name")
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


def _collect_driver_logs(c: _Collector, variant: Variant, namespace: str, wf_name: str, run_id: str,
                         window_start: datetime) -> None:
    logs = variant.driver.logs
    files: list[str] = []
    summaries = c.pod_summaries
    if logs.where == "pod":
        for pod in summaries:
            template = _template_of(pod)
            if template in DRIVER_TEMPLATES and logs.container in pod["containers"]:
                relative = f"logs/pods/{_safe(pod['name'])}/{_safe(logs.container)}.log"
                if relative in c.out.files:
                    files.append(relative)
    elif logs.where == "agent-pod":
        for pod in summaries:
            if pod["labels"].get("workflows.argoproj.io/component") != "agent":
                continue
            relative = f"logs/pods/{_safe(pod['name'])}/{_safe(logs.container)}.log"
            if relative in c.out.files:
                files.append(relative)
            if logs.files and logs.container in pod["containers"]:
                script = LIST_FILES.format(dir=logs.files.rstrip("/"), marker=FILE_MARKER)
                text = c.attempt(f"driver log files {logs.files} in {pod['name']}",
                                 lambda p=pod["name"], s=script: c.kube.exec_text(namespace, p, logs.container,
                                                                                  ["sh", "-c", s]), None)
                for path, body in _split_files(text or ""):
                    files.append(c.text(f"logs/driver/{_safe(pod['name'])}/{_safe(Path(path).name)}", body))
    elif logs.where == "deployment":
        files += _deployment_logs(c, logs.namespace or "kubeflow", logs.name, logs.container,
                                  (run_id, wf_name), window_start)
    c.out.driver_logs = {"location": f"{logs.where}:{logs.container}" + (f":{logs.files}" if logs.files else ""),
                         "files": sorted(set(files)), "found": any(c.out.files.get(f, "").strip() for f in files)}


def _template_of(pod: dict[str, Any]) -> str:
    for template in DRIVER_TEMPLATES:
        if f"-{template}-" in pod["name"]:
            return template
    return ""


def _split_files(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for chunk in text.split("\n" + FILE_MARKER)[1:]:
        path, _, body = chunk.partition("\n")
        found.append((path.strip(), body))
    return found


def _deployment_logs(c: _Collector, namespace: str, name: str, container: str, ids: tuple[str, str],
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
        # the service is shared by every run: keep only lines that name this run or its workflow
        lines = [line for line in text.splitlines() if any(i and i in line for i in ids)]
        files.append(c.text(f"logs/driver/{_safe(pod_name)}.log", "\n".join(lines) + ("\n" if lines else "")))
    return files


def write_run_bundle(target: Path, scenario: Scenario, variant: Variant, mode: Mode, source: Source,
                     run: dict[str, Any], collected: Collected, *, status: str, reason: str = "",
                     secrets: Sequence[str] = ()) -> Path:
    """Assemble bundle.json from what was collected and write it (raw files first, bundle.json last)."""
    if collected.errors and status == "complete":
        status, reason = "partial", f"{len(collected.errors)} collection step(s) failed: see collection-errors.json"
    data: dict[str, Any] = {
        "status": status,
        "collected_by": "kfp-conformance harness.collect",
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
    }
    if reason:
        data["reason"] = reason
    if collected.rbac is not None:
        data["rbac"] = collected.rbac
    if scenario.oracle:
        data["oracle"] = scenario.oracle
    return write_bundle(target, redact_value(data, secrets), collected.files, overwrite=True)
