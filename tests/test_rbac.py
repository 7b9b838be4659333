"""The static RBAC evaluator: one hand-written case per Kubernetes authorization rule (allowed AND denied),
then the real KFP trees rendered offline (facts from kfp-variants.md §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.config import load_config
from harness.models import Identity, Severity
from harness.rbac import evaluator as rbac
from harness.render.kustomize import Renderer

RBAC_API = "rbac.authorization.k8s.io/v1"
SA = Identity("ns1", "driver")
CHANGE_IDS = {"rbac.permission-gained", "rbac.permission-lost", "rbac.permission-broadened",
              "rbac.permission-narrowed"}


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = None, labels: dict[str, str] | None = None,
         selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": RBAC_API, "kind": "Role" if namespace else "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}}, "rules": rules}
    if namespace:
        doc["metadata"]["namespace"] = namespace
    if selectors is not None:
        doc["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return doc


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, str]],
            namespace: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": RBAC_API, "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
                           "metadata": {"name": name},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
                           "subjects": subjects}
    if namespace:
        doc["metadata"]["namespace"] = namespace
    return doc


def sa_subject(identity: Identity = SA) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": identity.name, "namespace": identity.namespace}


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None,
         names: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"apiGroups": groups if groups is not None else [""], "resources": resources, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def cluster_wide(rules: list[dict[str, Any]], subject: Identity = SA) -> rbac.RbacIndex:
    """`rules` in a ClusterRole bound to `subject` by a ClusterRoleBinding."""
    return rbac.index_manifests([role("r", rules), binding("b", "ClusterRole", "r", [sa_subject(subject)])])


# ---------------------------------------------------------------- aggregation


def test_aggregation_unions_roles_matching_labels_and_expressions_and_replaces_own_rules():
    index = rbac.index_manifests([
        # labelled to match its own selector: the controller still skips the role itself
        role("agg", [rule(["get"], ["nodes"])], labels={"agg": "true", "tier": "gold"}, selectors=[
            {"matchLabels": {"agg": "true"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]},
            {"matchExpressions": [{"key": "extra", "operator": "Exists"},
                                  {"key": "legacy", "operator": "DoesNotExist"}]},
        ]),
        role("gold", [rule(["get"], ["pods"])], labels={"agg": "true", "tier": "gold"}),
        role("silver", [rule(["get"], ["secrets"])], labels={"agg": "true", "tier": "silver"}),  # expression fails
        role("off", [rule(["get"], ["configmaps"])], labels={"agg": "false", "tier": "gold"}),  # label differs
        role("extra", [rule(["list"], ["services"])], labels={"extra": "x"}),
        role("legacy", [rule(["list"], ["events"])], labels={"extra": "x", "legacy": "1"}),
        binding("b", "ClusterRole", "agg", [sa_subject()]),
    ])
    assert rbac.can(index, SA, "get", "pods", "ns1")
    assert rbac.can(index, SA, "list", "services", "ns1")
    assert not rbac.can(index, SA, "get", "secrets", "ns1")
    assert not rbac.can(index, SA, "get", "configmaps", "ns1")
    assert not rbac.can(index, SA, "list", "events", "ns1")
    # the controller overwrites an aggregated role's own rules
    assert not rbac.can(index, SA, "get", "nodes", "")
    origins = {g.via for g in rbac.grants(index, SA)}
    assert "ClusterRoleBinding b -> ClusterRole agg (aggregated from ClusterRole gold)" in origins


AGGREGATING = [
    role("outer", [], selectors=[{"matchLabels": {"level": "inner"}}]),
    role("inner", [], labels={"level": "inner"},
         selectors=[{"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}]),
    role("dev", [rule(["get"], ["pods"])], labels={"env": "dev"}),
    role("nolabel", [rule(["get"], ["services"])]),
    role("prod", [rule(["get"], ["secrets"])], labels={"env": "prod"}),
    binding("b", "ClusterRole", "outer", [sa_subject()]),
]


def test_aggregation_notin_matches_missing_label_and_nested_aggregation_reaches_fixed_point():
    index = rbac.index_manifests(AGGREGATING, builtins=rbac.BuiltinRoles("", ""))  # the render's roles alone
    assert rbac.can(index, SA, "get", "pods", "ns1")
    assert rbac.can(index, SA, "get", "services", "ns1")  # NotIn matches a role without the label
    assert not rbac.can(index, SA, "get", "secrets", "ns1")


def test_aggregation_notin_also_gathers_the_clusters_built_in_roles():
    """On a real cluster the same selector also matches every built-in ClusterRole without an `env` label
    (`admin`, `edit`, `cluster-admin`...): the aggregation controller sees all ClusterRoles. With the real
    apiserver's roles loaded (the default), the evaluator says so."""
    index = rbac.index_manifests(AGGREGATING)
    assert rbac.builtin_cluster_roles().version
    assert rbac.can(index, SA, "get", "secrets", "ns1")


def test_aggregation_with_invalid_operator_is_reported_and_matches_nothing():
    index = rbac.index_manifests([
        role("agg", [], selectors=[{"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}]),
        role("any", [rule(["get"], ["pods"])], labels={"a": "x"}),
        binding("b", "ClusterRole", "agg", [sa_subject()]),
    ])
    assert not rbac.can(index, SA, "get", "pods", "ns1")
    assert any("Like" in p for p in index.problems)


# ---------------------------------------------------------------- resourceNames


def test_resource_names_restrict_only_named_requests():
    index = cluster_wide([rule(["get", "list", "create"], ["secrets"], names=["artifact"])])
    assert rbac.can(index, SA, "get", "secrets", "ns1", name="artifact")
    assert not rbac.can(index, SA, "get", "secrets", "ns1", name="other")
    assert not rbac.can(index, SA, "get", "secrets", "ns1")  # unnamed request
    assert not rbac.can(index, SA, "list", "secrets", "ns1")  # a plain list names nothing
    assert rbac.can(index, SA, "list", "secrets", "ns1", name="artifact")  # list with a name fieldSelector
    assert not rbac.can(index, SA, "create", "secrets", "ns1")  # create carries no name: never matches


# ---------------------------------------------------------------- subresources


def test_subresources_need_their_own_rule_or_a_star_slash_subresource():
    index = cluster_wide([
        rule(["get"], ["pods/log"]),
        rule(["update"], ["*/status"], groups=["argoproj.io"]),
        rule(["patch"], ["*/scale"], groups=["apps"]),
        rule(["list"], ["services"]),
    ])
    assert rbac.can(index, SA, "get", "pods/log", "ns1")
    assert rbac.can(index, SA, "get", "pods", "ns1", subresource="log")
    assert not rbac.can(index, SA, "get", "pods", "ns1")
    assert not rbac.can(index, SA, "get", "pods/exec", "ns1")
    assert rbac.can(index, SA, "update", "workflowtasksets/status", "ns1", api_group="argoproj.io")
    assert rbac.can(index, SA, "update", "workflows", "ns1", api_group="argoproj.io", subresource="status")
    assert not rbac.can(index, SA, "update", "workflowtasksets", "ns1", api_group="argoproj.io")
    assert not rbac.can(index, SA, "update", "workflowtasksets/finalizers", "ns1", api_group="argoproj.io")
    assert rbac.can(index, SA, "patch", "deployments/scale", "ns1", api_group="apps")
    assert not rbac.can(index, SA, "patch", "deployments", "ns1", api_group="apps")
    assert not rbac.can(index, SA, "list", "services/proxy", "ns1")  # a resource rule never covers a subresource


# ---------------------------------------------------------------- wildcards


def test_wildcards_in_verbs_api_groups_and_resources():
    verbs = cluster_wide([rule(["*"], ["pods"])])
    assert rbac.can(verbs, SA, "delete", "pods", "ns1") and rbac.can(verbs, SA, "escalate", "pods", "ns1")
    assert not rbac.can(verbs, SA, "delete", "pods", "ns1", api_group="apps")
    assert not rbac.can(verbs, SA, "delete", "services", "ns1")
    groups = cluster_wide([rule(["get"], ["deployments"], groups=["*"])])
    assert rbac.can(groups, SA, "get", "deployments", "ns1", api_group="apps")
    assert rbac.can(groups, SA, "get", "deployments", "ns1", api_group="extensions")
    assert not rbac.can(groups, SA, "list", "deployments", "ns1", api_group="apps")
    resources = cluster_wide([rule(["get"], ["*"], groups=["argoproj.io"])])
    assert rbac.can(resources, SA, "get", "workflows", "ns1", api_group="argoproj.io")
    assert rbac.can(resources, SA, "get", "workflowtasksets/status", "ns1", api_group="argoproj.io")
    assert not rbac.can(resources, SA, "get", "pods", "ns1")  # core group not matched


# ---------------------------------------------------------------- binding scope


def test_cluster_role_through_role_binding_applies_only_in_the_binding_namespace():
    index = rbac.index_manifests([
        role("reader", [rule(["get"], ["pods"])]),
        binding("b", "ClusterRole", "reader", [sa_subject()], namespace="ns2"),
    ])
    assert rbac.can(index, SA, "get", "pods", "ns2")
    assert not rbac.can(index, SA, "get", "pods", "ns1")
    assert not rbac.can(index, SA, "get", "pods", "")  # cluster-scoped request
    assert [g.scope for g in rbac.grants(index, SA)] == ["namespace:ns2"]


def test_cluster_role_binding_grants_every_namespace_and_cluster_scoped_requests():
    index = cluster_wide([rule(["list"], ["namespaces", "pods"])])
    assert rbac.can(index, SA, "list", "namespaces", "")
    assert rbac.can(index, SA, "list", "pods", "any-namespace")
    assert not rbac.can(index, SA, "get", "pods", "any-namespace")
    assert {g.scope for g in rbac.grants(index, SA)} == {"cluster"}


def test_role_binding_uses_role_of_its_own_namespace_only():
    index = rbac.index_manifests([
        role("r", [rule(["get"], ["pods"])], namespace="ns2"),
        binding("b", "Role", "r", [sa_subject()], namespace="ns1"),  # Role r lives in ns2: dangling
        binding("ok", "Role", "r", [sa_subject()], namespace="ns2"),
    ])
    assert rbac.can(index, SA, "get", "pods", "ns2")
    assert not rbac.can(index, SA, "get", "pods", "ns1")
    assert [b.ref for b in index.dangling] == ["RoleBinding ns1/b"]


def test_role_binding_service_account_subject_namespace_defaults_to_the_binding_namespace():
    index = rbac.index_manifests([
        role("r", [rule(["get"], ["pods"])], namespace="ns1"),
        binding("b", "Role", "r", [{"kind": "ServiceAccount", "name": "driver"}], namespace="ns1"),
        role("c", [rule(["get"], ["nodes"])]),
        binding("cb", "ClusterRole", "c", [{"kind": "ServiceAccount", "name": "driver"}]),  # no namespace: nobody
    ])
    assert rbac.can(index, SA, "get", "pods", "ns1")
    assert not rbac.can(index, Identity("ns2", "driver"), "get", "pods", "ns1")
    assert not rbac.can(index, SA, "get", "nodes", "")


# ---------------------------------------------------------------- subjects


@pytest.mark.parametrize(("subject", "allowed", "denied"), [
    ({"kind": "Group", "name": "system:serviceaccounts:ns1"}, [Identity("ns1", "x")], [Identity("ns2", "x")]),
    ({"kind": "Group", "name": "system:serviceaccounts"}, [Identity("ns1", "x"), Identity("ns2", "y")], []),
    ({"kind": "Group", "name": "system:authenticated"}, [Identity("ns2", "y")], []),
    ({"kind": "User", "name": "system:serviceaccount:ns1:driver"}, [SA], [Identity("ns1", "other")]),
    ({"kind": "Group", "name": "developers"}, [], [SA]),
    ({"kind": "User", "name": "alice"}, [], [SA]),
])
def test_group_and_user_subjects_cover_service_accounts_like_the_authorizer(subject, allowed, denied):
    index = rbac.index_manifests([role("r", [rule(["get"], ["pods"])], namespace="ns1"),
                                  binding("b", "Role", "r", [subject], namespace="ns1")])
    for sa in allowed:
        assert rbac.can(index, sa, "get", "pods", "ns1"), sa
        assert rbac.grants(index, sa)[0].via == f"RoleBinding ns1/b -> Role ns1/r (as {subject['kind']} {subject['name']})"
    for sa in denied:
        assert not rbac.can(index, sa, "get", "pods", "ns1"), sa
        assert rbac.grants(index, sa) == []


def test_dangling_role_ref_grants_nothing_and_is_reported():
    index = rbac.index_manifests([
        binding("b", "ClusterRole", "missing", [sa_subject()], namespace="ns1"),
        binding("cb", "Role", "r", [sa_subject()]),  # a ClusterRoleBinding cannot reference a Role
        role("r", [rule(["*"], ["*"], groups=["*"])], namespace="ns1"),
    ])
    assert not rbac.can(index, SA, "get", "pods", "ns1")
    assert {b.ref for b in index.dangling} == {"RoleBinding ns1/b", "ClusterRoleBinding cb"}
    matrix = rbac.permission_matrix(index, [SA])
    assert matrix[SA.ref]["grants"] == []
    assert {"binding": "RoleBinding ns1/b", "missing": "ClusterRole missing"} in matrix[SA.ref]["dangling_bindings"]


def test_non_resource_urls_only_through_cluster_role_bindings_and_ignored_for_resource_checks():
    rules = [{"nonResourceURLs": ["/metrics", "/healthz/*"], "verbs": ["get"]}]
    index = cluster_wide(rules)
    assert rbac.can_access_url(index, SA, "get", "/metrics")
    assert rbac.can_access_url(index, SA, "get", "/healthz/ready")
    assert not rbac.can_access_url(index, SA, "get", "/api")
    assert not rbac.can_access_url(index, SA, "post", "/metrics")
    assert not rbac.can(index, SA, "get", "metrics", "ns1")
    scoped = rbac.index_manifests([role("r", rules), binding("b", "ClusterRole", "r", [sa_subject()], namespace="ns1")])
    assert not rbac.can_access_url(scoped, SA, "get", "/metrics")
    assert rbac.grants(scoped, SA) == []


def test_grants_are_normalised_per_verb_resource_and_group():
    index = rbac.index_manifests([
        role("r", [rule(["get", "list"], ["pods", "pods/log"]), rule(["get"], ["secrets"], names=["b", "a"])],
             namespace="ns1"),
        binding("rb", "Role", "r", [sa_subject()], namespace="ns1"),
    ])
    listed = [(g.scope, g.resource, g.verb, g.resource_names) for g in rbac.grants(index, SA)]
    assert listed == [("namespace:ns1", "pods", "get", ()), ("namespace:ns1", "pods", "list", ()),
                      ("namespace:ns1", "pods/log", "get", ()), ("namespace:ns1", "pods/log", "list", ()),
                      ("namespace:ns1", "secrets", "get", ("a", "b"))]
    json.dumps(rbac.permission_matrix(index))  # serialisable for static.json


# ---------------------------------------------------------------- comparison (hand-written)


def side(variant: str, rules: list[dict[str, Any]], namespace: str | None = "ns1",
         identity: Identity = SA) -> rbac.DriverSide:
    if namespace:
        docs = [role("r", rules, namespace=namespace), binding("b", "Role", "r", [sa_subject(identity)], namespace)]
    else:
        docs = [role("r", rules), binding("b", "ClusterRole", "r", [sa_subject(identity)])]
    return rbac.DriverSide(variant, docs, (identity,))


def by_id(findings: list) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for f in findings:
        grouped.setdefault(f.id, []).append(f)
    return grouped


def test_compare_reports_gained_and_lost_with_severity_and_grouped_verbs():
    base = side("a", [rule(["get"], ["pods"]), rule(["get"], ["configmaps"])])
    other = side("b", [rule(["get", "list"], ["pods"]), rule(["get", "list"], ["secrets"])])
    found = by_id(rbac.compare_driver_permissions(base, other, "standalone"))
    gained = {f.evidence["resource"]: f for f in found["rbac.permission-gained"]}
    assert set(gained) == {"pods", "secrets"}
    assert gained["secrets"].evidence["verbs"] == ["get", "list"]
    assert gained["pods"].evidence["verbs"] == ["list"]
    assert gained["secrets"].severity is Severity.ERROR and not gained["secrets"].expected
    assert gained["secrets"].subject == "ServiceAccount ns1/driver"
    assert gained["secrets"].evidence["grants"][0]["via"] == "RoleBinding ns1/b -> Role ns1/r"
    [lost] = found["rbac.permission-lost"]
    assert (lost.evidence["resource"], lost.severity) == ("configmaps", Severity.WARNING)
    assert "rbac.permission-broadened" not in found and "rbac.driver-identity-changed" not in found


def test_compare_reports_broadened_when_resource_names_dropped_and_narrowed_the_other_way():
    named = side("a", [rule(["get"], ["secrets"], names=["artifact"])])
    unnamed = side("b", [rule(["get"], ["secrets"])])
    [broadened] = rbac.compare_driver_permissions(named, unnamed, "standalone")
    assert broadened.id == "rbac.permission-broadened" and broadened.severity is Severity.ERROR
    assert broadened.evidence["compared_with"][0]["resource_names"] == ["artifact"]
    [narrowed] = rbac.compare_driver_permissions(unnamed, named, "standalone")
    assert narrowed.id == "rbac.permission-narrowed" and narrowed.severity is Severity.WARNING
    more_names = side("c", [rule(["get"], ["secrets"], names=["artifact", "other"])])
    [wider] = rbac.compare_driver_permissions(named, more_names, "standalone")
    assert wider.id == "rbac.permission-broadened"


def test_compare_reports_namespace_to_cluster_scope_and_wildcards_as_broadened():
    namespaced = side("a", [rule(["get"], ["pods"])])
    clusterwide = side("b", [rule(["get"], ["pods"])], namespace=None)
    [scope] = rbac.compare_driver_permissions(namespaced, clusterwide, "standalone")
    assert (scope.id, scope.evidence["scope"]) == ("rbac.permission-broadened", "cluster")
    wildcard = side("c", [rule(["*"], ["pods"])])
    [verbs] = rbac.compare_driver_permissions(namespaced, wildcard, "standalone")
    assert (verbs.id, verbs.evidence["verbs"]) == ("rbac.permission-broadened", ["*"])
    [narrowed] = rbac.compare_driver_permissions(wildcard, namespaced, "standalone")
    assert narrowed.id == "rbac.permission-narrowed"


def test_compare_of_equal_permissions_through_different_roles_reports_nothing_but_identity_change():
    base = side("a", [rule(["get", "list"], ["pods"])])
    other = side("b", [rule(["list"], ["pods"]), rule(["get"], ["pods"])], identity=Identity("ns1", "central"))
    found = rbac.compare_driver_permissions(base, other, "standalone")
    assert [f.id for f in found] == ["rbac.driver-identity-changed"]
    assert found[0].evidence == {"a": ["ns1/driver"], "b": ["ns1/central"]}


# ---------------------------------------------------------------- profile namespaces


def test_profile_objects_bind_the_profile_namespace_for_multi_user_only():
    config = load_config()
    multi, standalone = config.mode("multi-user"), config.mode("standalone")
    docs = config.profile_objects(config.variant("sidecar-plugin"), multi)
    binding_doc = next(d for d in docs if d["metadata"]["name"] == "ml-pipeline-driver-agent-executor-plugin-binding")
    assert binding_doc["metadata"]["namespace"] == multi.user_namespace
    assert binding_doc["subjects"][0]["namespace"] == multi.user_namespace
    assert "{profile}" not in json.dumps(docs)
    assert {d["metadata"]["name"] for d in docs} >= {"default-editor", "ml-pipeline-driver-agent-executor-plugin"}
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")  # the mode's kubeflow-edit: no namespace
    assert "namespace" not in cluster_role["metadata"]
    assert config.profile_objects(config.variant("sidecar-plugin"), standalone) == []
    # the catalogue object is untouched
    assert config.variant("sidecar-plugin").profile_resources[1]["subjects"][0]["namespace"] == "{profile}"


# ---------------------------------------------------------------- the real trees


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rbac-render")


@pytest.fixture(scope="session")
def installs(kfp_trees: Path, remote_bases: Path, render_cache: Path, config) -> dict[tuple[str, str], list]:
    """(variant, mode) -> the CI install render (cluster-scoped resources + overlay) of the real trees."""
    renderer = Renderer(mirror=remote_bases, cache_dir=render_cache)
    return {(v, m): renderer.render_install(kfp_trees / v, config.mode(m)).manifests
            for v in ("driver-pod", "sidecar-plugin", "central-driver") for m in ("standalone", "multi-user")}


def real_side(config, installs, variant: str, mode: str) -> rbac.DriverSide:
    return rbac.driver_side(config, config.variant(variant), config.mode(mode), installs[(variant, mode)])


def test_real_sidecar_plugin_standalone_driver_reads_only_the_artifact_secret(config, installs):
    index = rbac.index_manifests(installs[("sidecar-plugin", "standalone")])
    plugin = Identity("kubeflow", "ml-pipeline-driver-agent-executor-plugin")
    assert rbac.can(index, plugin, "get", "secrets", "kubeflow", name="mlpipeline-minio-artifact")
    assert not rbac.can(index, plugin, "get", "secrets", "kubeflow", name="mysql-secret")
    assert not rbac.can(index, plugin, "list", "secrets", "kubeflow")
    assert rbac.can(index, plugin, "get", "configmaps", "kubeflow", name="kfp-launcher")
    assert rbac.can(index, plugin, "delete", "persistentvolumeclaims", "kubeflow")
    assert not rbac.can(index, plugin, "get", "pods", "default")


def test_real_central_driver_reads_any_secret_in_kubeflow_broadened_against_sidecar_plugin(config, installs):
    index = rbac.index_manifests(installs[("central-driver", "standalone")])
    driver = Identity("kubeflow", "ml-pipeline-driver")
    assert rbac.can(index, driver, "get", "secrets", "kubeflow", name="mysql-secret")
    assert rbac.can(index, driver, "list", "secrets", "kubeflow")
    assert rbac.can(index, driver, "get", "pods/log", "kubeflow")
    assert not rbac.can(index, driver, "get", "secrets", "default", name="mysql-secret")
    found = rbac.compare_driver_permissions(real_side(config, installs, "sidecar-plugin", "standalone"),
                                            real_side(config, installs, "central-driver", "standalone"), "standalone")
    secrets = [f for f in found if f.evidence.get("resource") == "secrets"]
    broadened = next(f for f in secrets if f.id == "rbac.permission-broadened")
    assert broadened.subject == "ServiceAccount kubeflow/ml-pipeline-driver"
    assert broadened.evidence["verbs"] == ["get"] and broadened.evidence["scope"] == "namespace:kubeflow"
    assert broadened.evidence["grants"][0]["via"] == "RoleBinding kubeflow/ml-pipeline-driver -> Role kubeflow/ml-pipeline-driver"
    assert broadened.evidence["compared_with"][0]["resource_names"] == ["mlpipeline-minio-artifact"]
    gained_list = next(f for f in secrets if f.id == "rbac.permission-gained")
    assert gained_list.evidence["verbs"] == ["list"]
    assert any(f.id == "rbac.driver-identity-changed" for f in found)


def test_real_multi_user_central_driver_has_no_rights_in_the_profile_namespace(config, installs):
    profile = config.mode("multi-user").user_namespace
    sc = real_side(config, installs, "sidecar-plugin", "multi-user")
    cd = real_side(config, installs, "central-driver", "multi-user")
    cd_index = rbac.index_manifests(cd.manifests)
    driver = Identity("kubeflow", "ml-pipeline-driver")
    assert not rbac.can(cd_index, driver, "get", "pods", profile)
    assert not rbac.can(cd_index, driver, "get", "secrets", profile, name="mlpipeline-minio-artifact")
    # sync.py's RoleBindings go to kubeflow/ml-pipeline instead
    assert rbac.can(cd_index, Identity("kubeflow", "ml-pipeline"), "create", "persistentvolumeclaims", profile)
    sc_index = rbac.index_manifests(sc.manifests)
    plugin = Identity(profile, "ml-pipeline-driver-agent-executor-plugin")
    assert rbac.can(sc_index, plugin, "get", "secrets", profile, name="mlpipeline-minio-artifact")
    assert not rbac.can(sc_index, plugin, "get", "secrets", "kubeflow", name="mlpipeline-minio-artifact")
    found = rbac.compare_driver_permissions(sc, cd, "multi-user")
    lost = {f.evidence["resource"] for f in found
            if f.id == "rbac.permission-lost" and f.evidence["scope"] == f"namespace:{profile}"}
    assert lost == {"pods", "persistentvolumeclaims", "configmaps", "secrets"}


def test_real_multi_user_aggregation_gives_kubeflow_pipelines_edit_the_workflowtaskset_rules(installs):
    index = rbac.index_manifests(installs[("sidecar-plugin", "multi-user")])
    edit = index.cluster_roles["kubeflow-pipelines-edit"]
    assert any("workflowtasksets/status" in r.resources and r.origin == "aggregate-to-kubeflow-pipelines-edit"
               for r in edit.rules)
    upstream = rbac.index_manifests(installs[("driver-pod", "multi-user")]).cluster_roles["kubeflow-pipelines-edit"]
    assert upstream.rules and not any("workflowtasksets/status" in r.resources for r in upstream.rules)


def test_real_taskset_status_cluster_grant_is_new_in_both_pocs_and_absent_upstream(config, installs):
    standalone = config.mode("standalone")
    upstream = installs[("driver-pod", "standalone")]
    for variant in ("sidecar-plugin", "central-driver"):
        found = rbac.cluster_scoped_grants(installs[(variant, "standalone")], upstream, standalone,
                                           (variant, "driver-pod"))
        new = [f for f in found if f.id == "rbac.cluster-scoped-grant"]
        assert [f.subject for f in new] == ["ClusterRoleBinding argo-workflowtaskset-status-binding"]
        assert new[0].severity is Severity.ERROR and new[0].evidence["subject"] == "kubeflow/argo"
        assert new[0].variants == ("driver-pod", variant)
        [listing] = rbac.cluster_wide_grants(installs[(variant, "standalone")], standalone, variant)
        assert "argo-workflowtaskset-status-binding" in {g["binding"] for g in listing.evidence["grants"]}
    assert rbac.cluster_scoped_grants(upstream, upstream, standalone, ("driver-pod", "driver-pod")) == []
    [listing] = rbac.cluster_wide_grants(upstream, standalone, "driver-pod")
    assert listing.severity is Severity.INFO
    assert {g["binding"] for g in listing.evidence["grants"]} == {"kubeflow-pipelines-cache-deployer-clusterrolebinding"}
    removed = rbac.cluster_scoped_grants(upstream, installs[("sidecar-plugin", "standalone")], standalone,
                                         ("driver-pod", "sidecar-plugin"))
    assert [f.id for f in removed] == ["rbac.cluster-scoped-grant-removed"]
    assert rbac.cluster_wide_grants(upstream, config.mode("multi-user"), "driver-pod") == []


@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
def test_real_tree_compared_with_itself_has_no_permission_change(config, installs, mode):
    for variant in ("driver-pod", "sidecar-plugin", "central-driver"):
        same = real_side(config, installs, variant, mode)
        found = rbac.compare_driver_permissions(same, same, mode)
        assert found == [], (variant, [f.message for f in found])
        assert rbac.grants(rbac.index_manifests(same.manifests), same.identities[0]) or variant == "driver-pod"


def test_real_static_rbac_reports_driver_differences_and_serialises(config, installs):
    mode = config.mode("standalone")
    base = config.variant("sidecar-plugin")
    pairs = [(base, config.variant("driver-pod")), (base, config.variant("central-driver"))]
    manifests = {v: installs[(v, "standalone")] for v in ("sidecar-plugin", "driver-pod", "central-driver")}
    findings, data = rbac.static_rbac(config, mode, pairs, manifests)
    json.dumps(data)
    assert set(data["driver_permissions"]) == set(manifests)
    assert "kubeflow/ml-pipeline-driver" in data["driver_permissions"]["central-driver"]
    ids = {(f.id, f.variants) for f in findings}
    assert ("rbac.permission-broadened", ("sidecar-plugin", "central-driver")) in ids
    assert ("rbac.permission-gained", ("sidecar-plugin", "driver-pod")) in ids
    assert ("rbac.cluster-scoped-grant-removed", ("sidecar-plugin", "driver-pod")) in ids
    assert sum(f.id == "rbac.cluster-wide-grants" for f in findings) == 3


# ---------------------------------------------------------------- the `rbac` command (real renders)


def cli_args(kfp_trees: Path, remote_bases: Path, cache: Path, *rest: str) -> list[str]:
    return ["rbac", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--cache-dir", str(cache), *rest]


def test_cli_rbac_can_answers_per_variant_and_exits_1_when_any_is_denied(kfp_trees, remote_bases, render_cache,
                                                                         capsys):
    from harness.cli import main

    args = cli_args(kfp_trees, remote_bases, render_cache, "--variant", "central-driver", "--variant", "sidecar-plugin",
                    "--mode", "standalone", "--can", "get", "secrets", "kubeflow", "mysql-secret")
    assert main(args) == 1
    assert capsys.readouterr().out.splitlines() == [
        "central-driver.standalone kubeflow/ml-pipeline-driver: yes",
        "sidecar-plugin.standalone kubeflow/ml-pipeline-driver-agent-executor-plugin: no",
    ]
    args = cli_args(kfp_trees, remote_bases, render_cache, "--variant", "sidecar-plugin", "--mode", "multi-user",
                    "--can", "get", "secrets", "{profile}", "mlpipeline-minio-artifact")
    assert main(args) == 1  # `{profile}` is only bound in --as; the literal namespace has no binding
    args = cli_args(kfp_trees, remote_bases, render_cache, "--variant", "sidecar-plugin", "--mode", "multi-user",
                    "--can", "get", "secrets", "kubeflow-user-example-com", "mlpipeline-minio-artifact")
    assert main(args) == 0


def test_cli_rbac_lists_grants_and_dangling_bindings_as_json(kfp_trees, remote_bases, render_cache, capsys):
    from harness.cli import main

    args = cli_args(kfp_trees, remote_bases, render_cache, "--variant", "driver-pod", "--mode", "multi-user", "--json")
    assert main(args) == 0
    matrix = json.loads(capsys.readouterr().out)
    entry = matrix["driver-pod.multi-user"]["kubeflow-user-example-com/default-editor"]
    # kubeflow-edit comes from the config's profile resources (Kubeflow's manifests, not the KFP tree) and
    # aggregates KFP's kubeflow-pipelines-edit, so the profile binding resolves and grants workflows rights
    assert entry["dangling_bindings"] == []
    workflows = [g for g in entry["grants"] if g["resource"] == "workflows" and g["api_group"] == "argoproj.io"
                 and g["scope"] == "namespace:kubeflow-user-example-com"]
    assert workflows and all("ClusterRole kubeflow-edit" in g["via"] for g in workflows)


def test_cli_rbac_bad_service_account_is_one_line_exit_2(tmp_path, capsys):
    from harness.cli import main

    assert main(["rbac", "--cache-dir", str(tmp_path), "--as", "no-slash"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --as 'no-slash' is not NAMESPACE/NAME") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing rendered or cached


def test_real_predict_access_answers_the_live_checks_for_the_sidecar_driver(config, installs):
    from harness.rbac.live import checks_from_identities

    side = real_side(config, installs, "sidecar-plugin", "standalone")
    answers = rbac.predict_access(rbac.index_manifests(side.manifests),
                                  checks_from_identities(side.identities, ["kubeflow"]))
    allowed = {(a["verb"], a["resource"], a["subresource"], a["name"]) for a in answers if a["allowed"]}
    assert ("get", "secrets", "", "mlpipeline-minio-artifact") in allowed
    assert ("get", "secrets", "", "some-other-secret") not in allowed
    assert ("list", "secrets", "", "") not in allowed
    assert ("get", "pods", "log", "") not in allowed
    assert ("delete", "persistentvolumeclaims", "", "") in allowed
