"""Per-run certificates, service-account signing key and kubeconfigs for the `controlplane` provider.

One CA signs the kube-apiserver serving certificate and a client certificate per component. Identities
follow what kubeadm writes (kubernetes cmd/kubeadm/app/constants/constants.go @v1.34.0): the controller
manager is user `system:kube-controller-manager`, the scheduler `system:kube-scheduler` (the bootstrap RBAC
policy grants exactly these users their roles, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go),
and the admin is in group `system:masters` (kubeadm's super-admin.conf). Keys are ECDSA P-256: quick to
make, and accepted for serving, client auth and service-account tokens (ES256).
Every private key and kubeconfig is written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The first address of --service-cluster-ip-range is Service `kubernetes` (kind's default range 10.96.0.0/16).
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
VALIDITY = datetime.timedelta(days=2)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str, groups: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass(frozen=True)
class Pki:
    """Paths of everything `write_pki` made in one directory."""

    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    @property
    def ca(self) -> str:
        return self.path("ca.crt")

    def kubeconfig(self, user: str) -> str:
        return self.path(f"{user}.kubeconfig")


CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("kubernetes-super-admin", ("system:masters",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kwok": ("kwok-controller", ("system:masters",)),  # kwok writes Node and Pod status for every fake node
}


def write_pki(directory: Path, server: str, context: str) -> Pki:
    """CA, apiserver serving pair, SA signing pair, and one kubeconfig per entry of CLIENTS."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ca_key = _key()
    ca_name = _name("kfpc-controlplane-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.crt").write_bytes(ca_pem)
    _write_private(directory / "ca.key", _key_pem(ca_key))

    def leaf(name: str, subject: x509.Name, usage: x509.ObjectIdentifier,
             sans: list[x509.GeneralName] | None = None) -> None:
        key = _key()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + VALIDITY)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(directory / f"{name}.key", _key_pem(key))

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    leaf("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
         [*(x509.DNSName(d) for d in dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
          x509.IPAddress(ipaddress.ip_address(KUBERNETES_SERVICE_IP))])
    sa_key = _key()
    _write_private(directory / "sa.key", _key_pem(sa_key))
    (directory / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for user, (common, groups) in CLIENTS.items():
        leaf(user, _name(common, groups), ExtendedKeyUsageOID.CLIENT_AUTH)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(directory / "ca.crt")}}],
            "users": [{"name": user, "user": {"client-certificate": str(directory / f"{user}.crt"),
                                              "client-key": str(directory / f"{user}.key")}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        }
        _write_private(directory / f"{user}.kubeconfig", yaml.safe_dump(config, sort_keys=False).encode())
    return Pki(directory)
