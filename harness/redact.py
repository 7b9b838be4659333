"""Secret redaction. Every boundary (proc, kube, kfpapi) and every writer passes text through here.

Written by hand because no maintained library covers Kubernetes-shaped secrets (service-account JWTs,
bearer headers, `token:` fields in kubeconfigs, base64 Secret data) with stable placeholders.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

PLACEHOLDER = "<redacted>"

# Patterns for things that look like credentials wherever they appear.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "jwt": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "bearer": re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{12,})"),
    "authorization-header": re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{8,})"),
    "token-field": re.compile(r"(?i)((?:^|[\s{,\"'])(?:token|password|secret|secretkey|accesskey|access_key|secret_key)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{6,})"),
    "aws-access-key": re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    "private-key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    "token-flag": re.compile(r"(--token[= ])(\S+)"),
}


def fingerprint(value: str) -> str:
    """A stable, non-reversible reference to a secret: hash prefix and length, never the value."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"sha256:{digest}/len={len(value)}"


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and anything shaped like a credential with a placeholder."""
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, PLACEHOLDER)
    for name, pattern in SECRET_PATTERNS.items():
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + PLACEHOLDER, text)
        elif name == "aws-access-key":
            text = pattern.sub(PLACEHOLDER, text)
        else:
            text = pattern.sub(PLACEHOLDER, text)
    return text


def find_secrets(text: str) -> list[tuple[str, str]]:
    """Credential-looking matches in text as (pattern name, fingerprint); never the value itself."""
    found: list[tuple[str, str]] = []
    for name, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(2) if pattern.groups >= 2 else match.group(0)
            if PLACEHOLDER in value:
                continue
            found.append((name, fingerprint(value)))
    return found
