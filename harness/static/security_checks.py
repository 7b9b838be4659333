"""The static tier's security-review checks in the `harness.static.context.Check` shape: workload hardening (Pod
Security Standards), exposure (Services, external routes, Istio mTLS) and literal credentials.

Each compares the pair's base variant with the other, per overlay (`ci`, `product`), and reports only what
the other variant makes worse. Credentials are found by key name and value shape and reported by
fingerprint (`harness.static.credentials`), never by value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from harness.boundary.redact import fingerprint
from harness.manifests.workloads import containers
from harness.manifests.yamlload import load as load_yaml
from harness.models import Finding, Mode, Severity
from harness.render.kustomize import resource_key
from harness.static.credentials import is_credential_key, is_literal, shapes_in
from harness.static.exposure import exposure_findings
from harness.static.hardening import hardening_findings, postures
from harness.static.install_checks import _overlays, _tag, _variants
from harness.static.inventory import describe

if TYPE_CHECKING:
    from harness.static.context import Pair, StaticContext

Manifest = dict[str, Any]
Result = tuple[list[Finding], dict[str, Any]]
_ASSIGNMENT = re.compile(r"(?:^|[\s;&|'\"])-{0,2}([A-Za-z_][\w.-]*)[=:]\s*['\"]?([^\s'\";&|]+)")


# ------------------------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class LiteralCredential:
    subject: str
    location: str  # field path, e.g. `spec.template.spec.containers[x].env[PASSWORD].value`
    reason: str  # `key PASSWORD` or `shape aws-access-key`
    fingerprint: str
    shape: bool  # found by the value's shape (key material), not only by its key name

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "location": self.location, "reason": self.reason,
                "fingerprint": self.fingerprint}


def _keyed(subject: str, location: str, key: str, value: Any) -> Iterator[LiteralCredential]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and is_credential_key(key) and is_literal(value) and "\n" not in value.strip():
        yield LiteralCredential(subject, location, f"key {key}", fingerprint(value.strip()), False)


def _shaped(subject: str, location: str, text: Any) -> Iterator[LiteralCredential]:
    if isinstance(text, str):
        for shape, print_ in shapes_in(text):
            yield LiteralCredential(subject, location, f"shape {shape}", print_, True)


def _walk(subject: str, location: str, value: Any) -> Iterator[LiteralCredential]:
    """Credential keys with literal values anywhere in parsed data; `{name, value}` items count by name."""
    if isinstance(value, dict):
        name = value.get("name")
        for key, item in value.items():
            path = f"{location}.{key}" if location else str(key)
            if key == "value" and isinstance(name, str):
                yield from _keyed(subject, path, name, item)
            elif isinstance(item, dict | list):
                yield from _walk(subject, path, item)
            else:
                yield from _keyed(subject, path, str(key), item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            label = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else i
            yield from _walk(subject, f"{location}[{label}]", item)


def _in_args(subject: str, location: str, argv: list[Any]) -> Iterator[LiteralCredential]:
    """`--password=x`, `--password x`, `PASSWORD=x` (also inside shell scripts), and credential shapes."""
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            continue
        if arg.startswith("-") and "=" not in arg and is_credential_key(arg.lstrip("-")) and i + 1 < len(argv):
            nxt = argv[i + 1]
            if isinstance(nxt, str) and not nxt.startswith("-"):
                yield from _keyed(subject, f"{location}[{i + 1}]", arg.lstrip("-"), nxt)
        for match in _ASSIGNMENT.finditer(arg):
            yield from _keyed(subject, f"{location}[{i}]", match.group(1), match.group(2))
        yield from _shaped(subject, f"{location}[{i}]", arg)


def literal_credentials(manifests: Iterable[Manifest]) -> list[LiteralCredential]:
    """Credential values written literally in env values, command/args and ConfigMap data of a render."""
    found: list[LiteralCredential] = []
    for obj in manifests:
        subject = describe(resource_key(obj))
        for c, prefix in containers(obj):
            for env in c.get("env") or []:
                if isinstance(env, dict) and "value" in env:
                    where = f"{prefix}.env[{env.get('name')}].value"
                    found += _keyed(subject, where, str(env.get("name")), env["value"])
                    found += _shaped(subject, where, env["value"])
            for field in ("command", "args"):
                found += _in_args(subject, f"{prefix}.{field}", list(c.get(field) or []))
        if obj.get("kind") == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                where = f'data["{key}"]'
                found += _keyed(subject, where, str(key), text)
                found += _shaped(subject, where, text)
                if isinstance(text, str) and "\n" in text:
                    try:
                        parsed = load_yaml(text)
                    except yaml.YAMLError:
                        parsed = None
                    if isinstance(parsed, dict | list):
                        found += _walk(subject, where, parsed)
                    else:
                        for match in _ASSIGNMENT.finditer(text):  # a script or properties file
                            found += _keyed(subject, where, match.group(1), match.group(2))
    unique = {(c.subject, c.location, c.fingerprint): c for c in found}
    return sorted(unique.values(), key=lambda c: (c.subject, c.location, c.reason))


def credential_findings(base: list[Manifest] | list[LiteralCredential], other: list[Manifest] | list[LiteralCredential],
                        *, mode: str, variants: tuple[str, str]) -> list[Finding]:
    """Literal credentials `other` has where `base` has none (or another value): error for key material
    (a credential shape), warning for a literal under a credential key name. Either side may be a render or
    its `literal_credentials` (the static check scans each render once)."""
    def scanned(side: list[Any]) -> list[LiteralCredential]:
        return side if all(isinstance(c, LiteralCredential) for c in side) else literal_credentials(side)

    known = {(c.subject, c.location, c.fingerprint) for c in scanned(base)}
    findings = []
    for cred in scanned(other):
        if (cred.subject, cred.location, cred.fingerprint) in known:
            continue
        findings.append(Finding(
            "credential.literal", Severity.ERROR if cred.shape else Severity.WARNING, "credential", mode, variants,
            cred.subject,
            f"{cred.subject}: {cred.location} holds a literal credential ({cred.reason}, {cred.fingerprint}) in "
            f"{variants[1]}, not in {variants[0]}: put it in a Secret and reference it",
            {**cred.to_dict(), "variant": variants[1], "baseline": variants[0]}))
    return findings


# ------------------------------------------------------------------------------------------- the checks


def check_hardening(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for which in _overlays(ctx, mode):
        for variant in _variants(pairs):
            levels = postures(ctx.render(variant.name, mode.name, which).manifests)
            data[f"{variant.name}.{which}"] = {describe(k): p.level for k, p in sorted(levels.items())}
        for pair in pairs:
            findings += _tag(hardening_findings(ctx.render(pair.base.name, mode.name, which).manifests,
                                                ctx.render(pair.other.name, mode.name, which).manifests,
                                                mode=mode.name, variants=(pair.base.name, pair.other.name)), which)
    return findings, data


def check_exposure(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    findings: list[Finding] = []
    for which in _overlays(ctx, mode):
        for pair in pairs:
            findings += _tag(exposure_findings(ctx.render(pair.base.name, mode.name, which).manifests,
                                               ctx.render(pair.other.name, mode.name, which).manifests,
                                               mode=mode.name, variants=(pair.base.name, pair.other.name),
                                               other_variant=pair.other), which)
    return findings, {"findings": len(findings)}


def check_credentials(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for which in _overlays(ctx, mode):
        creds = {v.name: literal_credentials(ctx.render(v.name, mode.name, which).manifests) for v in _variants(pairs)}
        for name, found in creds.items():
            data[f"{name}.{which}"] = [c.to_dict() for c in found]
        for pair in pairs:
            findings += _tag(credential_findings(creds[pair.base.name], creds[pair.other.name], mode=mode.name,
                                                 variants=(pair.base.name, pair.other.name)), which)
    return findings, data


CHECKS = {
    "hardening": check_hardening,
    "exposure": check_exposure,
    "credentials": check_credentials,
}
