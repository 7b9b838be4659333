"""Which workloads a Service routes to: the one rule the exposure and network checks share.

As the EndpointSlice controller decides it (kubernetes/kubernetes
`pkg/controller/endpointslice/endpointslice_controller.go` `syncService`, read at 003e86297d18): an
ExternalName Service and one without a selector get no endpoints from it; otherwise the endpoints are the pods
of the Service's own namespace whose labels carry every `key: value` of `spec.selector`. An empty
`selector: {}` is treated as no selector, as both checks always did (the controller tests `== nil`; whether
`{}` survives the API server's storage as non-nil is not checked here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.manifests.labels import labels_match
from harness.manifests.workloads import POD_SPEC_PATHS, pod_metadata


def _namespace(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def selects_pods(service: Mapping[str, Any]) -> bool:
    """Whether a Service gets its endpoints from a pod selector at all."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def service_backends(service: Mapping[str, Any], manifests: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The workload objects (pod template owners, and Pods) of `manifests` whose pods `service` selects."""
    if service.get("kind") != "Service" or not selects_pods(service):
        return []
    selector = (service.get("spec") or {}).get("selector")
    namespace = _namespace(service)
    return [obj for obj in manifests if obj.get("kind") in POD_SPEC_PATHS and _namespace(obj) == namespace
            and labels_match(selector, pod_metadata(obj).get("labels") or {})]
