"""TLS checks with real X.509 certificates generated in the test, and driver connections from the real trees."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.config import load_config
from harness.manifests.tls import (
    Endpoint,
    driver_connections,
    endpoint_findings,
    load_pem_chain,
    plain_http_findings,
    tls_endpoints,
    verify_endpoint,
)
from harness.render.kustomize import Renderer

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(name: str = "kfp-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca: x509.Certificate, ca_key, names: list[str], *, days: int = 30, server: bool = True) -> x509.Certificate:
    key = _key()
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=days))
               .add_extension(x509.SubjectAlternativeName(sans), critical=False))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


API = Endpoint("kubeflow/ml-pipeline", 8888, ("ml-pipeline", "ml-pipeline.kubeflow", "localhost", "127.0.0.1"))


def test_leaf_signed_by_install_ca_covering_all_names_is_valid() -> None:
    ca, ca_key = _ca()
    leaf = _leaf(ca, ca_key, list(API.names))
    assert verify_endpoint([leaf], [ca], API, now=NOW) == []
    # round trip through PEM, as read from a Secret's ca.crt
    pem = ca.public_bytes(serialization.Encoding.PEM)
    assert verify_endpoint([leaf], load_pem_chain(pem), API, now=NOW) == []


def test_certificate_from_another_ca_does_not_chain() -> None:
    ca, _ = _ca()
    other, other_key = _ca("attacker")
    problems = verify_endpoint([_leaf(other, other_key, list(API.names))], [ca], API, now=NOW)
    assert problems == ["certificate does not chain to the install's CA"]


def test_missing_name_expired_and_wrong_usage_are_each_reported() -> None:
    ca, ca_key = _ca()
    leaf = _leaf(ca, ca_key, ["ml-pipeline", "localhost"], days=-0, server=False)
    problems = verify_endpoint([leaf], [ca], API, now=NOW + dt.timedelta(days=2))
    assert any("not valid now" in p for p in problems)
    assert any("serverAuth" in p for p in problems)
    assert any(p.startswith("certificate does not cover ml-pipeline.kubeflow, 127.0.0.1") for p in problems)


def test_findings_name_the_service_and_the_problem() -> None:
    ca, ca_key = _ca()
    bad = Endpoint("kubeflow/metadata-grpc-service", 8080, ("metadata-grpc-service.kubeflow",))
    results = {API: verify_endpoint([_leaf(ca, ca_key, list(API.names))], [ca], API, now=NOW),
               bad: verify_endpoint([_leaf(ca, ca_key, ["x"])], [ca], bad, now=NOW)}
    findings = {f.subject: f for f in endpoint_findings(results, mode="tls", variant="central-driver")}
    assert findings["Service kubeflow/ml-pipeline:8888"].id == "tls.endpoint-valid"
    assert findings["Service kubeflow/metadata-grpc-service:8080"].blocking


@pytest.fixture(scope="module")
def tls_renders(kfp_trees: Path, shared_renderer: Renderer) -> dict:
    renderer = shared_renderer
    mode = load_config().mode("tls")
    return {v: renderer.render_install(kfp_trees / v, mode).manifests for v in ("driver-pod", "sidecar-plugin",
                                                                                "central-driver")}


def test_tls_endpoints_come_from_the_rendered_certificate(tls_renders: dict) -> None:
    endpoints = {e.service: e for e in tls_endpoints(tls_renders["central-driver"])}
    assert "kubeflow/ml-pipeline" in endpoints
    assert "ml-pipeline.kubeflow" in endpoints["kubeflow/ml-pipeline"].names or \
        any(n.startswith("ml-pipeline.") for n in endpoints["kubeflow/ml-pipeline"].names)
    assert "kubeflow/ml-pipeline-driver" not in endpoints  # the central driver has no TLS listener


def test_plain_http_driver_connections_per_variant_real_trees(tls_renders: dict, kfp_trees: Path) -> None:
    def plain(variant: str) -> dict[str, str]:
        conns = driver_connections(tls_renders[variant], kfp_trees / variant / "test_data" / "compiled-workflows")
        return {f.subject: f.severity.value for f in plain_http_findings(conns, mode="tls", variant=variant)}

    assert plain("central-driver") == {
        "driver connection http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080": "warning"}
    assert plain("sidecar-plugin") == {"driver connection http://localhost:8080": "info"}
    assert plain("driver-pod") == {}
