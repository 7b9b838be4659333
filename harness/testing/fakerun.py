"""What a KFP run leaves in a cluster, per driver variant, for the fake API (`FakeCluster.on_run`).

The pipeline is `producer` then a two-iteration `for-loop-2` of `consumer`, compiled the way all three KFP
refs compile it (template names and nesting from test_data/compiled-workflows/pipeline_with_loops.yaml and,
for `consumer`, which has a retry policy, pipeline_with_retry.yaml: `retry-system-container-executor`).
What upstream does, including the inconvenient parts (docs/fidelity.md lists each with its source):

- Node ids are `<wf>-<fnv32a(node name)>` and the agent pod is `<NodeID("agent")>-agent` (Argo
  pkg/apis/workflow/v1alpha1/workflow_types.go NodeID, workflow/controller/agent.go, v3.7.3).
- Driver node outputs per transport: a driver pod records only the outputs its template declares; the
  plugin's reply is kept verbatim (Argo workflow/controller/taskset.go), so it carries execution-id on
  CONTAINER and pod-spec-patch "" on DAG drivers (ntny rpc_handler.go extractOutputParameters); an HTTP
  node keeps the raw JSON body, omitempty (droctothorpe backend/src/driver/api/response.go).
- Executor nodes have no outputs (`outputs: {}` in every compiled workflow): task outputs exist only in
  ML Metadata, written to a `FakeMlmd` the way backend/src/v2/metadata/client.go @81fc181b1 writes them,
  in the run context named after the KFP run id: the compiler's `{{workflow.uid}}` is replaced with the run
  id by the API server (apiserver/template/v2_template.go ReplaceUID). The Workflow's own metadata.uid is a
  different random UUID, as on a real cluster.
- v2beta1 task details have random UUID task ids, no pod name or execution id, and child_tasks that hold
  the child node ids (apiserver storage/task_store.go, server/api_converter.go @81fc181b1).
- The agent pod, and with it the driver-plugin log, is deleted when the workflow completes (Argo
  workflow/controller/operator.go hasTaskSetNodes -> DeletePod); /kfp/log files never outlive the request
  that wrote them (ntny rpc_handler.go, deferred os.Remove), so there are none to read afterwards.
- The central driver logs `run_id=<KFP run id>` (the replaced `{{workflow.uid}}`), with glog error lines,
  and serves other runs too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from harness.testing.fakeapi import FakeCluster, parse_time, rfc3339

NODE_TYPE = {"pod": "Pod", "executor-plugin": "Plugin", "central-service": "HTTP"}
DRIVER_DEPLOYMENT = ("kubeflow", "ml-pipeline-driver")
PRODUCER_OUTPUT = 7  # declared NUMBER_INTEGER in tests; MLMD holds it as the double 7.0
STATE_V2 = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Skipped": "SKIPPED", "Omitted": "SKIPPED",
            "Running": "RUNNING"}


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_spec_patch(execution_id: int, run_uid: str) -> str:
    """A CONTAINER driver's pod-spec-patch: the launcher command carries the MLMD execution id
    (backend/src/v2/driver/driver.go initPodSpecPatch @81fc181b1)."""
    return json.dumps({"containers": [{"name": "main", "command": [
        "/kfp-launcher/launch", "--pipeline_name", "loops", "--run_id", run_uid,
        "--execution_id", str(execution_id), "--pod_name", "$(KFP_POD_NAME)"]}]}, separators=(",", ":"))


def driver_outputs(kind: str, driver_type: str, execution_id: int, iteration_count: int | None = None,
                   run_uid: str = "") -> dict:
    """Node outputs as each transport records them (kfp-variants.md §3.4; see the module docstring)."""
    patch = pod_spec_patch(execution_id, run_uid) if driver_type == "CONTAINER" else ""
    count = str(iteration_count if iteration_count is not None else 0)
    if kind == "pod":  # only what the template declares (compiled system-*-driver outputs)
        values = ({"pod-spec-patch": patch, "cached-decision": "false", "condition": "nil"}
                  if driver_type == "CONTAINER" else
                  {"execution-id": str(execution_id), "iteration-count": count, "condition": "nil"})
    elif kind == "executor-plugin":  # extractOutputParameters, kept verbatim by taskset.go
        values = {"execution-id": str(execution_id)}
        if driver_type != "CONTAINER":
            values["iteration-count"] = count
        else:
            values["cached-decision"] = "false"
        values.update({"condition": "nil", "pod-spec-patch": patch})
    else:  # the HTTP body: omitempty, no "nil", iteration-count "0" only for ROOT_DAG
        body = {"execution-id": str(execution_id)}
        if driver_type == "ROOT_DAG" or iteration_count is not None:
            body["iteration-count"] = count
        if driver_type == "CONTAINER":
            body.update({"cached-decision": "false", "pod-spec-patch": patch})
        return {"result": json.dumps(body, separators=(",", ":"))}
    return {"parameters": [{"name": k, "value": v} for k, v in values.items()]}


def simulate(kind: str, *, pipeline: str = "loops", mlmd: Any = None, cached: bool = False
             ) -> Callable[[FakeCluster, dict[str, Any]], None]:
    """An `on_run` hook that creates the Workflow, pods, logs, events and (with a `FakeMlmd`) the MLMD
    records a run of `kind` would create. `cached`: `producer` is served from the cache."""

    def on_run(fake: FakeCluster, run: dict[str, Any]) -> None:
        _Builder(fake, run, kind, pipeline, mlmd, cached).build()

    return on_run


class _Builder:
    def __init__(self, fake: FakeCluster, run: dict[str, Any], kind: str, pipeline: str, mlmd: Any,
                 cached: bool) -> None:
        self.fake, self.run, self.kind, self.mlmd, self.cached = fake, run, kind, mlmd, cached
        self.ns = run["namespace"]
        self.wf = f"{pipeline}-{uuid.uuid4().hex[:5]}"
        self.uid = str(uuid.uuid4())  # the Workflow's metadata.uid: never what the drivers see
        self.run_id = run["run_id"]  # what `{{workflow.uid}}` becomes in the submitted Workflow (ReplaceUID)
        self.start = parse_time(run["created_at"])
        self.nodes: dict[str, dict[str, Any]] = {}
        self.clock = 0
        self.local_ids = 100  # without an MLMD fake: ids still per run
        self.pods: list[str] = []
        if mlmd is not None:
            mlmd.add_run(self.run_id, pipeline_name=pipeline, namespace=self.ns)

    def _id(self, name: str) -> str:
        return self.wf if name == self.wf else f"{self.wf}-{fnv32a(name)}"

    def _node(self, parent: dict[str, Any] | None, display: str, template: str, node_type: str,
              phase: str = "Succeeded", **extra: Any) -> dict[str, Any]:
        name = display if parent is None else f"{parent['name']}.{display}"
        node_id = self._id(name)
        started = self.start + timedelta(seconds=self.clock)
        self.clock += 2
        node = {"id": node_id, "name": name, "displayName": display, "templateName": template, "type": node_type,
                "phase": phase, "startedAt": rfc3339(started), "finishedAt": rfc3339(started + timedelta(seconds=1)),
                "children": [], **extra}
        if parent is not None:
            parent["children"].append(node_id)
        self.nodes[node_id] = node
        return node

    def _execution(self, type_: str, custom: dict[str, Any], state: str = "COMPLETE") -> int:
        if self.mlmd is None:
            self.local_ids += 1
            return self.local_ids
        return self.mlmd.add_execution(self.run_id, type=type_, state=state, custom=custom)

    def _driver(self, parent: dict[str, Any], display: str, driver_type: str, execution_id: int,
                iterations: int | None = None) -> None:
        template = "system-container-driver" if driver_type == "CONTAINER" else "system-dag-driver"
        node = self._node(parent, display, template, NODE_TYPE[self.kind],
                          inputs={"parameters": [{"name": "driver-type", "value": driver_type}]}
                          if driver_type != "CONTAINER" else {},
                          outputs=driver_outputs(self.kind, driver_type, execution_id, iterations, self.run_id))
        line = f"KFP driver {driver_type} task={display} run_id={self.run_id} workflow={self.wf}"
        if self.kind == "pod":
            pod = self._pod(node, template, ["main", "wait"])
            self.fake.add_log(self.ns, pod, "main", [line, f"execution {execution_id} created"], self.start)
        elif self.kind == "executor-plugin":
            self.fake.add_log(self.ns, self.agent, "driver-plugin", [line], self.start)
        else:
            self.fake.add_log(DRIVER_DEPLOYMENT[0], self.driver_pod, "ml-pipeline-driver",
                              [line, "unrelated request run_id=someone-else workflow=other-wf"], self.start)

    def _pod(self, node: dict[str, Any], template: str, containers: list[str]) -> str:
        name = f"{self.wf}-{template}-{node['id'].rsplit('-', 1)[-1]}"  # v2 pod names (common/util RetrievePodName)
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

    def _executor(self, parent: dict[str, Any], display: str, parent_dag: int, outputs: dict[str, Any], *,
                  retry: bool = False, cached: bool = False, artifact: str = "") -> None:
        custom = {"display_name": display, "task_name": display, "parent_dag_id": parent_dag, "namespace": self.ns,
                  "image": "fake", "pod_name": "", "outputs": outputs}
        if cached:
            custom["cached_execution_id"] = "1"
        execution_id = self._execution("system.ContainerExecution", custom, "CACHED" if cached else "COMPLETE")
        self._driver(parent, f"{display}-driver", "CONTAINER", execution_id)
        prefix = "retry-" if retry else ""
        task = self._node(parent, display, f"{prefix}system-container-executor", "DAG")
        if cached:  # `when: cached-decision != true` is false: Argo skips the pod
            self._node(task, "executor", f"{prefix}system-container-impl", "Skipped", phase="Skipped",
                       message="when 'true != true' evaluated false")
            return
        if retry:
            wrapper = self._node(task, "executor", "retry-system-container-impl", "Retry")
            pod_node = self._node(wrapper, "executor(0)", "retry-system-container-impl", "Pod")
        else:
            pod_node = self._node(task, "executor", "system-container-impl", "Pod")
        pod = self._pod(pod_node, pod_node["templateName"], ["wait", "main"])
        if self.mlmd is not None:  # the launcher's PrePublishExecution records its pod
            self.mlmd.update_execution(execution_id, custom={"pod_name": pod})
            if artifact:
                self.mlmd.add_output_artifact(
                    execution_id, artifact, type="system.Dataset", custom={"rows": 3},
                    uri=f"minio://mlpipeline/v2/artifacts/loops/{self.run_id}/{display}/{uuid.uuid4()}/{artifact}")
        self.fake.add_log(self.ns, pod, "main", [f"hello from {display}", "executor done"], self.start)
        self.fake.add_log(self.ns, pod, "wait", ["argoexec wait: outputs saved"], self.start)

    def build(self) -> None:
        if self.kind != "pod":  # HTTP and plugin templates run in the per-workflow agent pod
            self.agent = f"{self._id('agent')}-agent"
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
        root_dag = self._execution("system.DAGExecution", {"display_name": "", "task_name": ""})
        self._driver(root, "root-driver", "ROOT_DAG", root_dag)
        dag = self._node(root, "root", "root", "DAG")
        self._executor(dag, "producer", root_dag, {"Output": PRODUCER_OUTPUT}, cached=self.cached,
                       artifact="dataset")
        loop = self._node(dag, "for-loop-2", "comp-for-loop-2-for-loop-2-iterator", "DAG")
        iterator = self._execution("system.DAGExecution", {"display_name": "for-loop-2", "task_name": "for-loop-2",
                                                           "parent_dag_id": root_dag, "iteration_count": 2})
        self._driver(loop, "iteration-driver", "DAG", iterator, iterations=2)
        group = self._node(loop, "iteration-iterations", "comp-for-loop-2-iteration", "TaskGroup")
        for index in range(2):
            iteration = self._node(group, f"iteration-iterations({index})", "comp-for-loop-2-iteration", "DAG")
            item_dag = self._execution("system.DAGExecution", {
                "display_name": "for-loop-2", "task_name": "for-loop-2", "parent_dag_id": iterator,
                "iteration_index": index})
            self._driver(iteration, "iteration-item-driver", "DAG", item_dag)
            item = self._node(iteration, "iteration-item", "comp-for-loop-2", "DAG")
            self._executor(item, "consumer", item_dag, {"Output": f"consumed {index}"}, retry=True)
        self._finish()

    def _finish(self) -> None:
        finished = self.start + timedelta(seconds=self.clock + 1)
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                    "metadata": {"name": self.wf, "namespace": self.ns, "uid": self.uid,
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
            {"run_id": self.run["run_id"], "task_id": str(uuid.uuid4()), "display_name": n["displayName"],
             "create_time": n["startedAt"], "start_time": n["startedAt"], "end_time": n["finishedAt"],
             "state": STATE_V2.get(n["phase"], "RUNTIME_STATE_UNSPECIFIED"),
             "child_tasks": [{"pod_name": c} for c in n["children"]]}
            for n in self.nodes.values()]}
        if self.kind != "pod":
            agent = self.agent
            self.fake.on_complete[self.run["run_id"]] = lambda fake: _delete_pod(fake, self.ns, agent)

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
        self.fake.add_log(ns, self.driver_pod, name, [f"old line run_id={self.run_id} from before"], before)
        # the driver's error lines name the run only by run_id, the Workflow UID (handler.go request fields)
        self.fake.add_log(ns, self.driver_pod, name, [
            f"E0401 10:00:00.000000       1 handler.go:120] driver request failed, will be retried: "
            f"run_id={self.run_id} dial tcp: i/o timeout"], self.start)


def _delete_pod(fake: FakeCluster, namespace: str, name: str) -> None:
    """What the workflow controller does at completion to a workflow with task-set nodes."""
    with fake.lock:
        fake.objects.pop(("v1", "pods", namespace, name), None)
        for key in [k for k in fake.logs if k[:2] == (namespace, name)]:
            del fake.logs[key]
        for key in [k for k in fake.files if k[:2] == (namespace, name)]:
            del fake.files[key]
