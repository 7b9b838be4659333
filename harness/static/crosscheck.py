"""Install cross-checks over rendered manifests: images, the driver's TLS CA, and network exposure.

Pure functions over lists of manifest dicts (from `harness.render.kustomize`). Where each variant's driver
lives comes from the catalogue (`variant.driver.kind` and `.carriers`), never from variant names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.manifests.labels import labels_match, selector_matches
from harness.manifests.services import selects_pods, service_backends
from harness.manifests.workloads import POD_SPEC_PATHS, containers, pod_metadata, pod_spec
from harness.manifests.yamlload import load as load_yaml
from harness.models import Finding, Mode, Severity, Variant, parse_image
from harness.render.kustomize import resource_key
from harness.static.inventory import describe, subject_of

Manifest = dict[str, Any]

# ---------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------

# Where workloads keep their pod template (kind -> path of keys to the PodSpec).

# Tags that mean "someone must replace this before it works" (case-insensitive).
PLACEHOLDER_TAGS = frozenset({
    "dummy", "placeholder", "todo", "tbd", "fixme", "changeme", "change-me", "replaceme", "replace-me",
    "xxx", "example", "undefined", "none", "null", "unset",
})
_IMAGE_KEY = re.compile(r"^[\w.-]*image$", re.IGNORECASE)  # image, cacheImage, V2_DRIVER_IMAGE, sidecar-image
UNEXPANDED = re.compile(r"\$\(|\$\{|\{\{")  # kustomize vars, shell and Go/Argo templates left in a value

EMBEDDED_NOTE = ("embedded in a string, not a container `image:` field: kustomize `images:` transforms "
                 "never rewrite it, so the overlay's image overrides do not reach it")


@dataclass(frozen=True)
class ImageReference:
    """`image` as found at `location` (a field path) inside the object `subject`."""

    image: str
    subject: str
    location: str
    embedded: bool = False  # inside a string (ConfigMap data, env value, argument) rather than `image:`

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "subject": self.subject, "location": self.location,
                "embedded": self.embedded}


def is_cluster_local_registry(domain: str) -> bool:
    """A registry only reachable from a particular cluster or host: `localhost`, a loopback or private
    IP, or a single-label host name such as `kind-registry:5000` (no public DNS name has one label)."""
    host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host
    return address.is_loopback or address.is_private


def _walk_container(container: dict[str, Any], subject: str, prefix: str) -> Iterator[ImageReference]:
    if isinstance(container.get("image"), str):
        yield ImageReference(container["image"], subject, f"{prefix}.image")
    for env in container.get("env") or []:
        if isinstance(env, dict) and str(env.get("name", "")).upper().endswith("_IMAGE") \
                and isinstance(env.get("value"), str) and env["value"]:
            yield ImageReference(env["value"], subject, f"{prefix}.env[{env['name']}].value", embedded=True)
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    for i, arg in enumerate(args):
        if not isinstance(arg, str) or not arg.startswith("-"):
            continue
        flag, eq, value = arg.partition("=")
        if not flag.endswith("-image"):
            continue
        value = value if eq else (args[i + 1] if i + 1 < len(args) and isinstance(args[i + 1], str) else "")
        if value:
            yield ImageReference(value, subject, f"{prefix}.args[{flag}]", embedded=True)


def _embedded_images(value: Any, subject: str, prefix: str) -> Iterator[ImageReference]:
    """`image:` keys, and keys ending in image, anywhere in a parsed YAML/JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}"
            if isinstance(item, str) and _IMAGE_KEY.match(str(key)) and item.strip() and " " not in item.strip():
                yield ImageReference(item.strip(), subject, path, embedded=True)
            else:
                yield from _embedded_images(item, subject, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _embedded_images(item, subject, f"{prefix}[{i}]")


def collect_images(manifests: Iterable[Manifest]) -> list[ImageReference]:
    """Every image in a render: pod specs of all workload kinds (init and ephemeral containers too),
    `*_IMAGE` env values and `--*-image` arguments, and images inside ConfigMap data strings."""
    found: list[ImageReference] = []
    for obj in manifests:
        subject = describe(resource_key(obj))
        for container, path in containers(obj):
            found += _walk_container(container, subject, path)
        if obj.get("kind") == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if not isinstance(text, str):
                    continue
                location = f'data["{key}"]'
                if _IMAGE_KEY.match(key) and text.strip() and not any(c.isspace() for c in text.strip()):
                    found.append(ImageReference(text.strip(), subject, location, embedded=True))
                    continue
                try:
                    parsed = load_yaml(text)  # libyaml: ~700 ConfigMap strings per run
                except yaml.YAMLError:
                    continue  # not YAML/JSON: a script or a template, nothing structured to read
                if isinstance(parsed, dict | list):
                    found += _embedded_images(parsed, subject, location)
    return found


def classify_image(image: str) -> list[tuple[str, Severity, str]]:
    """(finding id, severity, reason) for one reference; empty when nothing is wrong with it."""
    if not image.strip():
        return [("image.unresolvable", Severity.ERROR, "the image reference is empty")]
    if UNEXPANDED.search(image):
        return [("image.unresolvable", Severity.ERROR, "it contains an unexpanded variable or template")]
    parsed = parse_image(image)
    if parsed is None:
        return [("image.unresolvable", Severity.ERROR, "it is not a valid image reference")]
    out = []
    if parsed.tag.lower() in PLACEHOLDER_TAGS:
        out.append(("image.placeholder", Severity.ERROR,
                    f"tag `{parsed.tag}` is a placeholder that must be replaced before the install works"))
    if is_cluster_local_registry(parsed.domain):
        out.append(("image.local-registry", Severity.INFO,
                    f"registry `{parsed.domain}` resolves only inside a cluster or host that runs it"))
    if not parsed.tag and not parsed.digest:
        out.append(("image.untagged", Severity.INFO, "no tag or digest: pulls the moving `latest` tag"))
    return out


def image_findings(images: Iterable[ImageReference], *, mode: str, variants: tuple[str, ...]) -> list[Finding]:
    """One finding per (rule, image), naming every object and field that uses it."""
    images = list(images)
    by_repo: dict[str, set[str]] = {}
    for ref in images:
        parsed = parse_image(ref.image)
        if parsed:
            by_repo.setdefault(parsed.repository, set()).add(ref.image)
    grouped: dict[tuple[str, str], list[ImageReference]] = {}
    reasons: dict[tuple[str, str], tuple[Severity, str]] = {}
    for ref in images:
        for finding_id, severity, reason in classify_image(ref.image):
            grouped.setdefault((finding_id, ref.image), []).append(ref)
            reasons[(finding_id, ref.image)] = (severity, reason)
    findings = []
    for (finding_id, image), refs in sorted(grouped.items()):
        severity, reason = reasons[(finding_id, image)]
        subjects = sorted({r.subject for r in refs})
        evidence: dict[str, Any] = {"image": image, "used_at": [r.to_dict() for r in refs]}
        if any(r.embedded for r in refs):
            evidence["note"] = EMBEDDED_NOTE
        parsed = parse_image(image)
        if parsed:
            others = sorted(by_repo.get(parsed.repository, set()) - {image})
            if others:  # the same repository elsewhere with another tag: a transform reached those only
                evidence["same_repository_elsewhere"] = others
        subject = subjects[0] + (f" (+{len(subjects) - 1} more)" if len(subjects) > 1 else "")
        findings.append(Finding(finding_id, severity, "image", mode, variants, subject,
                                f"image `{image}`: {reason}", evidence))
    return findings


# ---------------------------------------------------------------------------------------------------
# TLS: does the driver's container get the CA the TLS install provides?
# ---------------------------------------------------------------------------------------------------

# Argo facts (workflow/controller/agent.go): agent pods mount a Secret of this name, when it exists in
# the workflow namespace, as a volume of the same name, so executor-plugin sidecars can mount it.
ARGO_AGENT_CA_SECRET = "argo-workflows-agent-ca-certificates"
# KFP API server env naming the CA Secret its compiler mounts into driver and launcher pods
# (argocompiler ConfigureCustomCABundle; golden test_data/compiled-workflows/mounted_cabundle_secret.yaml).
APISERVER_CA_SECRET_ENV = "CABUNDLE_SECRET_NAME"


@dataclass(frozen=True)
class CaSecret:
    name: str
    namespace: str
    source: str  # the object that produces it, e.g. "Certificate kubeflow/kfp-api-tls-cert"


@dataclass
class CaWiring:
    variant: str
    driver_kind: str
    wired: bool
    reason: str
    ca_secrets: list[CaSecret] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    carriers: list[str] = field(default_factory=list)  # subjects of the objects that carry the driver

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "driver_kind": self.driver_kind, "wired": self.wired,
                "reason": self.reason, "carriers": self.carriers,
                "ca_secrets": [s.__dict__ for s in self.ca_secrets], "evidence": self.evidence}


def tls_ca_secrets(manifests: Iterable[Manifest]) -> list[CaSecret]:
    """Secrets the TLS install fills with a CA: cert-manager Certificates' `spec.secretName`."""
    out = []
    for obj in manifests:
        if obj.get("kind") == "Certificate" and obj.get("apiVersion", "").startswith("cert-manager.io/"):
            secret = (obj.get("spec") or {}).get("secretName")
            if secret:
                key = resource_key(obj)
                out.append(CaSecret(secret, key[2], describe(key)))
    return out


@dataclass(frozen=True)
class Carrier:
    kind: str
    name: str
    detail: str  # e.g. "env V2_DRIVER_IMAGE", "data.sidecar.container"


def parse_carrier(text: str) -> Carrier:
    """`Kind/name (detail)` as written in the catalogue's `driver.carriers`."""
    match = re.match(r"^\s*(?P<kind>[^/\s]+)/(?P<name>[^\s(]+)\s*(?:\((?P<detail>[^)]*)\))?\s*$", text)
    if not match:
        return Carrier("", text.strip(), "")
    return Carrier(match["kind"], match["name"], (match["detail"] or "").strip())


def _find(manifests: list[Manifest], carrier: Carrier) -> list[Manifest]:
    return [o for o in manifests if o.get("kind") == carrier.kind and (o.get("metadata") or {}).get("name") == carrier.name]


def _pod_driver(manifests: list[Manifest], carriers: list[Carrier], cas: list[CaSecret], mode: Mode,
                wiring: CaWiring) -> None:
    """Driver pods are compiled by the API server: it mounts the Secret its env names into them."""
    names = {s.name for s in cas if s.namespace == mode.user_namespace}
    for carrier in carriers:
        for obj in _find(manifests, carrier):
            spec = pod_spec(obj) or {}
            for container in spec.get("containers") or []:
                env = {e.get("name"): e for e in container.get("env") or [] if isinstance(e, dict)}
                path = f"{describe(resource_key(obj))} spec.template.spec.containers[{container.get('name')}]"
                value = (env.get(APISERVER_CA_SECRET_ENV) or {}).get("value")
                if value is None:
                    continue
                wiring.evidence[f"{path}.env[{APISERVER_CA_SECRET_ENV}]"] = value
                if value in names:
                    wiring.wired = True
                    wiring.reason = (f"the API server's {APISERVER_CA_SECRET_ENV}={value} names the CA Secret; "
                                     "its compiler mounts it at /kfp/certs in every driver pod")
                    return
                wiring.reason = (f"{APISERVER_CA_SECRET_ENV}={value} but the TLS install writes its CA to "
                                 f"{', '.join(sorted(names)) or 'no Secret in the workflow namespace'}")
                return
    wiring.reason = f"no {APISERVER_CA_SECRET_ENV} on the API server, so driver pods get no CA"


def _plugin_driver(manifests: list[Manifest], carriers: list[Carrier], cas: list[CaSecret], mode: Mode,
                   wiring: CaWiring) -> None:
    """The sidecar spec lives in a ConfigMap string; Argo provides the agent CA volume by name."""
    names = {s.name for s in cas if s.namespace == mode.user_namespace}
    for carrier in carriers:
        key = carrier.detail.removeprefix("data.") if carrier.detail.startswith("data.") else ""
        for obj in _find(manifests, carrier):
            text = (obj.get("data") or {}).get(key)
            try:
                container = load_yaml(text) if isinstance(text, str) else None
            except yaml.YAMLError:
                container = None
            if not isinstance(container, dict):
                wiring.reason = f'{describe(resource_key(obj))} data["{key}"] is not a container spec'
                return
            where = f'{describe(resource_key(obj))} data["{key}"]'
            mounts = {m.get("name"): m for m in container.get("volumeMounts") or [] if isinstance(m, dict)}
            wiring.evidence[f"{where}.volumeMounts"] = sorted(str(n) for n in mounts)
            if ARGO_AGENT_CA_SECRET not in mounts:
                wiring.reason = f"the sidecar spec does not mount Argo's agent CA volume {ARGO_AGENT_CA_SECRET}"
                return
            if ARGO_AGENT_CA_SECRET not in names:
                wiring.reason = (f"the sidecar mounts {ARGO_AGENT_CA_SECRET}, but the TLS install writes its CA to "
                                 f"{', '.join(sorted(names)) or 'no Secret in the workflow namespace'}")
                return
            wiring.wired = True
            wiring.reason = (f"the sidecar mounts Argo's agent CA volume {ARGO_AGENT_CA_SECRET} at "
                             f"{mounts[ARGO_AGENT_CA_SECRET].get('mountPath')}, and the TLS install writes the CA "
                             "to that Secret")
            return
    wiring.reason = "the executor-plugin ConfigMap is not in the render"


def _service_driver(manifests: list[Manifest], carriers: list[Carrier], cas: list[CaSecret], mode: Mode,
                    wiring: CaWiring) -> None:
    """A long-running driver Deployment needs a CA volume (or env from the Secret) of its own."""
    deployments = [o for c in carriers if c.kind in POD_SPEC_PATHS for o in _find(manifests, c)]
    if not deployments:
        wiring.reason = "the driver workload is not in the render"
        return
    for obj in deployments:
        key = resource_key(obj)
        names = {s.name for s in cas if s.namespace == key[2]}
        spec = pod_spec(obj) or {}
        ca_volumes = set()
        for volume in spec.get("volumes") or []:
            secrets = [(volume.get("secret") or {}).get("secretName")]
            secrets += [(s.get("secret") or {}).get("name") for s in (volume.get("projected") or {}).get("sources") or []]
            if names & set(secrets):
                ca_volumes.add(volume.get("name"))
        where = f"{describe(key)} spec.template.spec"
        wiring.evidence[f"{where}.volumes"] = sorted(str(v.get("name")) for v in spec.get("volumes") or [])
        for container in spec.get("containers") or []:
            mounted = [m for m in container.get("volumeMounts") or [] if m.get("name") in ca_volumes]
            env_refs = [e["name"] for e in container.get("env") or []
                        if ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") in names]
            if mounted or env_refs:
                wiring.wired = True
                wiring.reason = (f"container {container.get('name')} gets the CA Secret via "
                                 + ", ".join([f"volumeMount {m.get('mountPath')}" for m in mounted]
                                             + [f"env {n}" for n in env_refs]))
                return
    wiring.reason = (f"no volume, mount or env of the driver workload refers to the CA Secret "
                     f"{', '.join(sorted({s.name for s in cas})) or '(none)'}")


# How a CA reaches the driver, per driver kind (models.DRIVER_KINDS): facts about the transport, not variants.
CA_WIRING_RULES: dict[str, Callable[[list[Manifest], list[Carrier], list[CaSecret], Mode, CaWiring], None]] = {
    "pod": _pod_driver,
    "executor-plugin": _plugin_driver,
    "central-service": _service_driver,
}


def driver_ca_wiring(manifests: list[Manifest], variant: Variant, mode: Mode) -> CaWiring:
    """Whether the variant's driver container receives the CA the TLS install provides."""
    carriers = [parse_carrier(c) for c in variant.driver.carriers]
    cas = tls_ca_secrets(manifests)
    found = [describe(resource_key(o)) for c in carriers for o in _find(manifests, c)]
    wiring = CaWiring(variant.name, variant.driver.kind, False, "", cas,
                      carriers=found or [f"{c.kind} {c.name}" for c in carriers])
    if not cas:
        wiring.reason = "the render has no cert-manager Certificate, so there is no CA to wire"
        return wiring
    rule = CA_WIRING_RULES.get(variant.driver.kind)
    if rule is None:
        wiring.reason = f"no CA wiring rule for driver kind {variant.driver.kind!r}"
        return wiring
    rule(manifests, carriers, cas, mode, wiring)
    return wiring


def tls_findings(wirings: list[CaWiring], *, mode: Mode) -> list[Finding]:
    """Per variant `tls.driver-ca-wired` / `tls.driver-ca-missing`, and `tls.driver-ca-differs` when the
    variants disagree. Only meaningful in a TLS mode: elsewhere nothing is reported."""
    if not mode.tls:
        return []
    findings = []
    for w in wirings:
        subject = ", ".join(w.carriers) or w.variant
        evidence = w.to_dict()
        if w.wired:
            findings.append(Finding("tls.driver-ca-wired", Severity.INFO, "tls", mode.name, (w.variant,), subject,
                                    f"{w.variant} driver gets the TLS CA: {w.reason}", evidence))
        else:
            findings.append(Finding("tls.driver-ca-missing", Severity.ERROR, "tls", mode.name, (w.variant,),
                                    subject, f"{w.variant} driver does not get the TLS CA: {w.reason}", evidence))
    if len({w.wired for w in wirings}) > 1:
        missing = [w for w in wirings if not w.wired]
        findings.append(Finding(
            "tls.driver-ca-differs", Severity.WARNING, "tls", mode.name, tuple(w.variant for w in wirings),
            ", ".join(c for w in missing for c in w.carriers),
            "the TLS CA reaches the driver in " + ", ".join(w.variant for w in wirings if w.wired)
            + " but not in " + ", ".join(w.variant for w in missing),
            {"variants": {w.variant: {"wired": w.wired, "reason": w.reason,
                                      "ca_secrets": sorted({s.name for s in w.ca_secrets})} for w in wirings}},
        ))
    return findings


# ---------------------------------------------------------------------------------------------------
# Network exposure: Services whose pods no NetworkPolicy or Istio AuthorizationPolicy selects
# ---------------------------------------------------------------------------------------------------


def _pod_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A NetworkPolicy podSelector; one with an unknown operator is rejected by the API server, so it
    protects nothing."""
    try:
        return selector_matches(selector, labels)
    except ValueError:
        return False


@dataclass
class ServiceExposure:
    subject: str
    ports: list[Any]
    backends: list[str]  # workloads whose pods the Service selects
    protected_by: list[str]

    @property
    def protected(self) -> bool:
        return bool(self.protected_by)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.subject, "ports": self.ports, "backends": self.backends,
                "protected_by": self.protected_by}


def _restricts_ingress(policy: Manifest) -> bool:
    """A NetworkPolicy limits ingress if it has the Ingress type and no rule that admits everyone."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    if "Ingress" not in types:
        return False
    return not any(not rule.get("from") for rule in spec.get("ingress") or [])


def service_exposure(manifests: list[Manifest]) -> list[ServiceExposure]:
    """Every Service with a pod selector, with the policies that select its pods."""
    policies = [o for o in manifests if o.get("kind") == "NetworkPolicy" and _restricts_ingress(o)]
    authz = [o for o in manifests if o.get("kind") == "AuthorizationPolicy"
             and o.get("apiVersion", "").startswith("security.istio.io/")]
    out = []
    for svc in manifests:
        if svc.get("kind") != "Service" or not selects_pods(svc):
            continue  # no pods behind it that a policy could protect
        spec = svc.get("spec") or {}
        key = resource_key(svc)
        # a CronJob's pod labels are under spec.jobTemplate.spec.template (harness.manifests.workloads)
        backends = [(subject_of(w), pod_metadata(w).get("labels") or {}) for w in service_backends(svc, manifests)]
        protected_by = set()
        for _name, labels in backends:
            for policy in policies:
                if resource_key(policy)[2] == key[2] and _pod_selector_matches((policy.get("spec") or {}).get("podSelector"), labels):
                    protected_by.add(subject_of(policy))
            for policy in authz:
                match_labels = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels")
                if resource_key(policy)[2] == key[2] and labels_match(match_labels, labels):
                    protected_by.add(subject_of(policy))
        ports = [p.get("port") for p in spec.get("ports") or []]
        out.append(ServiceExposure(describe(key), ports, sorted(n for n, _ in backends), sorted(protected_by)))
    return out


def network_findings(base: list[Manifest], other: list[Manifest], *, mode: str,
                     variants: tuple[str, str]) -> list[Finding]:
    """`network.unprotected-service` (error) for Services `other` adds, or newly leaves unprotected,
    that no policy selects; `network.unprotected-services` (info) lists all unprotected ones in `other`."""
    before = {e.subject: e for e in service_exposure(base)}
    after = service_exposure(other)
    findings = []
    for exp in after:
        if exp.protected:
            continue
        old = before.get(exp.subject)
        if old is not None and not old.protected:
            continue
        why = "new in" if old is None else "no longer protected in"
        findings.append(Finding(
            "network.unprotected-service", Severity.ERROR, "network", mode, variants, exp.subject,
            f"{exp.subject} (port(s) {', '.join(map(str, exp.ports))}) is {why} {variants[1]} and no "
            "NetworkPolicy or Istio AuthorizationPolicy selects its pods: any pod in the cluster can call it",
            {**exp.to_dict(), "baseline": variants[0]},
        ))
    unprotected = [e for e in after if not e.protected]
    if unprotected:
        findings.append(Finding(
            "network.unprotected-services", Severity.INFO, "network", mode, (variants[1],),
            ", ".join(e.subject for e in unprotected),
            f"{len(unprotected)} of {len(after)} Service(s) in {variants[1]} have pods that no policy selects",
            {"services": [e.to_dict() for e in unprotected]},
        ))
    return findings

