"""Secret redaction. Every boundary (proc, kube, kfpapi) and every writer passes text through here.

Written by hand because no maintained library covers Kubernetes-shaped secrets (service-account JWTs,
bearer headers, `token:` fields in kubeconfigs, base64 Secret data) with stable placeholders.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

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
    # env-style assignments such as AWS_SECRET_ACCESS_KEY=... in logs and manifests
    "env-credential": re.compile(
        r"\b([A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|API_KEY)[A-Z0-9_]*\s*[=:]\s*[\"']?)"
        r"([^\s\"',}<]{6,})"),
}
# Every pattern needs one of these (lower-cased): a text without any is not scanned further (big logs).
CREDENTIAL_HINTS = ("eyj", "bearer", "authoriz", "token", "passw", "secret", "access_key", "accesskey",
                    "api_key", "akia", "asia", "private key")


def fingerprint(value: str) -> str:
    """A stable, non-reversible reference to a secret: hash prefix and length, never the value."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"sha256:{digest}/len={len(value)}"


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and anything shaped like a credential with a placeholder."""
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, PLACEHOLDER)
    for pattern in SECRET_PATTERNS.values():
        # two-group patterns keep their key (`token: `, `Bearer `) and hide only the value
        text = pattern.sub((lambda m: m.group(1) + PLACEHOLDER) if pattern.groups >= 2 else PLACEHOLDER, text)
    return text


def redact_value(value: Any, known_secrets: Sequence[str] = ()) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists), keys kept."""
    if isinstance(value, str):
        return redact(value, known_secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, known_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, known_secrets) for v in value]
    return value


# `may_hold_secrets` lowers this many characters at a time, not the whole text: a 100 MB log needs no 100 MB
# lowered copy (the report reads two big bundles at once; their transients add up).
HINT_WINDOW = 1 << 20
_HINT_OVERLAP = max(map(len, CREDENTIAL_HINTS)) - 1


def may_hold_secrets(text: str) -> bool:
    """False when no credential pattern can match `text` (it has none of CREDENTIAL_HINTS in `text.lower()`).
    A hint of one of several texts is still there once they are joined with newlines, so one call can clear a
    whole batch. Windows overlap by the longest hint less one character: lowering never makes a character
    shorter, so a hint in the lowered text comes from at most that many characters of one window."""
    for start in range(0, len(text) or 1, HINT_WINDOW):
        window = text[start:start + HINT_WINDOW + _HINT_OVERLAP].lower()
        if any(hint in window for hint in CREDENTIAL_HINTS):
            return True
    return False


def find_secrets(text: str) -> list[tuple[str, str, int]]:
    """(pattern name, fingerprint, line number) for every credential-looking value; never the value."""
    if not may_hold_secrets(text):
        return []
    found: set[tuple[str, str, int]] = set()
    for name, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(2) if pattern.groups >= 2 else match.group(0)
            if PLACEHOLDER in value or value.startswith("<"):
                continue
            found.add((name, fingerprint(value), text.count("\n", 0, match.start()) + 1))
    return sorted(found, key=lambda item: (item[2], item[0]))
