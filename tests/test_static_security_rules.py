"""Pod Security Standards controls and credential classification on small hand-written pods (pure functions)."""

from __future__ import annotations

from harness.static.credentials import is_credential_key, mask_field
from harness.static.hardening import level_of, pod_violations


def _pod(spec: dict, annotations: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": annotations or {}},
            "spec": spec}


RESTRICTED_CONTAINER = {"name": "c", "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}
RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [RESTRICTED_CONTAINER]}


def test_pod_level_run_as_non_root_and_seccomp_cover_containers_as_upstream() -> None:
    assert pod_violations(_pod(RESTRICTED_POD)) == []
    assert level_of(pod_violations(_pod(RESTRICTED_POD))) == "restricted"
    container_false = {**RESTRICTED_CONTAINER, "securityContext": {**RESTRICTED_CONTAINER["securityContext"],
                                                                   "runAsNonRoot": False}}
    found = pod_violations(_pod({**RESTRICTED_POD, "containers": [container_false]}))
    assert [(v.control, v.path) for v in found] == [("runAsNonRoot", "spec.containers[c].securityContext.runAsNonRoot")]


def test_baseline_controls_make_the_pod_privileged_level() -> None:
    spec = {**RESTRICTED_POD, "hostPID": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{**RESTRICTED_CONTAINER, "ports": [{"containerPort": 80, "hostPort": 80}],
                            "securityContext": {**RESTRICTED_CONTAINER["securityContext"],
                                                "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "CHOWN"]}}}]}
    found = pod_violations(_pod(spec, {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}))
    assert {v.control for v in found} == {"hostNamespaces", "hostPathVolumes", "hostPorts", "capabilities_baseline",
                                          "capabilities_restricted", "appArmorProfile"}
    assert level_of(found) == "privileged"
    caps = next(v for v in found if v.control == "capabilities_baseline")
    assert caps.value == ["SYS_ADMIN"]  # CHOWN is in the runtime's default set


def test_credential_keys_exclude_references_and_secret_values_are_masked() -> None:
    assert [k for k in ("AWS_SECRET_ACCESS_KEY", "dbPassword", "CLIENT_SECRET", "secretName", "TOKEN_PATH",
                        "passwordFile", "V2_DRIVER_IMAGE") if is_credential_key(k)] == \
        ["AWS_SECRET_ACCESS_KEY", "dbPassword", "CLIENT_SECRET"]
    assert mask_field("Secret", ["stringData", "secretkey"], "minio123").startswith("<value changed: sha256:")
    env = mask_field("Deployment", ["spec", "env"], [{"name": "DB_PASSWORD", "value": "hunter2!"},
                                                     {"name": "MODE", "value": "fast"}])
    assert env[0]["value"].startswith("<value changed:") and env[1]["value"] == "fast"


def test_builtin_edit_role_from_the_real_apiserver_dump_grants_what_kubernetes_grants() -> None:
    """A RoleBinding to the built-in `edit` ClusterRole (not in any render) is evaluated with the rules a real
    kube-apiserver v1.34.0 creates (harness/data/builtin-clusterroles-v1.34.0.yaml, dumped from the control
    plane built for the install tier): it reads Secrets and writes Deployments, and never escalates RBAC."""
    from harness.rbac.evaluator import builtin_cluster_roles, index_manifests, predict_access
    from harness.rbac.live import Check

    builtins = builtin_cluster_roles()
    assert builtins.version == "v1.34.0"
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "driver-edit", "namespace": "kubeflow"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "ServiceAccount", "name": "ml-pipeline-driver", "namespace": "kubeflow"}]}
    index = index_manifests([binding])
    who = "kubeflow/ml-pipeline-driver"
    asks = [Check(who, "get", "secrets", "", "", "kubeflow", "any"),
            Check(who, "create", "deployments", "apps", "", "kubeflow", ""),
            Check(who, "create", "rolebindings", "rbac.authorization.k8s.io", "", "kubeflow", ""),
            Check(who, "get", "secrets", "", "", "other-namespace", "any")]
    assert [a["allowed"] for a in predict_access(index, asks)] == [True, True, False, False]
