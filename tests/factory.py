"""Builds evidence-bundle data in the shapes the three variants really produce (kfp-variants.md §3.4, §5).

The task tree and driver output names come from a REAL compiled workflow in the shared KFP trees (e.g.
`test_data/compiled-workflows/pipeline_with_condition.yaml`): the DAG tasks, which tasks are drivers, and
the output parameters each driver template declares. What a cluster would add (run ids, UIDs, pod names,
timestamps, MLMD execution ids) is generated per bundle, different for each variant, so comparisons see
the same noise a real run has. Not a test module: tests and benchmarks import it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

VARIANT_DRIVER = {"driver-pod": "pod", "sidecar-plugin": "plugin", "central-driver": "http"}
DRIVER_LOG_LOCATION = {
    "driver-pod": "pod:main",
    "sidecar-plugin": "agent-pod:driver-plugin",
    "central-driver": "deployment:kubeflow/ml-pipeline-driver",
}
CONDITION_WORKFLOW = "test_data/compiled-workflows/pipeline_with_condition.yaml"
# The driver's identity per variant in standalone mode (kfp-variants.md §6, fixtures/variants.yaml).
DRIVER_IDENTITY = {
    "driver-pod": "kubeflow/pipeline-runner",
    "sidecar-plugin": "kubeflow/ml-pipeline-driver-agent-executor-plugin",
    "central-driver": "kubeflow/ml-pipeline-driver",
}


@dataclass(frozen=True)
class ShapeNode:
    path: str  # task path, e.g. root/condition-1/print-op-2
    kind: str  # container | dag
    driver_type: str  # ROOT_DAG | DAG | CONTAINER
    declared_outputs: tuple[str, ...]  # output parameters the driver template declares (pod / plugin)


@dataclass
class Shape:
    name: str
    pipeline_name: str
    nodes: list[ShapeNode] = field(default_factory=list)

    def containers(self) -> list[ShapeNode]:
        return [n for n in self.nodes if n.kind == "container"]


def load_shape(workflow_file: Path, iterations: int = 2) -> Shape:
    """Walk a compiled workflow from its entrypoint; loops expand into `iterations` indexed iterations."""
    wf = yaml.safe_load(workflow_file.read_text())
    templates = {t["name"]: t for t in wf["spec"]["templates"]}

    def outputs(template_name: str) -> tuple[str, ...]:
        return tuple(p["name"] for p in templates[template_name].get("outputs", {}).get("parameters", []))

    shape = Shape(workflow_file.stem, _pipeline_name(wf))
    entry = templates[wf["spec"]["entrypoint"]]
    root_driver = next(t for t in entry["dag"]["tasks"] if t["name"] == "root-driver")
    shape.nodes.append(ShapeNode("root", "dag", "ROOT_DAG", outputs(root_driver["template"])))

    def walk(template_name: str, prefix: str) -> None:
        tasks = templates[template_name]["dag"]["tasks"]
        drivers = {t["name"][: -len("-driver")]: t for t in tasks if t["name"].endswith("-driver")}
        for task in tasks:
            name = task["name"]
            if name.endswith("-driver"):
                continue
            target = task["template"]
            driver = drivers.get(name)
            looped = any(k in task for k in ("withParam", "withItems", "withSequence"))
            if looped:  # `for-loop-N-iteration` style tasks: one path per iteration
                for index in range(iterations):
                    walk(target, f"{prefix}/{name.removesuffix('-iteration')}[{index}]")
                continue
            if target == "system-container-executor" and driver is not None:
                shape.nodes.append(ShapeNode(f"{prefix}/{name}", "container", "CONTAINER",
                                             outputs(driver["template"])))
            elif "dag" in templates[target] and driver is not None:
                shape.nodes.append(ShapeNode(f"{prefix}/{name}", "dag", "DAG", outputs(driver["template"])))
                walk(target, f"{prefix}/{name}")
            elif "dag" in templates[target]:
                walk(target, f"{prefix}/{name}")

    walk("root", "root")
    return shape


def condition_shapes(trees: Path) -> dict[str, Shape]:
    """Each variant's shape of its own real pipeline_with_condition compiled workflow (trees: KFPC_SOURCES)."""
    return {v: load_shape(trees / v / CONDITION_WORKFLOW) for v in VARIANT_DRIVER}


def _pipeline_name(wf: dict[str, Any]) -> str:
    for template in wf["spec"]["templates"]:
        args = template.get("plugin", {}).get("driver-plugin", {}).get("args", {})
        if "pipeline_name" in args:
            return args["pipeline_name"]
    return wf["metadata"].get("generateName", "pipeline").rstrip("-")


@dataclass
class Run:
    """The per-run noise: different for every variant and every run, never a real difference."""

    variant: str
    mode: str = "standalone"
    seed: int = 0
    start: datetime = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"{self.variant}{self.seed}".encode()).hexdigest()
        self.run_id = str(uuid.UUID(digest[:32]))
        self.workflow = f"single-condition-pipeline-{digest[:5]}"
        self.namespace = "kubeflow" if self.mode != "multi-user" else "kubeflow-user-example-com"
        self._counter = int(digest[:4], 16) % 97  # shifts execution ids and times per run
        self.start = self.start + timedelta(minutes=self._counter)

    def uid(self, label: str) -> str:
        return str(uuid.UUID(hashlib.sha256(f"{self.run_id}{label}".encode()).hexdigest()[:32]))

    def pod(self, template: str, label: str) -> str:
        return f"{self.workflow}-{template}-{int(hashlib.sha256((self.run_id + label).encode()).hexdigest()[:8], 16)}"

    def time(self, seconds: float) -> str:
        return (self.start + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def driver_outputs(variant: str, node: ShapeNode, execution_id: int, pod_spec_patch: str,
                   condition: str | None = None) -> dict[str, Any]:
    """A driver node's outputs exactly as Argo records them for `variant` (kfp-variants.md §3.4, §5)."""
    # What the driver computes (nil = not set).
    values: dict[str, str | None] = {
        "execution-id": str(execution_id),
        "iteration-count": None,
        "cached-decision": "false" if node.driver_type == "CONTAINER" else None,
        "condition": condition,
        "pod-spec-patch": pod_spec_patch if node.driver_type == "CONTAINER" else None,
    }
    if VARIANT_DRIVER[variant] == "http":
        # CD: flat JSON, omitempty; iteration-count "0" for ROOT_DAG only; never "nil".
        body = {k: v for k, v in values.items() if v not in (None, "")}
        if node.driver_type == "ROOT_DAG":
            body.setdefault("iteration-count", "0")
        return {"result": json.dumps(body, separators=(",", ":"), sort_keys=True)}
    # Classic files / SC plugin parameters: "0" for ROOT_DAG and DAG, condition "nil" when unset.
    if node.driver_type in ("ROOT_DAG", "DAG"):
        values["iteration-count"] = values["iteration-count"] or "0"
    values["condition"] = values["condition"] or "nil"
    values["pod-spec-patch"] = values["pod-spec-patch"] or ""
    if VARIANT_DRIVER[variant] == "plugin":
        # Argo keeps the plugin's reply verbatim (workflow/controller/taskset.go): every key the sidecar
        # returns (ntny rpc_handler.go extractOutputParameters), pod-spec-patch "" on DAG drivers included.
        return {"parameters": {name: value for name, value in values.items() if value is not None}}
    # A driver pod: argoexec records only the outputs the template declares.
    return {"parameters": {name: values[name] for name in node.declared_outputs if values.get(name) is not None}}


def bundle_data(shape: Shape, run: Run, *, coin: str = "heads", fail_at: str | None = None,
                scenario: str = "pipeline-with-condition") -> tuple[dict[str, Any], dict[str, str]]:
    """(bundle.json data, raw files) for one run of `shape` on `run.variant`."""
    tasks: list[dict[str, Any]] = []
    driver_nodes: list[dict[str, Any]] = []
    pods: list[str] = []
    driver_log: list[str] = []
    files: dict[str, str] = {}
    failed = False
    clock = 0.0
    for index, node in enumerate(shape.nodes):
        clock += 2.0
        execution_id = 1000 + run._counter * 10 + index
        pod = run.pod("system-container-impl", node.path)
        patch = json.dumps({"containers": [{"name": "main", "image": "python:3.11",
                                             "args": ["--run_id", run.run_id, "--execution_id",
                                                      str(execution_id), "--pod_name", pod,
                                                      "--namespace", run.namespace]}]})
        condition = None
        if node.driver_type == "DAG" and node.path.rsplit("/", 1)[-1].startswith("condition-"):
            condition = "true" if coin == "heads" else "false"
        driver_phase = "Succeeded"
        message = None
        if fail_at == node.path and node.kind == "dag":
            driver_phase, message = "Failed", "unable to drive execution: KFP driver: failed to resolve inputs"
            failed = True
        driver_nodes.append({
            "task_path": node.path, "driver_type": node.driver_type, "phase": driver_phase,
            "node_type": {"pod": "Pod", "plugin": "Plugin", "http": "HTTP"}[VARIANT_DRIVER[run.variant]],
            "started_at": run.time(clock), "finished_at": run.time(clock + 0.5 + (index % 3) * 0.1),
            "outputs": driver_outputs(run.variant, node, execution_id, patch, condition),
            "message": message,
        })
        driver_log.append(f"I0501 12:00:{index % 60:02d}.{index:06d} 1 driver.go:{100 + index}] "
                          f"{node.driver_type} driver for {node.path} execution {execution_id} "
                          f"run {run.run_id}")
        if VARIANT_DRIVER[run.variant] == "pod":
            driver_pod = run.pod("system-container-driver", node.path)
            pods.append(driver_pod)
        if node.kind != "container":
            continue
        state = "SUCCEEDED"
        error_class = None
        if fail_at == node.path:
            state, error_class, failed = "FAILED", "executor-error", True
        pods.append(pod)
        outputs = {"parameters": {}, "artifacts": []}
        if node.path.endswith("flip-coin-op") or node.path.endswith("flip-coin-op-2"):
            outputs["parameters"]["Output"] = coin
        else:
            outputs["artifacts"].append({
                "name": "executor-logs", "type": "system.Artifact",
                "uri": f"minio://mlpipeline/v2/artifacts/{shape.pipeline_name}/{run.run_id}/"
                       f"{node.path.rsplit('/', 1)[-1]}/{run.uid(node.path)}/executor-logs",
                "metadata": {"display_name": "executor-logs"},
                "digest": "sha256:" + hashlib.sha256(f"{node.path}{coin}".encode()).hexdigest(),
            })
        tasks.append({
            "path": node.path, "display_name": node.path.rsplit("/", 1)[-1], "state": state,
            "started_at": run.time(clock + 1), "finished_at": run.time(clock + 4), "pod_names": [pod],
            "outputs": outputs, "error_class": error_class, "is_driver": False,
        })
        files[f"logs/{pod}.main.log"] = (
            f"{run.time(clock + 1)} I launcher: executing {node.path} in pod {pod}\n"
            f"{run.time(clock + 2)} WARNING: Python 3.9 is deprecated\n"
            + (f"{run.time(clock + 3)} ERROR: task {node.path} exited 1\n" if state == "FAILED" else "")
        )
    if VARIANT_DRIVER[run.variant] in ("plugin", "http"):  # one Argo agent pod per workflow (§3.3, §5)
        pods.append(f"{run.workflow}-{run._counter + 1000}-agent")
    driver_file = {"driver-pod": "logs/drivers.main.log", "sidecar-plugin": "logs/agent.driver-plugin.log",
                   "central-driver": "logs/ml-pipeline-driver.log"}[run.variant]
    files[driver_file] = "\n".join(driver_log) + "\n"
    files["workflow.json"] = json.dumps({"metadata": {"name": run.workflow, "uid": run.uid("wf")}})
    files["run.json"] = json.dumps({"run_id": run.run_id, "state": "FAILED" if failed else "SUCCEEDED"})
    data = {
        "schema_version": "1.1",
        "status": "complete",
        "collected_by": "tests/factory.py",
        "scenario": {"name": scenario, "origin": "corpus",
                     "upstream_path": f"test_data/compiled-workflows/{shape.name}.yaml",
                     "expected_state": "SUCCEEDED"},
        "variant": run.variant,
        "mode": run.mode,
        "source": {"repository": "https://github.com/kubeflow/pipelines", "ref": "test",
                   "commit": hashlib.sha1(run.variant.encode()).hexdigest()},
        "run": {"id": run.run_id, "state": "FAILED" if failed else "SUCCEEDED", "namespace": run.namespace,
                "workflow": run.workflow, "created_at": run.time(0), "finished_at": run.time(clock + 10),
                "error": "task failed" if failed else None},
        "tasks": tasks,
        "driver_nodes": driver_nodes,
        "pods": pods,
        "rbac": rbac_matrix(run.variant),
        "driver_logs": {"location": DRIVER_LOG_LOCATION[run.variant], "files": [driver_file], "found": True},
        "task_outputs": {"source": "mlmd", "read": True, "executions": len(shape.nodes)},
    }
    return data, files


def rbac_matrix(variant: str, namespace: str = "kubeflow") -> list[dict[str, Any]]:
    """The live SAR questions asked of the driver identity, answered as kfp-variants.md §6 describes."""
    identity = DRIVER_IDENTITY[variant]
    # (verb, group, resource, name): allowed for driver-pod (Role pipeline-runner), sidecar-plugin (Role
    # ml-pipeline-executor-plugin-role, resourceName-scoped), central-driver (Role ml-pipeline-driver).
    answers = {
        ("get", "", "secrets", "mlpipeline-minio-artifact"): (True, True, True),
        ("get", "", "configmaps", "kfp-launcher"): (True, True, True),
        ("get", "", "secrets", ""): (True, False, True),
        ("list", "", "secrets", ""): (False, False, True),
        ("get", "", "configmaps", ""): (True, False, True),
        ("get", "", "pods", ""): (True, True, True),
        ("create", "", "persistentvolumeclaims", ""): (True, True, False),
        ("delete", "argoproj.io", "workflows", ""): (False, False, False),
    }
    column = ("driver-pod", "sidecar-plugin", "central-driver").index(variant)
    rows = [(verb, group, resource, name, allowed[column])
            for (verb, group, resource, name), allowed in answers.items()]
    return [{"identity": identity, "verb": verb, "group": group, "resource": resource, "subresource": "",
             "namespace": namespace, "name": name, "allowed": allowed}
            for verb, group, resource, name, allowed in rows]
