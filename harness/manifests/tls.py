"""TLS-mode checks: do the endpoints present certificates that chain to the install's CA and cover the
names clients use, and which driver connections are plain HTTP.

Chain and name verification use the `cryptography` package (real X.509 checks, not string matching);
certificates come from the cluster (the CA Secret and what a TLS endpoint presents) in the live tier, and
from files in tests. Plain-HTTP driver connections are read from what clients are configured with: the
compiled workflows' HTTP templates and the executor-plugin sidecar spec.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from harness.manifests.yamlload import load as load_yaml
from harness.models import Finding, Severity


@dataclass(frozen=True)
class Endpoint:
    """A TLS endpoint clients use: the Service, the port, and every name clients connect with."""

    service: str  # namespace/name
    port: int
    names: tuple[str, ...]


def load_pem_chain(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            key.verify(cert.signature, cert.tbs_certificate_bytes)  # ed25519 / ed448
    except InvalidSignature:
        return False
    return cert.issuer == issuer.subject


def _covers(cert: x509.Certificate, name: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(name)
        return ip in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        pass
    for pattern in san.get_values_for_type(x509.DNSName):
        if pattern.lower() == name.lower():
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1].lower() == pattern[2:].lower():
            return True
    return False


def verify_endpoint(presented: list[x509.Certificate], ca: list[x509.Certificate], endpoint: Endpoint, *,
                    now: dt.datetime | None = None) -> list[str]:
    """Problems with what an endpoint presented (empty list: it chains to the CA and covers every name)."""
    if not presented:
        return ["no certificate presented"]
    now = now or dt.datetime.now(dt.timezone.utc)
    leaf, problems = presented[0], []
    if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
        problems.append(f"leaf certificate not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d} to "
                        f"{leaf.not_valid_after_utc:%Y-%m-%d})")
    # walk the presented chain, then require a CA certificate to sign its last element
    chain_ok = all(_signed_by(a, b) for a, b in zip(presented, presented[1:]))
    anchored = any(_signed_by(presented[-1], root) or presented[-1] == root for root in ca)
    if not (chain_ok and anchored):
        problems.append("certificate does not chain to the install's CA")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            problems.append("certificate is not for server authentication (no serverAuth EKU)")
    except x509.ExtensionNotFound:
        pass  # no EKU extension: any usage is allowed
    missing = [n for n in endpoint.names if not _covers(leaf, n)]
    if missing:
        problems.append(f"certificate does not cover {', '.join(missing)}")
    return problems


def endpoint_findings(results: dict[Endpoint, list[str]], *, mode: str, variant: str) -> list[Finding]:
    findings = []
    for endpoint, problems in sorted(results.items(), key=lambda kv: kv[0].service):
        if problems:
            findings.append(Finding("tls.endpoint-invalid", Severity.ERROR, "tls", mode, (variant,),
                                    f"Service {endpoint.service}:{endpoint.port}", "; ".join(problems),
                                    {"names": list(endpoint.names)}))
        else:
            findings.append(Finding("tls.endpoint-valid", Severity.INFO, "tls", mode, (variant,),
                                    f"Service {endpoint.service}:{endpoint.port}",
                                    f"chains to the install CA and covers {', '.join(endpoint.names)}",
                                    {"names": list(endpoint.names)}))
    return findings


def tls_endpoints(manifests: Iterable[dict[str, Any]]) -> list[Endpoint]:
    """Endpoints named by cert-manager Certificates in a render: each DNS name that is a Service of the
    render becomes an endpoint on that Service's ports, with every name the Certificate lists for it."""
    services = {(m["metadata"].get("namespace", ""), m["metadata"]["name"]): m for m in manifests
                if m.get("kind") == "Service"}
    endpoints: dict[tuple[str, int], set[str]] = {}
    for cert in (m for m in manifests if m.get("kind") == "Certificate"):
        names = cert.get("spec", {}).get("dnsNames", [])
        for name in names:
            service = name.split(".")[0]
            namespace = name.split(".")[1] if name.count(".") >= 1 else cert["metadata"].get("namespace", "")
            key = (namespace, service) if (namespace, service) in services else (
                cert["metadata"].get("namespace", ""), service)
            if key not in services:
                continue
            for port in services[key].get("spec", {}).get("ports", []):
                endpoints.setdefault((f"{key[0]}/{key[1]}", int(port["port"])), set()).add(name)
    return [Endpoint(svc, port, tuple(sorted(names))) for (svc, port), names in sorted(endpoints.items())]


_HTTP_URL = re.compile(r"^\s+url:\s*(\S+)\s*$", re.MULTILINE)


def driver_connections(manifests: Iterable[dict[str, Any]], workflows_dir: Path | None) -> list[dict[str, str]]:
    """How clients reach the driver: HTTP-template URLs in compiled workflows, and the executor-plugin
    sidecar's port (Argo's agent calls it at http://localhost:<port>). Pure reading, no cluster."""
    connections: dict[tuple[str, str], dict[str, str]] = {}
    if workflows_dir and workflows_dir.is_dir():
        for path in sorted(workflows_dir.glob("*.yaml")):
            # In an Argo Workflow only HTTP templates have a `url:` key, so a line scan finds every driver
            # URL without parsing ~130 files per tree (the compiled-workflow check parses them anyway).
            for url in _HTTP_URL.findall(path.read_text()):
                if url:
                    parsed = urlparse(url.strip("'\""))
                    key = (parsed.scheme, parsed.netloc)
                    connections.setdefault(key, {"scheme": parsed.scheme, "target": parsed.netloc,
                                                 "caller": "argo agent (HTTP template)",
                                                 "example": f"compiled-workflows/{path.name}"})
    for obj in manifests:
        labels = obj.get("metadata", {}).get("labels", {}) or {}
        if obj.get("kind") == "ConfigMap" and labels.get("workflows.argoproj.io/configmap-type") == "ExecutorPlugin":
            sidecar = load_yaml(obj.get("data", {}).get("sidecar.container", "") or "{}") or {}
            for port in sidecar.get("ports", []):
                target = f"localhost:{port.get('containerPort')}"
                connections.setdefault(("http", target), {
                    "scheme": "http", "target": target, "caller": "argo agent (executor plugin, same pod)",
                    "example": f"ConfigMap {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"})
    return [connections[k] for k in sorted(connections)]


def plain_http_findings(connections: list[dict[str, str]], *, mode: str, variant: str) -> list[Finding]:
    findings = []
    for conn in connections:
        if conn["scheme"] != "http":
            continue
        pod_local = conn["target"].startswith(("localhost:", "127.0.0.1:"))
        findings.append(Finding(
            "tls.driver-plain-http", Severity.INFO if pod_local else Severity.WARNING, "tls", mode, (variant,),
            f"driver connection {conn['scheme']}://{conn['target']}",
            f"{conn['caller']} reaches the driver over plain HTTP"
            + (" inside one pod" if pod_local else " across the cluster network, even in TLS mode"),
            dict(conn)))
    return findings
