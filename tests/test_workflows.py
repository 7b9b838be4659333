"""Compiled-workflow comparison (harness/static/workflows.py) on the real KFP trees and on small hand-made workflows."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import HarnessError, SourceError
from harness.models import Severity
from harness.static import workflows as workflows_module
from harness.static.workflows import (
    PairRequest,
    RunViews,
    WorkflowFileError,
    compare_compiled_workflows,
    diff_workflows,
    driver_invocations,
    driver_outputs_exercised,
    load_workflow,
    pair_result,
)

VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")
TRANSPORTS = {"driver-pod": "container", "sidecar-plugin": "plugin", "central-driver": "http"}
GOLDENS = Path("test_data") / "compiled-workflows"
MISSING_FROM_CENTRAL = ("nested_parallel_for_secret.yaml", "parallel_for_mount_pvc.yaml", "parallel_for_secret.yaml",
                        "pipeline_with_parallelfor_pipeline_param.yaml")
ISTIO = "spec.podMetadata.annotations[sidecar.istio.io/inject]"


def _golden(kfp_trees: Path, variant: str, name: str) -> dict[str, Any]:
    return load_workflow(kfp_trees / variant / GOLDENS / f"{name}.yaml")


def _by_task(invocations):
    return {(inv.dag, inv.task): inv for inv in invocations}


@pytest.fixture(scope="module")
def comparisons(kfp_trees):
    """Every ordered pair the tests need, plus each tree with itself (files are parsed once and cached)."""
    pairs = [("driver-pod", "sidecar-plugin"), ("sidecar-plugin", "central-driver"), ("driver-pod", "central-driver")]
    pairs += [(v, v) for v in VARIANTS]
    return {(a, b): compare_compiled_workflows(kfp_trees / a, kfp_trees / b, base_variant=a, other_variant=b)
            for a, b in pairs}


# ------------------------------------------------------------------------- real trees: invocations


@pytest.mark.parametrize("name", ["hello_world", "pipeline_with_condition", "pipeline_with_loops"])
def test_invocations_have_one_shape_across_the_three_transports(kfp_trees, name):
    invocations = {v: driver_invocations(_golden(kfp_trees, v, name)) for v in VARIANTS}
    for variant, found in invocations.items():
        assert found, f"{variant}: no driver invocation found in {name}"
        assert {inv.transport for inv in found} == {TRANSPORTS[variant]}
    shapes = {v: {key: inv.shape() for key, inv in _by_task(found).items()} for v, found in invocations.items()}
    if name == "pipeline_with_loops":
        # The central-driver golden was compiled by an SDK that dropped the `loop_parameter` default, so its
        # root run config is empty: a real content difference, not a transport one.
        root = ("entrypoint", "root-driver")
        assert shapes["sidecar-plugin"][root]["runtime_config"] == {"parameterValues": {"loop_parameter": ["a", "b"]}}
        assert shapes["central-driver"][root]["runtime_config"] == {}
        shapes["central-driver"][root]["runtime_config"] = shapes["sidecar-plugin"][root]["runtime_config"]
    assert shapes["driver-pod"] == shapes["sidecar-plugin"] == shapes["central-driver"]


def test_hello_world_invocations_resolve_concrete_fields(kfp_trees):
    for variant in VARIANTS:
        found = _by_task(driver_invocations(_golden(kfp_trees, variant, "hello_world")))
        assert set(found) == {("entrypoint", "root-driver"), ("root", "echo-driver")}
        root, echo = found[("entrypoint", "root-driver")], found[("root", "echo-driver")]
        assert (root.template, root.driver_type, root.parent_dag_id) == ("system-dag-driver", "ROOT_DAG", "0")
        assert root.component == "{{workflow.parameters.components-root}}"
        assert root.outputs_consumed == {"execution-id": ("root.arguments.parameters[parent-dag-id].value",)}
        assert (echo.template, echo.driver_type, echo.task_name) == ("system-container-driver", "CONTAINER", "echo")
        assert echo.component == "{{workflow.parameters.components-@exec-echo}}"
        assert echo.container == "{{workflow.parameters.implementations-@exec-echo}}"
        assert echo.task_spec["taskInfo"] == {"name": "echo"}
        assert echo.iteration_index == "-1"  # the template input's default, as the driver receives it
        assert echo.parent_dag_id == "{{inputs.parameters.parent-dag-id}}"
        assert echo.settings["pipeline_name"] == "echo"
        assert echo.settings["cache_disabled"] == "false"
        assert echo.outputs_consumed == {
            "cached-decision": ("echo.arguments.parameters[cached-decision].value",),
            "pod-spec-patch": ("echo.arguments.parameters[pod-spec-patch].value",),
        }


def test_condition_and_loop_outputs_are_consumed_by_when_and_with_sequence(kfp_trees):
    for variant in VARIANTS:
        condition = _by_task(driver_invocations(_golden(kfp_trees, variant, "pipeline_with_condition")))
        dag = condition[("root", "condition-1-driver")]
        assert (dag.driver_type, dag.task_name) == ("DAG", "condition-1")
        assert dag.component == "{{workflow.parameters.components-comp-condition-1}}"
        assert dag.task_spec["triggerPolicy"]["condition"].startswith("inputs.parameter_values[")
        assert dag.outputs_consumed["condition"] == ("condition-1.arguments.parameters[condition].value",
                                                     "condition-1.when")
        loops = _by_task(driver_invocations(_golden(kfp_trees, variant, "pipeline_with_loops")))
        iterator = loops[("comp-for-loop-1-for-loop-1-iterator", "iteration-driver")]
        assert iterator.outputs_consumed["iteration-count"] == ("iteration-iterations.withSequence.count",)
        item = loops[("comp-for-loop-1-iteration", "iteration-item-driver")]
        assert item.iteration_index == "{{inputs.parameters.iteration-index}}"


def test_driver_outputs_exercised_lists_only_consumed_outputs(kfp_trees):
    for variant in VARIANTS:
        assert driver_outputs_exercised(_golden(kfp_trees, variant, "hello_world")) == {
            "execution-id", "pod-spec-patch", "cached-decision"}
        assert driver_outputs_exercised(_golden(kfp_trees, variant, "pipeline_with_condition")) == {
            "execution-id", "pod-spec-patch", "cached-decision", "condition"}
        assert "iteration-count" in driver_outputs_exercised(_golden(kfp_trees, variant, "pipeline_with_loops"))


# --------------------------------------------------------------------------- real trees: comparison


def test_istio_pod_metadata_is_one_finding_that_applies_to_every_workflow_pod(comparisons):
    result = comparisons[("driver-pod", "sidecar-plugin")]
    istio = [f for f in result.findings() if f.evidence.get("path") == ISTIO]
    assert len(istio) == 1, [f.message for f in istio]
    finding = istio[0]
    assert (finding.id, finding.severity, finding.expected) == ("workflow.unexpected-difference", Severity.ERROR, False)
    assert finding.evidence["change"] == "added"
    assert finding.evidence["files"] == finding.evidence["compared"] == 138
    assert finding.evidence["every_workflow"] and finding.evidence["applies_to_every_pod"]
    assert finding.evidence["example"]["other"] == "false"
    assert "every compared workflow (138/138)" in finding.message
    assert "every pod of each workflow" in finding.message
    assert finding.variants == ("driver-pod", "sidecar-plugin")


def test_driver_pod_vs_sidecar_finds_the_dropped_ca_bundle_mount(comparisons):
    unexpected = [f for f in comparisons[("driver-pod", "sidecar-plugin")].findings() if not f.expected]
    paths = {f.evidence["path"] for f in unexpected}
    # kfp-variants.md §4: both PoCs drop ConfigureCustomCABundle on drivers.
    assert "templates[system-container-driver].driver.volumeMounts" in paths
    assert "templates[system-dag-driver].volumes" in paths
    mounts = next(f for f in unexpected if f.evidence["path"] == "templates[system-container-driver].driver.volumeMounts")
    assert mounts.evidence["example_files"] == ["mounted_cabundle_configmap.yaml", "mounted_cabundle_secret.yaml"]
    assert mounts.evidence["change"] == "removed"


def test_golden_files_missing_from_central_driver_are_reported(comparisons):
    for pair in [("sidecar-plugin", "central-driver"), ("driver-pod", "central-driver")]:
        result = comparisons[pair]
        assert result.only_in_base == MISSING_FROM_CENTRAL and result.only_in_other == ()
        missing = [f for f in result.findings() if f.id == "workflow.golden-missing"]
        assert sorted(f.subject for f in missing) == [f"compiled-workflows/{n}" for n in MISSING_FROM_CENTRAL]
        assert all(f.severity is Severity.WARNING and f.evidence["missing_from"] == "central-driver" for f in missing)
    assert not [f for f in comparisons[("driver-pod", "sidecar-plugin")].findings() if f.id == "workflow.golden-missing"]


def test_sidecar_vs_central_transport_differences_are_expected(comparisons):
    result = comparisons[("sidecar-plugin", "central-driver")]
    expected = {(f.evidence["path"], f.evidence["change"]): f for f in result.findings() if f.expected}
    for key in [("templates[system-container-driver].kind", "changed"),
                ("templates[system-container-driver].plugin", "removed"),
                ("templates[system-container-driver].http", "added"),
                ("templates[system-dag-driver].outputs.parameters", "removed"),
                ("templates[system-container-driver].args.namespace", "added"),
                ("templates[*].dag.tasks[*].when", "changed"),
                ("templates[*].dag.tasks[*].withSequence.count", "changed"),
                ("templates[*].dag.tasks[*].arguments.parameters[pod-spec-patch].value", "changed")]:
        assert key in expected, key
        assert expected[key].id == "workflow.expected-difference" and expected[key].severity is Severity.INFO
    assert expected[("templates[system-container-driver].kind", "changed")].evidence["example"]["base"] == "plugin"
    assert expected[("templates[system-container-driver].kind", "changed")].evidence["example"]["other"] == "http"
    when = expected[("templates[*].dag.tasks[*].when", "changed")].evidence["example"]
    assert when["reason"] == "consumer reference syntax for driver outputs"
    # No transport detail leaks into the unexpected class.
    unexpected = [f for f in result.findings() if f.id == "workflow.unexpected-difference"]
    for finding in unexpected:
        assert not any(word in finding.evidence["path"] for word in (".plugin", ".http", ".kind", "outputs.parameters",
                                                                        "when", "withSequence"))
    # What is left is content: e.g. CD's removal of KFP_RETRY_INDEX (kfp-variants.md §0).
    assert "templates[*].container.env[KFP_RETRY_INDEX]" in {f.evidence["path"] for f in unexpected}
    summary = result.summary()
    assert summary["transports"] == {"sidecar-plugin": ["plugin"], "central-driver": ["http"]}
    assert summary["invocations"]["sidecar-plugin"] == summary["invocations"]["central-driver"]
    assert set(summary["invocations"]["central-driver"]) == {"ROOT_DAG", "DAG", "CONTAINER"}
    assert summary["differences"]["expected"] > summary["differences"]["unexpected"] > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_tree_compared_with_itself_has_no_finding(comparisons, variant):
    result = comparisons[(variant, variant)]
    assert result.findings() == []
    summary = result.summary()
    assert summary["files_compared"] == (134 if variant == "central-driver" else 138)
    assert summary["differences"] == {"expected": 0, "unexpected": 0}
    assert summary["invocations_matching_files"] == summary["files_compared"]


# ----------------------------------------------------------------------- hand-made workflows: rules

DRIVER_ARGS = {
    "system-container-driver": {
        "type": "CONTAINER", "pipeline_name": "p", "run_id": "{{workflow.uid}}",
        "dag_execution_id": "{{inputs.parameters.parent-dag-id}}", "component": "{{inputs.parameters.component}}",
        "task": "{{inputs.parameters.task}}", "task_name": "{{inputs.parameters.task-name}}",
        "container": "{{inputs.parameters.container}}", "iteration_index": "{{inputs.parameters.iteration-index}}",
        "kubernetes_config": "{{inputs.parameters.kubernetes-config}}",
    },
    "system-dag-driver": {
        "type": "{{inputs.parameters.driver-type}}", "pipeline_name": "p", "run_id": "{{workflow.uid}}",
        "dag_execution_id": "{{inputs.parameters.parent-dag-id}}", "component": "{{inputs.parameters.component}}",
        "task": "{{inputs.parameters.task}}", "task_name": "{{inputs.parameters.task-name}}",
        "runtime_config": "{{inputs.parameters.runtime-config}}", "iteration_index": "{{inputs.parameters.iteration-index}}",
    },
}
DRIVER_OUTPUTS = {"system-container-driver": {"pod-spec-patch": "", "cached-decision": "false", "condition": "true"},
                  "system-dag-driver": {"execution-id": None, "iteration-count": "0", "condition": "true"}}
B64 = ("component", "task", "container", "kubernetes_config", "runtime_config")
HASH = "ab" * 32


def _driver_template(name: str, transport: str) -> dict[str, Any]:
    args = dict(DRIVER_ARGS[name])
    paths = {f"{out.replace('-', '_')}_path": f"{{{{outputs.parameters.{out}.path}}}}" for out in DRIVER_OUTPUTS[name]}
    inputs = {"parameters": [{"name": "component"}, {"name": "task", "default": ""}, {"name": "parent-dag-id", "default": "0"},
                             {"name": "iteration-index", "default": "-1"}, {"name": "driver-type", "default": "DAG"},
                             {"name": "container", "default": ""}, {"name": "kubernetes-config", "default": ""},
                             {"name": "task-name", "default": ""}, {"name": "runtime-config", "default": ""}]}
    template: dict[str, Any] = {"name": name, "inputs": inputs}
    if transport == "container":
        argv = [x for key, value in {**args, **paths}.items() for x in (f"--{key}", value)]
        template["container"] = {"command": ["driver"], "args": argv, "image": "ghcr.io/kubeflow/kfp-driver:latest",
                                  "env": [{"name": "KFP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
    elif transport == "plugin":
        template["plugin"] = {"driver-plugin": {"args": {**args, **paths, "cache_disabled": False}}}
    else:
        body = {k: _b64(v) if k in B64 else v for k, v in args.items()}
        body.update(namespace="{{workflow.namespace}}", cache_disabled=False)
        template["http"] = {"method": "POST", "url": "http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080/api/v1/template.execute",
                            "body": json.dumps(body), "successCondition": "response.statusCode == 200", "timeoutSeconds": 600}
    if transport == "http":
        template["outputs"] = {}
    else:
        key = "path" if transport == "container" else "jsonPath"
        template["outputs"] = {"parameters": [
            {"name": out, "valueFrom": {key: f"/tmp/outputs/{out}" if key == "path" else f"$.{out}",
                                        **({} if default is None else {"default": default})}}
            for out, default in DRIVER_OUTPUTS[name].items()]}
    return template


def _b64(reference: str) -> str:
    """`{{inputs.parameters.x}}` as the central-driver compiler writes it into the HTTP body."""
    name = reference.removeprefix("{{inputs.parameters.").removesuffix("}}")
    return "{{=sprig.b64enc(inputs.parameters['" + name + "'])}}"


def _ref(task: str, output: str, transport: str, style: str = "brackets") -> str:
    if transport != "http":
        return f"{{{{tasks.{task}.outputs.parameters.{output}}}}}"
    path = f"$['{output}']" if style == "brackets" else f"$.{output}"
    return f"{{{{=jsonpath(tasks['{task}'].outputs.result, \"{path}\")}}}}"


def _workflow(transport: str, *, jsonpath_style: str = "brackets") -> dict[str, Any]:
    """A pipeline with a root DAG, one condition DAG and one container task, compiled for `transport`."""
    def ref(task: str, output: str) -> str:
        return _ref(task, output, transport, jsonpath_style)

    def params(**values: str) -> dict[str, Any]:
        return {"parameters": [{"name": k.replace("_", "-"), "value": v} for k, v in values.items()]}

    entrypoint = {"name": "entrypoint", "dag": {"tasks": [
        {"name": "root-driver", "template": "system-dag-driver",
         "arguments": params(component="{{workflow.parameters.components-root}}", runtime_config='{"parameterValues":{}}',
                             driver_type="ROOT_DAG")},
        {"name": "root", "template": "root", "depends": "root-driver.Succeeded",
         "arguments": params(parent_dag_id=ref("root-driver", "execution-id"))},
    ]}}
    root = {"name": "root", "inputs": {"parameters": [{"name": "parent-dag-id"}]}, "dag": {"tasks": [
        {"name": "condition-1-driver", "template": "system-dag-driver",
         "arguments": params(component="{{workflow.parameters.components-comp-condition-1}}", task='{"taskInfo":{"name":"condition-1"}}',
                             task_name="condition-1", parent_dag_id="{{inputs.parameters.parent-dag-id}}")},
        {"name": "condition-1", "template": "comp-condition-1", "depends": "condition-1-driver.Succeeded",
         "when": f"{ref('condition-1-driver', 'condition')} != false",
         "arguments": params(parent_dag_id=ref("condition-1-driver", "execution-id"))},
        {"name": "echo-driver", "template": "system-container-driver",
         "arguments": params(component=f"{{{{workflow.parameters.components-{HASH}}}}}", task='{"taskInfo":{"name":"echo"}}',
                             container=f"{{{{workflow.parameters.implementations-{HASH}}}}}", task_name="echo",
                             parent_dag_id="{{inputs.parameters.parent-dag-id}}")},
        {"name": "echo", "template": "system-container-executor", "depends": "echo-driver.Succeeded",
         "arguments": params(pod_spec_patch=ref("echo-driver", "pod-spec-patch"),
                             cached_decision=ref("echo-driver", "cached-decision"))},
    ]}}
    executor = {"name": "system-container-executor",
                "inputs": {"parameters": [{"name": "pod-spec-patch"}, {"name": "cached-decision", "default": "false"}]},
                "dag": {"tasks": [{"name": "executor", "template": "system-container-impl",
                                   "when": "{{inputs.parameters.cached-decision}} != true",
                                   "arguments": params(pod_spec_patch="{{inputs.parameters.pod-spec-patch}}")}]}}
    impl = {"name": "system-container-impl", "inputs": {"parameters": [{"name": "pod-spec-patch"}]},
            "container": {"image": "gcr.io/ml-pipeline/should-be-overridden-during-runtime", "command": ["x"]},
            "podSpecPatch": "{{inputs.parameters.pod-spec-patch}}", "retryStrategy": {"limit": 2}}
    condition = {"name": "comp-condition-1", "inputs": {"parameters": [{"name": "parent-dag-id"}]}, "dag": {"tasks": []}}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "p-"},
        "spec": {
            "entrypoint": "entrypoint", "serviceAccountName": "pipeline-runner",
            "podMetadata": {"labels": {"pipelines.kubeflow.org/v2_component": "true"}},
            "arguments": {"parameters": [
                {"name": f"components-{HASH}", "value": '{"executorLabel":"exec-echo"}'},
                {"name": f"implementations-{HASH}", "value": '{"image":"python:3.11"}'},
                {"name": "components-comp-condition-1", "value": '{"dag":{"tasks":{}}}'},
                {"name": "components-root", "value": '{"dag":{"tasks":{}}}'},
            ]},
            "templates": [_driver_template("system-container-driver", transport), executor, impl,
                          _driver_template("system-dag-driver", transport), condition, root, entrypoint],
        },
    }


def _task(workflow: dict[str, Any], template: str, task: str) -> dict[str, Any]:
    dag = next(t for t in workflow["spec"]["templates"] if t["name"] == template)
    return next(t for t in dag["dag"]["tasks"] if t["name"] == task)


@pytest.mark.parametrize("base,other", [("container", "plugin"), ("plugin", "http"), ("container", "http")])
def test_transport_change_alone_is_only_expected(base, other):
    a, b = _workflow(base), _workflow(other)
    differences = diff_workflows(a, b)
    assert differences and all(d.expected for d in differences), [d.path for d in differences if not d.expected]
    assert ("templates[system-container-driver].kind", base, other) in [(d.path, d.base, d.other) for d in differences]
    shapes = [[inv.shape() for inv in driver_invocations(w)] for w in (a, b)]
    assert shapes[0] == shapes[1]
    assert driver_outputs_exercised(a) == driver_outputs_exercised(b) == {
        "execution-id", "condition", "pod-spec-patch", "cached-decision"}


def test_http_body_base64_arguments_decode_to_the_plugin_parameter_references():
    plugin, http = driver_invocations(_workflow("plugin")), driver_invocations(_workflow("http"))
    echo = _by_task(http)[("root", "echo-driver")]
    assert echo.transport == "http"
    assert echo.component == "{{workflow.parameters.components-@exec-echo}}"
    assert echo.container == "{{workflow.parameters.implementations-@exec-echo}}"
    assert echo.task_spec == {"taskInfo": {"name": "echo"}}
    assert "namespace" not in echo.settings  # a transport-only argument
    assert [i.shape() for i in plugin] == [i.shape() for i in http]


def test_jsonpath_dot_and_bracket_forms_and_parameter_refs_normalise_equal():
    brackets, dots, params = _workflow("http"), _workflow("http", jsonpath_style="dots"), _workflow("plugin")
    assert diff_workflows(brackets, dots) == []
    when = {d.path: d for d in diff_workflows(params, dots)}["templates[root].dag.tasks[condition-1].when"]
    assert when.expected and when.reason == "consumer reference syntax for driver outputs"
    assert when.base == "tasks.X.outputs.parameters.Y"


def test_changed_when_is_unexpected_with_its_path():
    a, b = _workflow("container"), _workflow("http")
    _task(b, "root", "condition-1")["when"] = "{{=jsonpath(tasks['condition-1-driver'].outputs.result, \"$['condition']\")}} == true"
    unexpected = [d for d in diff_workflows(a, b) if not d.expected]
    assert [(d.path, d.change) for d in unexpected] == [("templates[root].dag.tasks[condition-1].when", "changed")]
    assert unexpected[0].other.endswith("== true")


def test_changed_retry_limit_is_unexpected_with_its_path():
    a, b = _workflow("plugin"), _workflow("plugin")
    next(t for t in b["spec"]["templates"] if t["name"] == "system-container-impl")["retryStrategy"]["limit"] = 5
    assert [(d.path, d.base, d.other, d.expected) for d in diff_workflows(a, b)] == [
        ("templates[system-container-impl].retryStrategy.limit", 2, 5, False)]


def test_driver_argument_change_is_unexpected_but_an_omitted_default_is_not():
    a, b = _workflow("container"), _workflow("plugin")
    b["spec"]["templates"][0]["plugin"]["driver-plugin"]["args"]["cache_disabled"] = True
    unexpected = [d for d in diff_workflows(a, b) if not d.expected]
    assert [(d.path, d.base, d.other) for d in unexpected] == [
        ("templates[system-container-driver].driver.args.cache_disabled", "false", "true")]


def test_driver_volume_mount_dropped_by_a_transport_is_unexpected():
    a, b = _workflow("container"), _workflow("plugin")
    a["spec"]["templates"][0]["container"]["volumeMounts"] = [{"name": "custom-ca", "mountPath": "/kfp/certs"}]
    a["spec"]["templates"][0]["volumes"] = [{"name": "custom-ca", "secret": {"secretName": "ca"}}]
    unexpected = {(d.path, d.change) for d in diff_workflows(a, b) if not d.expected}
    assert unexpected == {("templates[system-container-driver].driver.volumeMounts", "removed"),
                          ("templates[system-container-driver].volumes", "removed")}


def test_hashed_names_and_dependency_order_are_not_differences():
    a = _workflow("plugin")
    b = json.loads(json.dumps(a).replace(HASH, "cd" * 32))
    _task(a, "entrypoint", "root")["depends"] = "root-driver.Succeeded && x.Succeeded"
    _task(b, "entrypoint", "root")["depends"] = "x.Succeeded &&  root-driver.Succeeded"
    assert diff_workflows(a, b) == []


def _write_tree(root: Path, workflows: dict[str, dict[str, Any]]) -> Path:
    goldens = root / GOLDENS
    goldens.mkdir(parents=True)
    for name, workflow in workflows.items():
        (goldens / f"{name}.yaml").write_text(yaml.safe_dump(workflow))
    return root


def test_pod_metadata_added_in_every_workflow_groups_into_one_finding(tmp_path):
    names = ["a", "b", "c"]
    base = _write_tree(tmp_path / "base", {n: _workflow("container") for n in names + ["only-base"]})
    other_workflows = {n: _workflow("http") for n in names}
    for workflow in other_workflows.values():
        workflow["spec"]["podMetadata"]["annotations"] = {"sidecar.istio.io/inject": "false"}
    retry = copy.deepcopy(other_workflows["b"])
    next(t for t in retry["spec"]["templates"] if t["name"] == "system-container-impl")["retryStrategy"]["limit"] = 1
    other_workflows["b"] = retry
    other = _write_tree(tmp_path / "other", other_workflows)

    result = compare_compiled_workflows(base, other, base_variant="x", other_variant="y", mode="static")
    findings = result.findings()
    missing = [f for f in findings if f.id == "workflow.golden-missing"]
    assert [(f.subject, f.mode, f.variants) for f in missing] == [("compiled-workflows/only-base.yaml", "static", ("x", "y"))]
    unexpected = {f.evidence["path"]: f for f in findings if f.id == "workflow.unexpected-difference"}
    assert set(unexpected) == {ISTIO, "templates[system-container-impl].retryStrategy.limit"}
    assert unexpected[ISTIO].evidence["files"] == 3 and unexpected[ISTIO].evidence["every_workflow"]
    assert unexpected[ISTIO].subject == "compiled-workflows/ (3 files)"
    retry_finding = unexpected["templates[system-container-impl].retryStrategy.limit"]
    assert retry_finding.subject == "compiled-workflows/b.yaml" and not retry_finding.evidence["every_workflow"]
    assert all(f.expected and f.severity is Severity.INFO for f in findings if f.id == "workflow.expected-difference")
    assert result.summary()["files_with_unexpected"] == 3


# ------------------------------------------------------------------------------------ bad input


def test_a_file_that_is_not_one_workflow_is_a_one_line_error(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("kind: ConfigMap\n")
    with pytest.raises(WorkflowFileError) as err:
        load_workflow(path)
    assert str(path) in err.value.line() and "\n" not in err.value.line()
    path.write_text("kind: Workflow\nspec: {templates: [{dag: {}}]}\n")
    with pytest.raises(WorkflowFileError, match="has no name"):
        load_workflow(path)
    path.write_text("kind: [unclosed\n")
    with pytest.raises(HarnessError, match="cannot read compiled workflow"):
        load_workflow(path)


def test_a_directory_without_goldens_is_a_source_error(tmp_path, kfp_trees):
    with pytest.raises(SourceError, match="no compiled workflows"):
        compare_compiled_workflows(tmp_path, kfp_trees / "driver-pod", base_variant="a", other_variant="b")


def test_views_memo_belongs_to_one_run_the_next_run_reads_a_changed_golden(tmp_path):
    """Issue 13: the canonical views are remembered per run (StaticContext.workflow_views), not per process.
    Within a run each golden is read once however many pairs use it; a later run with its own memo sees a
    golden edited in between."""
    base = _write_tree(tmp_path / "base", {"a": _workflow("container")})
    other = _write_tree(tmp_path / "other", {"a": _workflow("container")})
    first_run = RunViews()
    compare = dict(base_variant="x", other_variant="y", mode="static")
    assert compare_compiled_workflows(base, other, views=first_run, **compare).findings() == []
    assert sorted(first_run.views) == sorted(str(p.resolve()) for p in (base / GOLDENS / "a.yaml",
                                                                          other / GOLDENS / "a.yaml"))
    again = compare_compiled_workflows(base, other, views=first_run, **compare)
    assert again.results[0].base_invocations is compare_compiled_workflows(
        base, other, views=first_run, **compare).results[0].base_invocations  # read once per run

    edited = _workflow("container")
    _task(edited, "root", "condition-1")["when"] = "false"
    (other / GOLDENS / "a.yaml").write_text(yaml.safe_dump(edited))
    next_run = compare_compiled_workflows(base, other, views=RunViews(), **compare).findings()
    assert {(f.id, f.evidence["example"]["path"]) for f in next_run} == {
        ("workflow.unexpected-difference", "templates[root].dag.tasks[condition-1].when")}


def test_a_pairs_result_is_kept_on_disk_by_content_and_recomputed_when_a_golden_changes(tmp_path, monkeypatch):
    """A warm run reads each pair's findings and summary from the cache without parsing a golden; an edited
    golden, another mode or other variant names are another entry."""
    base = _write_tree(tmp_path / "base", {"a": _workflow("container")})
    other = _write_tree(tmp_path / "other", {"a": _workflow("http")})
    cache = tmp_path / "cache"
    request = PairRequest(str(base), str(other), "x", "y", "static")
    cold = pair_result(request, cache)
    assert cold[1]["files_compared"] == 1 and len(list((cache / "workflows").glob("*.pickle"))) == 1

    def no_parsing(*_args, **_kwargs):
        raise AssertionError("a kept result was parsed again")

    monkeypatch.setattr(workflows_module, "load_workflow", no_parsing)
    warm = pair_result(request, cache, RunViews())
    assert [f.to_dict() for f in warm[0]] == [f.to_dict() for f in cold[0]] and warm[1] == cold[1]
    for changed in (dataclasses.replace(request, mode="tls"), dataclasses.replace(request, other_variant="z")):
        assert changed.cache_file(cache) != request.cache_file(cache)
    monkeypatch.undo()

    edited = _workflow("http")
    _task(edited, "root", "condition-1")["when"] = "false"
    (other / GOLDENS / "a.yaml").write_text(yaml.safe_dump(edited))
    assert request.cache_file(cache) not in set((cache / "workflows").glob("*.pickle"))
    recomputed = pair_result(request, cache)
    assert ("workflow.unexpected-difference", "templates[root].dag.tasks[condition-1].when") in {
        (f.id, f.evidence["example"]["path"]) for f in recomputed[0]}
