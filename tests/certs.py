"""A certificate shaped like KFP's `kfp-api-tls-cert` (manifests/kustomize/env/cert-manager/base-tls-certs):
self-signed, isCA, naming localhost and 127.0.0.1 so a port-forward verifies. For the TLS fakes."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def kfp_api_tls_cert(*dns_names: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) for `localhost`, 127.0.0.1 and `dns_names`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kfp-api-tls-cert")])
    now = datetime.now(timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (*dns_names, "localhost")]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([*names, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
