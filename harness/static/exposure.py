"""Exposure: what one variant lets reach its pods that the other does not.

Pure functions over two renders (lists of manifest dicts):

- Services: `type` (ClusterIP < NodePort < LoadBalancer, Kubernetes `core/v1` ServiceSpec), new
  `externalIPs`, wider `loadBalancerSourceRanges`, `externalTrafficPolicy` Local -> Cluster;
- routes from outside the mesh: Ingress, Gateway API routes (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute) and
  Istio VirtualServices bound to a gateway, to a Service no route reached in the base variant; an error
  when that Service fronts the driver or the API server;
- Istio mTLS: a PeerAuthentication whose effective mode is weaker than the base's for the same workloads
  (istio/api `security/v1beta1/peer_authentication.proto`: UNSET inherits from the parent, the mesh default
  is PERMISSIVE), and a DestinationRule that stops originating TLS.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.manifests.services import service_backends
from harness.manifests.workloads import pod_spec
from harness.models import Finding, Severity, Variant, parse_image
from harness.render.kustomize import resource_key
from harness.static.crosscheck import Carrier, parse_carrier
from harness.static.inventory import describe

Manifest = dict[str, Any]
ResourceKey = tuple[str, str, str, str]
CATEGORY = "exposure"
# core/v1 ServiceSpec: a NodePort Service opens a port on every node, a LoadBalancer one also asks the cloud
# for an external address; ExternalName has no proxy at all.
TYPE_REACH = {"ClusterIP": 0, "ExternalName": 0, "NodePort": 1, "LoadBalancer": 2}
TYPE_MEANING = {0: "inside the cluster only", 1: "from anything that reaches a node", 2: "from outside the cluster"}
# Images KFP builds (fixtures/images.yaml names) for the two workloads whose exposure matters most; a KFP
# image reference is `<registry>/<name>` or `ghcr.io/kubeflow/kfp-<name>`.
ROLE_IMAGES = {"apiserver": "API server", "driver": "driver"}
GATEWAY_ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")
MTLS_RANK = {"DISABLE": 0, "PERMISSIVE": 1, "STRICT": 2}
MESH_ROOT_NAMESPACE = "istio-system"  # Istio's default meshConfig.rootNamespace
TLS_ORIGINATING = frozenset({"SIMPLE", "MUTUAL", "ISTIO_MUTUAL"})


def _image_role(image: str) -> str:
    parsed = parse_image(image)
    name = (parsed.path if parsed else image).rsplit("/", 1)[-1].removeprefix("kfp-").replace("-", "")
    return ROLE_IMAGES.get(name, "")


def _roles(workload: Manifest) -> set[str]:
    """The roles (driver, API server) of a workload's images."""
    spec = pod_spec(workload) or {}
    return {_image_role(str(c.get("image", ""))) for c in spec.get("containers") or [] if isinstance(c, dict)} - {""}


def backend_roles(manifests: list[Manifest], variant: Variant | None = None) -> dict[ResourceKey, set[str]]:
    """Service key -> the roles (driver, API server) of the workloads it selects. The catalogue's driver
    carriers count as the driver whatever image they run."""
    carriers: list[Carrier] = [parse_carrier(c) for c in (variant.driver.carriers if variant else ())]
    carrier_subjects = {f"{c.kind} {c.name}" for c in carriers}
    out: dict[ResourceKey, set[str]] = {}
    for svc in manifests:
        if svc.get("kind") != "Service":
            continue
        key = resource_key(svc)
        roles: set[str] = set()
        if f"Service {key[3]}" in carrier_subjects:
            roles.add("driver")
        for workload in service_backends(svc, manifests):
            roles |= _roles(workload)
            if f"{workload.get('kind')} {resource_key(workload)[3]}" in carrier_subjects:
                roles.add("driver")
        out[key] = roles
    return out


# --------------------------------------------------------------------------------------------- Services


def _networks(ranges: Iterable[Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for r in ranges:
        try:
            out.append(ipaddress.ip_network(str(r).strip(), strict=False))
        except ValueError:
            continue  # the API server rejects it; nothing is admitted through it
    return out


def _wider_ranges(old: list[Any], new: list[Any]) -> list[str]:
    """Ranges of `new` that no range of `old` contains (an empty list admits every address)."""
    if not old:
        return []
    if not new:
        return ["0.0.0.0/0 (no loadBalancerSourceRanges: every address)"]
    base = _networks(old)
    return [str(n) for n in _networks(new)
            if not any(n.version == b.version and n.subnet_of(b) for b in base)]  # type: ignore[arg-type]


def service_findings(base: list[Manifest], other: list[Manifest], *, mode: str, variants: tuple[str, str],
                     roles: dict[ResourceKey, set[str]] | None = None) -> list[Finding]:
    before = {resource_key(o): o for o in base if o.get("kind") == "Service"}
    findings = []
    base_name, other_name = variants
    for svc in other:
        if svc.get("kind") != "Service":
            continue
        key = resource_key(svc)
        subject = describe(key)
        spec, old_spec = svc.get("spec") or {}, (before.get(key) or {}).get("spec") or {}
        is_new = key not in before
        what = f" (fronts the {', '.join(sorted((roles or {}).get(key, ())))})" if (roles or {}).get(key) else ""
        new_type, old_type = spec.get("type") or "ClusterIP", old_spec.get("type") or "ClusterIP"
        reach, old_reach = TYPE_REACH.get(new_type, 0), (-1 if is_new else TYPE_REACH.get(old_type, 0))
        evidence = {"variant": other_name, "baseline": base_name, "service": subject}
        if reach > max(old_reach, 0):
            was = f"not installed by {base_name}" if is_new else f"type {old_type} in {base_name}"
            findings.append(Finding(
                "exposure.service-type", Severity.ERROR, CATEGORY, mode, variants, subject,
                f"{subject}{what}: spec.type is {new_type} in {other_name} ({was}): reachable "
                f"{TYPE_MEANING[reach]}", {**evidence, "path": "spec.type", "old": None if is_new else old_type,
                                           "new": new_type}))
        new_ips = sorted(set(map(str, spec.get("externalIPs") or [])) - set(map(str, old_spec.get("externalIPs") or [])))
        if new_ips:
            findings.append(Finding(
                "exposure.external-ips", Severity.ERROR, CATEGORY, mode, variants, subject,
                f"{subject}{what}: spec.externalIPs adds {', '.join(new_ips)} in {other_name}: nodes accept "
                f"traffic for those addresses", {**evidence, "path": "spec.externalIPs", "added": new_ips}))
        if new_type == "LoadBalancer" and old_type == "LoadBalancer" and not is_new:
            wider = _wider_ranges(old_spec.get("loadBalancerSourceRanges") or [],
                                  spec.get("loadBalancerSourceRanges") or [])
            if wider:
                findings.append(Finding(
                    "exposure.source-ranges", Severity.ERROR, CATEGORY, mode, variants, subject,
                    f"{subject}{what}: spec.loadBalancerSourceRanges admits {', '.join(wider)} in {other_name}, "
                    f"outside {base_name}'s ranges", {**evidence, "path": "spec.loadBalancerSourceRanges",
                                                       "old": old_spec.get("loadBalancerSourceRanges"),
                                                       "new": spec.get("loadBalancerSourceRanges")}))
        if reach > 0 and old_reach > 0 and old_spec.get("externalTrafficPolicy") == "Local" \
                and (spec.get("externalTrafficPolicy") or "Cluster") == "Cluster":
            findings.append(Finding(
                "exposure.traffic-policy", Severity.WARNING, CATEGORY, mode, variants, subject,
                f"{subject}{what}: spec.externalTrafficPolicy is Cluster in {other_name} (Local in {base_name}): "
                "every node forwards external traffic and the client source address is lost",
                {**evidence, "path": "spec.externalTrafficPolicy", "old": "Local",
                 "new": spec.get("externalTrafficPolicy") or "Cluster (default)"}))
    return findings


# ----------------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    router: str  # subject of the Ingress / route / VirtualService
    field: str  # where in it the backend is named
    service: ResourceKey  # ("", "Service", namespace, name)

    def to_dict(self) -> dict[str, Any]:
        return {"router": self.router, "field": self.field, "service": describe(self.service)}


def _service(namespace: str, name: str) -> ResourceKey:
    return ("", "Service", namespace, name)


def _istio_host(host: str, namespace: str) -> ResourceKey | None:
    """`name`, `name.ns`, `name.ns.svc[.cluster.local]` -> the Service key; external hosts -> None."""
    parts = host.split(".")
    if len(parts) == 1:
        return _service(namespace, parts[0])
    if len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc"):
        return _service(parts[1], parts[0])
    return None


def external_routes(manifests: Iterable[Manifest]) -> list[Route]:
    """Every backend a request from outside the cluster can be routed to."""
    out: list[Route] = []
    for obj in manifests:
        kind, key = obj.get("kind"), resource_key(obj)
        subject, namespace, spec = describe(key), key[2], obj.get("spec") or {}
        group = str(obj.get("apiVersion", "")).split("/")[0]
        if kind == "Ingress" and group == "networking.k8s.io":
            backends = [("spec.defaultBackend", spec.get("defaultBackend") or {})]
            for i, rule in enumerate(spec.get("rules") or []):
                for j, path in enumerate(((rule or {}).get("http") or {}).get("paths") or []):
                    backends.append((f"spec.rules[{i}].http.paths[{j}].backend", (path or {}).get("backend") or {}))
            for field, backend in backends:
                name = (backend.get("service") or {}).get("name")
                if name:
                    out.append(Route(subject, field, _service(namespace, name)))
        elif kind in GATEWAY_ROUTE_KINDS and group == "gateway.networking.k8s.io":
            if not spec.get("parentRefs"):
                continue  # attached to no Gateway: routes nothing
            for i, rule in enumerate(spec.get("rules") or []):
                for j, ref in enumerate((rule or {}).get("backendRefs") or []):
                    if (ref.get("kind") or "Service") == "Service" and not ref.get("group"):
                        out.append(Route(subject, f"spec.rules[{i}].backendRefs[{j}]",
                                         _service(ref.get("namespace") or namespace, ref["name"])))
        elif kind == "VirtualService" and group.startswith("networking.istio.io"):
            # Without `gateways` (or with only `mesh`) a VirtualService steers in-mesh traffic only.
            if not [g for g in spec.get("gateways") or [] if g != "mesh"]:
                continue
            for proto in ("http", "tcp", "tls"):
                for i, rule in enumerate(spec.get(proto) or []):
                    for j, dest in enumerate((rule or {}).get("route") or []):
                        service = _istio_host(str(((dest or {}).get("destination") or {}).get("host", "")), namespace)
                        if service:
                            out.append(Route(subject, f"spec.{proto}[{i}].route[{j}].destination.host", service))
    return out


def route_findings(base: list[Manifest], other: list[Manifest], *, mode: str, variants: tuple[str, str],
                   roles: dict[ResourceKey, set[str]]) -> list[Finding]:
    """A Service that a route from outside reaches in `other` and no route reached in `base`."""
    reached = {r.service for r in external_routes(base)}
    findings = []
    for route in external_routes(other):
        if route.service in reached:
            continue
        service = describe(route.service)
        fronts = sorted(roles.get(route.service, ()))
        severity = Severity.ERROR if fronts else Severity.WARNING
        what = f", which fronts the {' and '.join(fronts)}," if fronts else ""
        findings.append(Finding(
            "exposure.route", severity, CATEGORY, mode, variants, route.router,
            f"{route.router} routes requests from outside the cluster to {service}{what} in {variants[1]} "
            f"({route.field}); no route reaches it in {variants[0]}",
            {**route.to_dict(), "variant": variants[1], "baseline": variants[0], "fronts": fronts}))
    return findings


# ------------------------------------------------------------------------------------------------ mTLS


def _selector_key(obj: Manifest) -> str:
    return json.dumps(((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}, sort_keys=True)


def _peer_modes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], tuple[str, Manifest]]:
    """(namespace, selector) -> (effective mode, the PeerAuthentication), UNSET resolved to its parent."""
    policies = [o for o in manifests if o.get("kind") == "PeerAuthentication"
                and str(o.get("apiVersion", "")).startswith("security.istio.io/")]
    raw = {(resource_key(p)[2], _selector_key(p)): p for p in policies}

    def declared(p: Manifest | None) -> str:
        return str((((p or {}).get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET")

    mesh = declared(raw.get((MESH_ROOT_NAMESPACE, "{}")))
    mesh = "PERMISSIVE" if mesh == "UNSET" else mesh
    out = {}
    for (namespace, selector), policy in raw.items():
        mode = declared(policy)
        if mode == "UNSET" and selector != "{}":
            mode = declared(raw.get((namespace, "{}")))
        if mode == "UNSET":
            mode = mesh
        ports = ((policy.get("spec") or {}).get("portLevelMtls") or {}).values()
        weakest = min([mode, *[str((p or {}).get("mode") or mode) for p in ports]],
                      key=lambda m: MTLS_RANK.get(m, 1))
        out[(namespace, selector)] = (weakest, policy)
    return out


def mtls_findings(base: list[Manifest], other: list[Manifest], *, mode: str,
                  variants: tuple[str, str]) -> list[Finding]:
    """PeerAuthentications weaker in `other` than what `base` enforces for the same workloads, and
    DestinationRules that stop originating TLS."""
    before, after = _peer_modes(base), _peer_modes(other)
    mesh_before = before.get((MESH_ROOT_NAMESPACE, "{}"), ("PERMISSIVE", {}))[0]
    findings = []
    for (namespace, selector), (new_mode, policy) in sorted(after.items()):
        old = before.get((namespace, selector)) or before.get((namespace, "{}"))
        old_mode = old[0] if old else mesh_before
        if MTLS_RANK.get(new_mode, 1) >= MTLS_RANK.get(old_mode, 1):
            continue
        subject = describe(resource_key(policy))
        findings.append(Finding(
            "exposure.mtls-weakened", Severity.ERROR, CATEGORY, mode, variants, subject,
            f"{subject} sets mTLS {new_mode} (spec.mtls.mode / spec.portLevelMtls) for "
            f"{'workloads ' + selector if selector != '{}' else 'namespace ' + namespace} in {variants[1]}; "
            f"{variants[0]} enforces {old_mode}: plaintext connections are accepted",
            {"variant": variants[1], "baseline": variants[0], "path": "spec.mtls.mode", "old": old_mode,
             "new": new_mode, "selector": json.loads(selector)}))
    rules_before = {resource_key(o): o for o in base if o.get("kind") == "DestinationRule"}
    for rule in other:
        key = resource_key(rule)
        if rule.get("kind") != "DestinationRule" or key not in rules_before:
            continue
        old_tls = (((rules_before[key].get("spec") or {}).get("trafficPolicy") or {}).get("tls") or {}).get("mode")
        new_tls = (((rule.get("spec") or {}).get("trafficPolicy") or {}).get("tls") or {}).get("mode")
        if old_tls in TLS_ORIGINATING and new_tls not in TLS_ORIGINATING:
            subject = describe(key)
            findings.append(Finding(
                "exposure.mtls-weakened", Severity.ERROR, CATEGORY, mode, variants, subject,
                f"{subject}: spec.trafficPolicy.tls.mode is {new_tls or 'unset'} in {variants[1]} "
                f"({old_tls} in {variants[0]}): clients stop originating TLS to "
                f"{(rule.get('spec') or {}).get('host')}",
                {"variant": variants[1], "baseline": variants[0], "path": "spec.trafficPolicy.tls.mode",
                 "old": old_tls, "new": new_tls}))
    return findings


def exposure_findings(base: list[Manifest], other: list[Manifest], *, mode: str, variants: tuple[str, str],
                      other_variant: Variant | None = None) -> list[Finding]:
    """Everything `other` exposes more than `base`: Services, external routes and Istio mTLS."""
    roles = backend_roles(other, other_variant)
    return (service_findings(base, other, mode=mode, variants=variants, roles=roles)
            + route_findings(base, other, mode=mode, variants=variants, roles=roles)
            + mtls_findings(base, other, mode=mode, variants=variants))
