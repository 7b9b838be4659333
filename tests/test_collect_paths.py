"""Task paths and driver records from Argo status.nodes (pure: no cluster, nothing faked)."""

from __future__ import annotations

from harness.live.collect import nodes_to_records, task_paths


def _node(node_id: str, display: str, template: str, node_type: str, children=(), phase="Succeeded", **extra):
    return {"id": node_id, "displayName": display, "templateName": template, "type": node_type,
            "phase": phase, "children": list(children), **extra}


def test_retry_wrapped_driver_pods_keep_one_driver_record_and_task_path() -> None:
    # driver-pod upstream adds templateDefaults.retryStrategy (kfp-variants.md §1.2): pods sit under Retry nodes
    nodes = {n["id"]: n for n in [
        _node("wf", "wf", "entrypoint", "DAG", ["r", "d"]),
        _node("r", "root-driver", "system-dag-driver", "Retry", ["r0"],
              outputs={"parameters": [{"name": "execution-id", "value": "7"}]}),
        _node("r0", "root-driver(0)", "system-dag-driver", "Pod",
              outputs={"parameters": [{"name": "execution-id", "value": "7"}]}),
        _node("d", "root", "root", "DAG", ["pd", "p"]),
        _node("pd", "print-driver", "system-container-driver", "Retry", ["pd0", "pd1"], phase="Succeeded"),
        _node("pd0", "print-driver(0)", "system-container-driver", "Pod", phase="Error"),
        _node("pd1", "print-driver(1)", "system-container-driver", "Pod"),
        _node("p", "print", "system-container-executor", "DAG", ["pe"], phase="Failed"),
        _node("pe", "executor", "system-container-impl", "Retry", ["pe0"], phase="Failed"),
        _node("pe0", "executor(0)", "system-container-impl", "Pod", phase="Failed"),
    ]}
    paths = task_paths(nodes, "wf")
    assert paths["pd0"] == paths["pd1"] == paths["pd"] == "root/print"
    assert paths["pe0"] == "root/print"
    tasks, drivers = nodes_to_records({"metadata": {"name": "wf"}, "status": {"nodes": nodes}})
    assert [(d["task_path"], d["driver_type"], d["node_type"]) for d in drivers] == [
        ("root", "ROOT_DAG", "Retry"), ("root/print", "CONTAINER", "Retry")]
    assert drivers[0]["outputs"] == {"parameters": {"execution-id": "7"}}
    assert {t["path"]: t["state"] for t in tasks} == {"root": "SUCCEEDED", "root/print": "FAILED"}


def test_iteration_with_item_suffix_gets_index() -> None:
    nodes = {n["id"]: n for n in [
        _node("wf", "wf", "entrypoint", "DAG", ["d"]),
        _node("d", "root", "root", "DAG", ["l"]),
        _node("l", "for-loop-3", "comp-for-loop-3-iterator", "DAG", ["g"]),
        _node("g", "iteration-iterations", "comp-for-loop-3-iteration", "TaskGroup", ["i0", "i1"]),
        _node("i0", "iteration-iterations(0:a)", "comp-for-loop-3-iteration", "DAG"),
        _node("i1", "iteration-iterations(1:b)", "comp-for-loop-3-iteration", "DAG"),
    ]}
    paths = task_paths(nodes, "wf")
    assert (paths["i0"], paths["i1"]) == ("root/for-loop-3[0]", "root/for-loop-3[1]")


def test_retry_system_container_executor_pod_belongs_to_its_task() -> None:
    # a component with a retry policy compiles to retry-system-container-executor/-impl
    # (test_data/compiled-workflows/pipeline_with_retry.yaml in every tree)
    nodes = {n["id"]: n for n in [
        _node("wf", "wf", "entrypoint", "DAG", ["d"]),
        _node("d", "root", "root", "DAG", ["t"]),
        _node("t", "fail", "retry-system-container-executor", "DAG", ["r"]),
        _node("r", "executor", "retry-system-container-impl", "Retry", ["a0", "a1"]),
        _node("a0", "executor(0)", "retry-system-container-impl", "Pod", phase="Failed"),
        _node("a1", "executor(1)", "retry-system-container-impl", "Pod"),
    ]}
    assert set(task_paths(nodes, "wf").values()) == {"", "root", "root/fail"}
    tasks, _ = nodes_to_records({"metadata": {"name": "wf"}, "status": {"nodes": nodes}})
    assert {t["path"]: t["state"] for t in tasks} == {"root": "SUCCEEDED", "root/fail": "SUCCEEDED"}


def test_cache_hit_task_is_the_executor_dag_node_whatever_the_node_ids() -> None:
    # node ids are `<wf>-<fnv32a(name)>` (Argo NodeID): the Skipped pod child may sort before its task node
    nodes = {n["id"]: n for n in [
        _node("wf", "wf", "entrypoint", "DAG", ["wf-9"]),
        _node("wf-9", "root", "root", "DAG", ["wf-5"]),
        _node("wf-5", "producer", "system-container-executor", "DAG", ["wf-1"]),
        _node("wf-1", "executor", "system-container-impl", "Skipped", phase="Skipped"),
    ]}
    tasks, _ = nodes_to_records({"metadata": {"name": "wf"}, "status": {"nodes": nodes}}, ())
    assert {t["path"]: t["state"] for t in tasks}["root/producer"] == "SUCCEEDED"


def test_task_details_join_nodes_by_display_name_children_and_start() -> None:
    from harness.live.collect import details_by_node

    nodes = {n["id"]: n for n in [
        _node("wf-1", "consumer", "system-container-executor", "DAG", ["wf-2"], startedAt="2026-01-01T00:00:01Z"),
        _node("wf-3", "consumer", "system-container-executor", "DAG", ["wf-4"], startedAt="2026-01-01T00:00:01Z"),
        _node("wf-2", "executor", "system-container-impl", "Pod", startedAt="2026-01-01T00:00:02Z"),
        _node("wf-4", "executor", "system-container-impl", "Pod", startedAt="2026-01-01T00:00:02Z"),
    ]}
    details = [{"task_id": "0b6c…", "display_name": "consumer", "start_time": "2026-01-01T00:00:01Z",
                "state": "FAILED", "child_tasks": [{"pod_name": "wf-4"}]},
               {"task_id": "7d1e…", "display_name": "consumer", "start_time": "2026-01-01T00:00:01Z",
                "state": "SUCCEEDED", "child_tasks": [{"pod_name": "wf-2"}]},
               {"task_id": "a", "display_name": "executor", "start_time": "2026-01-01T00:00:02Z"},
               {"task_id": "b", "display_name": "executor", "start_time": "2026-01-01T00:00:02Z"}]
    matched = details_by_node(nodes, details)
    assert matched["wf-3"]["state"] == "FAILED" and matched["wf-1"]["state"] == "SUCCEEDED"
    assert "wf-2" not in matched and "wf-4" not in matched  # ambiguous: the node phase decides
