"""Where a workload keeps its pod template and containers: the one walker every check uses (images, credentials,
Pod Security Standards), so they cannot disagree on where a container lives."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# kind -> path of the pod spec (apps/v1, batch/v1, core/v1 workload types)
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# as upstream's pod-security-admission visitContainers: init, regular and ephemeral containers
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload object, or None for other kinds (or a malformed one)."""
    node: Any = obj
    for key in POD_SPEC_PATHS.get(obj.get("kind", ""), ("-",)):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def containers(obj: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(container, its field path such as `spec.template.spec.containers[name]`) of a workload object."""
    spec = pod_spec(obj)
    if spec is None:
        return
    base = ".".join(POD_SPEC_PATHS[obj["kind"]])
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or []:
            if isinstance(container, dict):
                yield container, f"{base}.{list_name}[{container.get('name')}]"


def pod_metadata_path(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """Path of the pod template's metadata (the object's own metadata for a Pod)."""
    return POD_SPEC_PATHS[obj["kind"]][:-1] + ("metadata",)


def pod_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template's metadata of a workload object ({} if absent or not a workload)."""
    if obj.get("kind") not in POD_SPEC_PATHS:
        return {}
    node: Any = obj
    for key in pod_metadata_path(obj):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}
