"""Static orphans: what `kubectl apply` of the new variant leaves behind, and immutable-field conflicts."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from harness.config import load_config
from harness.static.orphans import apply_conflicts, rollback_orphans, static_orphans

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ml-pipeline-driver-agent", "namespace": "kubeflow"}}
SA = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "keep", "namespace": "kubeflow"}}
RB = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "kubeflow"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}, "subjects": []}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "kubeflow"},
          "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}}}}


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_objects_missing_from_new_render_are_orphans():
    found = static_orphans([CM, SA], [SA], mode="standalone", variants=("old", "new"))
    assert [(f.id, f.severity.value, f.subject) for f in found] == [
        ("migration.orphan", "warning", "ConfigMap kubeflow/ml-pipeline-driver-agent")]
    assert found[0].evidence["cleanup"] == "kubectl delete configmap ml-pipeline-driver-agent -n kubeflow"
    assert found[0].evidence["origin"] == "render"


def test_immutable_field_changes_are_apply_conflicts():
    rb2 = copy.deepcopy(RB)
    rb2["roleRef"]["name"] = "b"
    rb2["subjects"] = [{"kind": "ServiceAccount", "name": "x"}]  # mutable: no conflict by itself
    d2 = copy.deepcopy(DEPLOY)
    d2["spec"]["selector"]["matchLabels"]["tier"] = "x"
    found = static_orphans([RB, DEPLOY], [rb2, d2], mode="m", variants=("old", "new"))
    assert sorted((f.id, f.subject, tuple(c["path"] for c in f.evidence["conflicts"])) for f in found) == [
        ("migration.apply-conflict", "Deployment kubeflow/d", ("spec.selector",)),
        ("migration.apply-conflict", "RoleBinding kubeflow/rb", ("roleRef",)),
    ]


def test_unset_immutable_field_is_not_a_conflict():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    pinned = copy.deepcopy(svc)
    pinned["spec"]["clusterIP"] = "None"
    assert apply_conflicts(svc, pinned) == []  # the API server defaulted it; a None-vs-IP change shows only when both set
    other = copy.deepcopy(svc)
    other["spec"]["clusterIP"] = "10.0.0.1"
    assert apply_conflicts(pinned, other) == [{"path": "spec.clusterIP", "old": "None", "new": "10.0.0.1"}]


def test_profile_objects_are_bound_to_the_user_namespace(config):
    template = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"},
                "subjects": [{"namespace": "{profile}"}]}
    team = dataclasses.replace(config.mode("multi-user"), user_namespace="team-a")
    bound = dataclasses.replace(config, mode_profile_resources={"multi-user": (template,)}).profile_objects(
        dataclasses.replace(config.variant("sidecar-plugin"), profile_resources=()), team)
    assert bound[0]["metadata"]["namespace"] == "team-a" and bound[0]["subjects"][0]["namespace"] == "team-a"
    assert config.profile_objects(config.variant("sidecar-plugin"), config.mode("standalone")) == []
    objs = config.profile_objects(config.variant("sidecar-plugin"), config.mode("multi-user"))
    assert {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs} >= {
        ("ServiceAccount", "kubeflow-user-example-com", "default-editor"),
        ("ServiceAccount", "kubeflow-user-example-com", "ml-pipeline-driver-agent-executor-plugin")}


def test_rollback_swaps_direction():
    found = rollback_orphans([SA], [SA, CM], mode="m", variants=("old", "new"))
    assert [(f.subject, f.variants, f.evidence["direction"]) for f in found] == [
        ("ConfigMap kubeflow/ml-pipeline-driver-agent", ("new", "old"), "rollback")]


# --- the real shared trees --------------------------------------------------------------------------


def test_real_sidecar_to_central_standalone_names_the_leftovers(install_render):
    old = install_render("sidecar-plugin", "standalone").manifests
    new = install_render("central-driver", "standalone").manifests
    found = static_orphans(old, new, mode="standalone", variants=("sidecar-plugin", "central-driver"))
    assert {f.subject for f in found if f.id == "migration.orphan"} >= {
        "ConfigMap kubeflow/ml-pipeline-driver-agent",
        "ServiceAccount kubeflow/ml-pipeline-driver-agent-executor-plugin",
        "Secret kubeflow/ml-pipeline-driver-agent-executor-plugin.service-account-token",
        "Role kubeflow/ml-pipeline-executor-plugin-role",
        "RoleBinding kubeflow/ml-pipeline-driver-agent-executor-plugin-binding",
    }
    # objects both variants install are not orphans
    assert "Deployment kubeflow/ml-pipeline" not in {f.subject for f in found}


def test_real_sidecar_to_central_multi_user_includes_profile_namespace_objects(install_render, config):
    mode = config.mode("multi-user")
    old_v, new_v = config.variant("sidecar-plugin"), config.variant("central-driver")
    found = static_orphans(
        install_render("sidecar-plugin", "multi-user").manifests, install_render("central-driver", "multi-user").manifests,
        old_profile=config.profile_objects(old_v, mode), new_profile=config.profile_objects(new_v, mode),
        mode="multi-user", variants=("sidecar-plugin", "central-driver"))
    by_subject = {f.subject: f for f in found if f.id == "migration.orphan"}
    assert by_subject["ClusterRole ml-pipeline-driver-agent-executor-plugin-cluster-role"].evidence["origin"] == "render"
    for subject in ("ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin",
                    "RoleBinding kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin-binding",
                    "Secret kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin.service-account-token"):
        assert by_subject[subject].evidence["origin"] == "profile-controller"
    # both variants' profile controllers create default-editor's token Secret: not an orphan
    assert "Secret kubeflow-user-example-com/default-editor.service-account-token" not in by_subject
    assert "ServiceAccount kubeflow-user-example-com/default-editor" not in by_subject


def test_real_rollback_central_to_sidecar_leaves_the_driver_service(install_render):
    found = rollback_orphans(install_render("sidecar-plugin", "standalone").manifests,
                             install_render("central-driver", "standalone").manifests,
                             mode="standalone", variants=("sidecar-plugin", "central-driver"))
    subjects = {f.subject for f in found}
    assert {"Deployment kubeflow/ml-pipeline-driver", "Service kubeflow/ml-pipeline-driver"} <= subjects
    assert all(f.variants == ("central-driver", "sidecar-plugin") for f in found)


@pytest.mark.parametrize("mode", ["standalone", "multi-user", "tls"])
def test_real_tree_against_itself_has_no_orphans(install_render, config, mode):
    render = install_render("sidecar-plugin", mode).manifests
    profile = config.profile_objects(config.variant("sidecar-plugin"), config.mode(mode))
    assert static_orphans(render, copy.deepcopy(render), old_profile=profile, new_profile=profile, mode=mode,
                          variants=("sidecar-plugin", "sidecar-plugin")) == []
