"""What a KFP run leaves in a cluster, per driver variant, for the fake API (`FakeCluster.on_run`).

The pipeline is `producer` then a two-iteration `for-loop-2` of `consumer`, compiled the way all three KFP
refs compile it (template names from test_data/compiled-workflows/pipeline_with_loops.yaml; docs
kfp-variants.md §4-§5). Driver nodes differ as on a real cluster: `Pod` nodes with `outputs.parameters`
(driver-pod), `Plugin` nodes with `outputs.parameters` (sidecar-plugin), `HTTP` nodes whose `outputs.result`
is the driver's raw JSON body (central-driver). Logs go where each variant writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from harness.testing.fakeapi import FakeCluster, parse_time, rfc3339

NODE_TYPE = {"pod": "Pod", "executor-plugin": "Plugin", "central-service": "HTTP"}
DRIVER_DEPLOYMENT = ("kubeflow", "ml-pipeline-driver")


def driver_outputs(kind: str, driver_type: str, execution_id: int, iteration_count: int | None = None) -> dict:
    """Node outputs as each transport records them (§3.4: CD omits what is nil, the others fill defaults)."""
    values: dict[str, str] = {"execution-id": str(execution_id)}
    if driver_type in ("ROOT_DAG", "DAG"):
        values["iteration-count"] = str(iteration_count if iteration_count is not None else 0)
        values["condition"] = "nil"
    else:
        values.update({"cached-decision": "false", "condition": "nil", "pod-spec-patch": '{"containers":[]}'})
    if kind == "central-service":
        body = {k: v for k, v in values.items() if v != "nil"}
        if driver_type == "DAG" and iteration_count is None:
            body.pop("iteration-count", None)
        return {"result": json.dumps(body, separators=(",", ":"))}
    return {"parameters": [{"name": k, "value": v} for k, v in values.items()]}


def simulate(kind: str, *, pipeline: str = "loops") -> Callable[[FakeCluster, dict[str, Any]], None]:
    """An `on_run` hook that creates the Workflow, pods, logs and events a run of `kind` would create."""

    def on_run(fake: FakeCluster, run: dict[str, Any]) -> None:
        _Builder(fake, run, kind, pipeline).build()

    return on_run


class _Builder:
    def __init__(self, fake: FakeCluster, run: dict[str, Any], kind: str, pipeline: str) -> None:
        self.fake, self.run, self.kind = fake, run, kind
        self.ns = run["namespace"]
        self.wf = f"{pipeline}-{run['run_id'][:5]}x"
        self.start = parse_time(run["created_at"])
        self.nodes: dict[str, dict[str, Any]] = {}
        self.clock = 0
        self.execution = 100
        self.pods: list[str] = []

    def _node(self, parent: dict[str, Any] | None, display: str, template: str, node_type: str,
              **extra: Any) -> dict[str, Any]:
        node_id = self.wf if parent is None else f"{self.wf}-{1000 + len(self.nodes)}"
        started = self.start + timedelta(seconds=self.clock)
        self.clock += 2
        node = {"id": node_id, "name": display if parent is None else f"{parent['name']}.{display}",
                "displayName": display, "templateName": template, "type": node_type, "phase": "Succeeded",
                "startedAt": rfc3339(started), "finishedAt": rfc3339(started + timedelta(seconds=1)),
                "children": [], **extra}
        if parent is not None:
            parent["children"].append(node_id)
        self.nodes[node_id] = node
        return node

    def _driver(self, parent: dict[str, Any], display: str, driver_type: str, iterations: int | None = None) -> None:
        template = "system-container-driver" if driver_type == "CONTAINER" else "system-dag-driver"
        self.execution += 1
        node = self._node(parent, display, template, NODE_TYPE[self.kind],
                          inputs={"parameters": [{"name": "driver-type", "value": driver_type}]}
                          if driver_type != "CONTAINER" else {},
                          outputs=driver_outputs(self.kind, driver_type, self.execution, iterations))
        line = f"KFP driver {driver_type} task={display} run_id={self.run['run_id']} workflow={self.wf}"
        if self.kind == "pod":
            pod = self._pod(node, "system-" + template.split("-", 1)[1], ["main", "wait"])
            self.fake.add_log(self.ns, pod, "main", [line, f"execution {self.execution} created"], self.start)
        elif self.kind == "executor-plugin":
            self.fake.add_log(self.ns, self.agent, "driver-plugin", [line], self.start)
            stamp = int(self.start.timestamp() * 1000) + self.clock
            files = self.fake.files.setdefault((self.ns, self.agent, "driver-plugin"), {})
            files[f"{stamp}-0-{driver_type}-{display}.log"] = line + "\n"
        else:
            self.fake.add_log(DRIVER_DEPLOYMENT[0], self.driver_pod, "ml-pipeline-driver",
                              [line, "unrelated request run_id=someone-else workflow=other-wf"], self.start)

    def _pod(self, node: dict[str, Any], template: str, containers: list[str]) -> str:
        name = f"{self.wf}-{template}-{len(self.pods) + 1:04d}"
        self.fake.add({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": self.ns,
                                    "labels": {"workflows.argoproj.io/workflow": self.wf},
                                    "annotations": {"workflows.argoproj.io/node-name": node["name"],
                                                    "workflows.argoproj.io/node-id": node["id"]}},
                       "spec": {"serviceAccountName": "pipeline-runner",
                                "containers": [{"name": c, "image": "fake"} for c in containers]},
                       "status": {"phase": "Succeeded", "startTime": node["startedAt"]}})
        self.pods.append(name)
        return name

    def _executor(self, parent: dict[str, Any], display: str) -> None:
        self._driver(parent, f"{display}-driver", "CONTAINER")
        task = self._node(parent, display, "system-container-executor", "DAG")
        pod_node = self._node(task, "executor", "system-container-impl", "Pod")
        pod = self._pod(pod_node, "system-container-impl", ["wait", "main"])
        self.fake.add_log(self.ns, pod, "main", [f"hello from {display}", "executor done"], self.start)
        self.fake.add_log(self.ns, pod, "wait", ["argoexec wait: outputs saved"], self.start)

    def build(self) -> None:
        if self.kind != "pod":  # HTTP and plugin templates run in the per-workflow agent pod
            self.agent = f"{self.wf}-1340600742-agent"
            containers = ["main", "driver-plugin"] if self.kind == "executor-plugin" else ["main"]
            self.fake.add({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": self.agent, "namespace": self.ns,
                                        "labels": {"workflows.argoproj.io/workflow": self.wf,
                                                   "workflows.argoproj.io/component": "agent"}},
                           "spec": {"containers": [{"name": c, "image": "fake"} for c in containers]},
                           "status": {"phase": "Running"}})
            self.pods.append(self.agent)
            self.fake.add_log(self.ns, self.agent, "main", ["agent started"], self.start)
        if self.kind == "central-service":
            self.driver_pod = "ml-pipeline-driver-5d9c7b-abcde"
            self._central_deployment()
        root = self._node(None, self.wf, "entrypoint", "DAG")
        self._driver(root, "root-driver", "ROOT_DAG")
        dag = self._node(root, "root", "root", "DAG")
        self._executor(dag, "producer")
        loop = self._node(dag, "for-loop-2", "comp-for-loop-2-for-loop-2-iterator", "DAG")
        self._driver(loop, "iteration-driver", "DAG", iterations=2)
        group = self._node(loop, "iteration-iterations", "comp-for-loop-2-iteration", "TaskGroup")
        for index in range(2):
            iteration = self._node(group, f"iteration-iterations({index})", "comp-for-loop-2-iteration", "DAG")
            self._driver(iteration, "iteration-item-driver", "DAG")
            item = self._node(iteration, "iteration-item", "comp-for-loop-2", "DAG")
            self._executor(item, "consumer")
        finished = self.start + timedelta(seconds=self.clock + 1)
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                    "metadata": {"name": self.wf, "namespace": self.ns,
                                 "labels": {"pipeline/runid": self.run["run_id"],
                                            "workflows.argoproj.io/completed": "true"}},
                    "spec": {"entrypoint": "entrypoint", "serviceAccountName": "pipeline-runner"},
                    "status": {"phase": "Succeeded", "startedAt": rfc3339(self.start),
                               "finishedAt": rfc3339(finished), "nodes": self.nodes}}
        self.fake.add(workflow)
        self.fake.add({"apiVersion": "v1", "kind": "Event",
                       "metadata": {"name": f"{self.wf}.1", "namespace": self.ns},
                       "involvedObject": {"kind": "Workflow", "name": self.wf}, "reason": "WorkflowRunning",
                       "message": "Workflow Running", "type": "Normal", "lastTimestamp": rfc3339(self.start)})
        self.fake.add({"apiVersion": "v1", "kind": "Event",
                       "metadata": {"name": "old-event", "namespace": self.ns},
                       "involvedObject": {"kind": "Pod", "name": "yesterday"}, "reason": "Old",
                       "message": "before the run", "type": "Normal",
                       "lastTimestamp": rfc3339(self.start - timedelta(days=1))})
        self.run["run_details"] = {"task_details": [
            {"run_id": self.run["run_id"], "task_id": n["id"], "display_name": n["displayName"],
             "create_time": n["startedAt"], "start_time": n["startedAt"], "end_time": n["finishedAt"],
             "state": "SUCCEEDED", "pod_name": f"{self.wf}-{n['templateName']}-{i}",
             "child_tasks": [{"task_id": c} for c in n["children"]]}
            for i, n in enumerate(self.nodes.values())]}

    def _central_deployment(self) -> None:
        ns, name = DRIVER_DEPLOYMENT
        labels = {"app": name}
        if self.fake.objects.get(("apps/v1", "deployments", ns, name)) is None:
            self.fake.add({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                           "spec": {"selector": {"matchLabels": labels}}})
            self.fake.add({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": self.driver_pod, "namespace": ns, "labels": labels},
                           "spec": {"containers": [{"name": name, "image": "fake"}]},
                           "status": {"phase": "Running"}})
        before = datetime.now(timezone.utc) - timedelta(hours=2)
        self.fake.add_log(ns, self.driver_pod, name, [f"old line run_id={self.run['run_id']} from before"], before)
