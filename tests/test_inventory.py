"""Inventory diff: hand-written cases for each rule, then the real shared trees."""

from __future__ import annotations

import copy
import json

from harness.static.inventory import describe, diff_inventories, field_changes

DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ml-pipeline", "namespace": "kubeflow"},
    "spec": {"template": {"spec": {"containers": [
        {"name": "ml-pipeline-api-server", "image": "api:1",
         "env": [{"name": "V2_DRIVER_IMAGE", "value": "driver:1"}, {"name": "LOG_LEVEL", "value": "info"}]},
        {"name": "sidecar", "image": "side:1"},
    ]}}},
}
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "kubeflow"},
      "data": {"sidecar.container": "image: x"}}
CRB = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"}}


def test_added_removed_changed_are_keyed_by_group_kind_namespace_name():
    other_cm = {**CM, "metadata": {"name": "cm2", "namespace": "kubeflow"}}
    diff = diff_inventories([DEPLOY, CM], [DEPLOY, other_cm, CRB])
    assert [describe(k) for k in diff.added] == ["ConfigMap kubeflow/cm2", "ClusterRoleBinding crb"]
    assert [describe(k) for k in diff.removed] == ["ConfigMap kubeflow/cm"]
    assert diff.changed == {}
    assert diff.unchanged == 1


def test_env_change_is_reported_with_named_path():
    new = copy.deepcopy(DEPLOY)
    new["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "driver:2"
    changes = field_changes(DEPLOY, new)
    assert [(c.path, c.change, c.old, c.new) for c in changes] == [
        ("spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE].value", "changed",
         "driver:1", "driver:2")]


def test_reordering_named_list_items_is_not_a_change():
    new = copy.deepcopy(DEPLOY)
    spec = new["spec"]["template"]["spec"]
    spec["containers"].reverse()
    spec["containers"][1]["env"].reverse()
    diff = diff_inventories([DEPLOY], [new])
    assert diff.empty and diff.unchanged == 1


def test_removed_env_and_dotted_map_key_paths():
    new = copy.deepcopy(DEPLOY)
    del new["spec"]["template"]["spec"]["containers"][0]["env"][0]
    cm = copy.deepcopy(CM)
    cm["data"]["sidecar.container"] = "image: y"
    diff = diff_inventories([DEPLOY, CM], [new, cm])
    paths = {describe(k): [(c.path, c.change) for c in v] for k, v in diff.changed.items()}
    assert paths == {
        "Deployment kubeflow/ml-pipeline": [
            ("spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE]", "removed")],
        "ConfigMap kubeflow/cm": [("data[sidecar.container]", "changed")],
    }


def test_unnamed_list_change_reports_index():
    old = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    new = copy.deepcopy(old)
    new["spec"]["ports"].append({"port": 443})
    assert [(c.path, c.change, c.new) for c in field_changes(old, new)] == [
        ("spec.ports[1]", "added", {"port": 443})]


def test_findings_and_summary_are_serialisable():
    new = copy.deepcopy(DEPLOY)
    new["spec"]["template"]["spec"]["containers"][1]["image"] = "side:2"
    diff = diff_inventories([DEPLOY, CM], [new, CRB])
    findings = diff.findings(mode="standalone", variants=("a", "b"))
    assert sorted((f.id, f.severity.value, f.subject) for f in findings) == [
        ("inventory.added", "info", "ClusterRoleBinding crb"),
        ("inventory.changed", "info", "Deployment kubeflow/ml-pipeline"),
        ("inventory.removed", "warning", "ConfigMap kubeflow/cm"),
    ]
    json.dumps(diff.summary())
    json.dumps([f.to_dict() for f in findings])


# --- the real shared trees --------------------------------------------------------------------------


def test_real_central_driver_vs_sidecar_plugin_standalone(install_render):
    base = install_render("sidecar-plugin", "standalone").manifests
    other = install_render("central-driver", "standalone").manifests
    diff = diff_inventories(base, other)
    added = {describe(k) for k in diff.added}
    removed = {describe(k) for k in diff.removed}
    assert {"Deployment kubeflow/ml-pipeline-driver", "Service kubeflow/ml-pipeline-driver",
            "ServiceAccount kubeflow/ml-pipeline-driver"} <= added
    assert {"ConfigMap kubeflow/ml-pipeline-driver-agent",
            "ServiceAccount kubeflow/ml-pipeline-driver-agent-executor-plugin"} <= removed
    apiserver = diff.summary()["changed"]["Deployment kubeflow/ml-pipeline"]
    assert {"path": "spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE]",
            "change": "removed", "old": {"name": "V2_DRIVER_IMAGE", "value": "kind-registry:5000/driver:ci"},
            "new": None} in apiserver
    controller = diff.summary()["changed"]["Deployment kubeflow/workflow-controller"]
    assert any(c["path"].endswith("env[ARGO_EXECUTOR_PLUGINS]") and c["change"] == "removed" for c in controller)


def test_real_tree_against_itself_has_no_findings(install_render):
    render = install_render("sidecar-plugin", "multi-user").manifests
    diff = diff_inventories(render, copy.deepcopy(render))
    assert diff.empty and diff.unchanged == len({(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"])
                                                 for m in render})
    assert diff.findings(mode="multi-user", variants=("sidecar-plugin", "sidecar-plugin")) == []
