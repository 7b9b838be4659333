"""Static migration check: what `kubectl apply` of one variant's render over another leaves behind.

`kubectl apply` (without `--prune`) creates and updates, never deletes. So every object of the old
install that the new render does not contain stays in the cluster (`migration.orphan`). The
per-profile-namespace objects the old variant's profile controller created in multi-user mode are listed too,
but they only stay until the new controller's next sync: metacontroller deletes the attachments a sync no
longer returns (metacontroller v4.11.22 `pkg/controller/common/manage_children.go`); the live migration
triggers that sync and checks their fate (`harness.plan.migration`). Objects
in both renders whose immutable fields differ make the apply itself fail (`migration.apply-conflict`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.models import Finding, Severity
from harness.static.inventory import describe, index_manifests

Manifest = dict[str, Any]

# Fields the API server refuses to change on update (group, kind) -> dotted paths. From the Kubernetes
# API validation (apps/v1 selectors, Job selector+template, PVC spec, Service clusterIP, roleRef, CRD scope).
IMMUTABLE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("spec.selector",),
    ("apps", "ReplicaSet"): ("spec.selector",),
    ("apps", "DaemonSet"): ("spec.selector",),
    ("apps", "StatefulSet"): ("spec.selector", "spec.serviceName", "spec.volumeClaimTemplates",
                              "spec.podManagementPolicy"),
    ("batch", "Job"): ("spec.selector", "spec.template"),
    ("", "Service"): ("spec.clusterIP",),
    ("", "PersistentVolumeClaim"): ("spec.storageClassName", "spec.accessModes", "spec.volumeMode",
                                    "spec.selector", "spec.volumeName"),
    ("", "Secret"): ("type",),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("spec.scope",),
}
_MISSING = object()


def _get(obj: Manifest, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def apply_conflicts(old: Manifest, new: Manifest) -> list[dict[str, Any]]:
    """Immutable fields set in both versions with different values (unset means "defaulted": no conflict)."""
    group = old.get("apiVersion", "").rpartition("/")[0]
    conflicts = []
    for path in IMMUTABLE_FIELDS.get((group, old.get("kind", "")), ()):
        before, after = _get(old, path), _get(new, path)
        if before is not _MISSING and after is not _MISSING and before != after:
            conflicts.append({"path": path, "old": before, "new": after})
    if old.get("immutable") is True and (old.get("data"), old.get("binaryData")) != (new.get("data"), new.get("binaryData")):
        conflicts.append({"path": "data", "old": "(immutable)", "new": "(changed)"})
    return conflicts


def static_orphans(old_manifests: Iterable[Manifest], new_manifests: Iterable[Manifest], *,
                   old_profile: Iterable[Manifest] = (), new_profile: Iterable[Manifest] = (),
                   mode: str, variants: tuple[str, str], direction: str = "upgrade") -> list[Finding]:
    """Findings for moving an install from `variants[0]` (old) to `variants[1]` (new) by `kubectl apply`.

    `old_profile`/`new_profile` are the bound per-profile-namespace objects (`Config.profile_objects`).
    """
    old_from, new_to = variants
    old_index = index_manifests(old_manifests)
    new_index = index_manifests(new_manifests)
    old_profile_index = index_manifests(old_profile)
    new_profile_index = index_manifests(new_profile)
    findings = []
    for key in sorted((old_index.keys() | old_profile_index.keys()) - new_index.keys() - new_profile_index.keys()):
        from_profile = key not in old_index
        how = (f"the {old_from} profile controller created it in every profile namespace" if from_profile
               else f"it is in the {old_from} render")
        findings.append(Finding(
            "migration.orphan", Severity.WARNING, "migration", mode, variants, describe(key),
            f"`kubectl apply` of {new_to} over {old_from} leaves {describe(key)} behind: {how} and "
            f"{new_to} does not manage it",
            {"direction": direction, "group": key[0], "kind": key[1],
             "origin": "profile-controller" if from_profile else "render",
             "cleanup": f"kubectl delete {key[1].lower()} {key[3]}" + (f" -n {key[2]}" if key[2] else "")},
        ))
    for key in sorted(old_index.keys() & new_index.keys()):
        conflicts = apply_conflicts(old_index[key], new_index[key])
        if conflicts:
            fields = ", ".join(c["path"] for c in conflicts)
            findings.append(Finding(
                "migration.apply-conflict", Severity.WARNING, "migration", mode, variants, describe(key),
                f"`kubectl apply` of {new_to} over {old_from} fails on {describe(key)}: immutable field(s) "
                f"{fields} change (delete and re-create it)",
                {"direction": direction, "conflicts": conflicts},
            ))
    return findings


def rollback_orphans(old_manifests: Iterable[Manifest], new_manifests: Iterable[Manifest], *,
                     old_profile: Iterable[Manifest] = (), new_profile: Iterable[Manifest] = (),
                     mode: str, variants: tuple[str, str]) -> list[Finding]:
    """The reverse move: re-applying `variants[0]` over an install of `variants[1]`."""
    return static_orphans(new_manifests, old_manifests, old_profile=new_profile, new_profile=old_profile,
                          mode=mode, variants=(variants[1], variants[0]), direction="rollback")
