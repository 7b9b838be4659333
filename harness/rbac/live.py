"""Live RBAC snapshot: SubjectAccessReview for each (identity, verb, resource, ...) and the objects a profile
namespace holds, so the static tier's RBAC findings can be checked against what the API server decides.

Checks are plain tuples (`Check`), so the static tier (harness/rbac/evaluator.py) can hand over whatever it derived
without this module depending on its internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from harness.boundary.kube import CORE, Kube
from harness.models import Identity


class Check(NamedTuple):
    identity: str  # namespace/serviceaccount
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


# What a KFP driver needs or must not have (kfp-variants.md §6): (verb, group, resource, subresource, name).
DEFAULT_ACCESS: tuple[tuple[str, str, str, str, str], ...] = (
    ("get", "", "pods", "", ""),
    ("list", "", "pods", "", ""),
    ("get", "", "pods", "log", ""),
    ("get", "", "configmaps", "", "kfp-launcher"),
    ("get", "", "configmaps", "", "some-other-configmap"),
    ("get", "", "secrets", "", "mlpipeline-minio-artifact"),
    ("get", "", "secrets", "", "some-other-secret"),
    ("list", "", "secrets", "", ""),
    ("create", "", "persistentvolumeclaims", "", ""),
    ("delete", "", "persistentvolumeclaims", "", ""),
    ("get", "argoproj.io", "workflows", "", ""),
    ("update", "argoproj.io", "workflows", "", ""),
    ("patch", "argoproj.io", "workflowtasksets", "status", ""),
    ("create", "", "serviceaccounts", "token", ""),
)


def checks_from_identities(identities: Iterable[Identity | str], namespaces: Sequence[str],
                           access: Iterable[tuple[str, str, str, str, str]] = DEFAULT_ACCESS) -> list[Check]:
    """Every identity x namespace x default access. `{profile}` identities are bound to each namespace."""
    checks: list[Check] = []
    for identity in identities:
        refs = []
        for namespace in namespaces:
            bound = identity.bind(namespace).ref if isinstance(identity, Identity) else \
                identity.replace("{profile}", namespace)
            if bound not in refs:
                refs.append(bound)
        for ref in refs:
            for namespace in namespaces:
                for verb, group, resource, subresource, name in access:
                    checks.append(Check(ref, verb, resource, group, subresource, namespace, name))
    return sorted(set(checks))


def snapshot(kube: Kube, checks: Iterable[Check | tuple[str, ...]],
             static: Mapping[Check, bool] | None = None) -> list[dict[str, Any]]:
    """One SubjectAccessReview per check, in a stable order, shaped like bundle.json's `rbac` entries.

    `static` is the static evaluator's answer per check (harness.rbac.evaluator.predict_access over the installed
    render); it is stored beside the live answer so the report shows both side by side.
    """
    results: list[dict[str, Any]] = []
    for raw in sorted({Check(*c) for c in checks}):
        namespace, name = raw.identity.split("/", 1)
        decision = kube.access_review(Identity(namespace, name), raw.verb, raw.resource, group=raw.group,
                                      subresource=raw.subresource, namespace=raw.namespace, name=raw.name)
        entry = {"identity": raw.identity, "verb": raw.verb, "group": raw.group, "resource": raw.resource,
                 "subresource": raw.subresource, "namespace": raw.namespace, "name": raw.name,
                 "allowed": decision["allowed"]}
        if static is not None and raw in static:
            entry["static_allowed"] = static[raw]
        results.append(entry)
    return results


def profile_objects(kube: Kube, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """What a profile namespace holds: ServiceAccounts, Roles, RoleBindings (with rules/subjects) and Secrets
    by name and type only. Secret data never leaves `harness.boundary.kube`."""
    rbac = "rbac.authorization.k8s.io/v1"
    return {
        "serviceaccounts": [{"name": o["metadata"]["name"]} for o in kube.list(CORE, "serviceaccounts", namespace)],
        "roles": [{"name": o["metadata"]["name"], "rules": o.get("rules") or []}
                  for o in kube.list(rbac, "roles", namespace)],
        "rolebindings": [{"name": o["metadata"]["name"], "roleRef": o.get("roleRef") or {},
                          "subjects": o.get("subjects") or []} for o in kube.list(rbac, "rolebindings", namespace)],
        "secrets": [{"name": s["name"], "type": s["type"]} for s in kube.secret_metadata(namespace)],
    }
