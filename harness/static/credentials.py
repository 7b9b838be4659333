"""Credential-looking values: which keys and value shapes count, and how to keep their values out of outputs.

A value is a *credential* when its key looks like one (`*SECRET*`, `*PASSWORD*`, `*TOKEN*`, `*ACCESS_KEY*`,
…, but not `*_NAME`, `*_PATH`, … which name where a credential lives) and it is a literal (not a `$(VAR)`,
`{{template}}` or a path), or when the value itself has a credential shape (an AWS access key id, a JWT, a
PEM private key: the shapes `harness.boundary.redact` already knows). Outputs carry a fingerprint
(`harness.boundary.redact.fingerprint`: hash prefix and length) instead of the value.

This module only classifies and masks; it imports nothing but `harness.boundary.redact` and the YAML reader and
writer (`harness.manifests.yamlload`, `harness.manifests.yamltext`), so the inventory diff can use it without a cycle.
The scan over renders lives in `harness.static.security_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from harness.boundary.redact import SECRET_PATTERNS, fingerprint
from harness.manifests.yamlload import load_all
from harness.manifests.yamltext import dump_documents

# Key names that hold a credential (case-insensitive, `-`/`.` treated as `_`).
_CREDENTIAL_KEY = re.compile(
    r"(SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|ACCESS_?KEY|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH_?KEY|CLIENT_?SECRET)")
# ... unless the key says it holds a *reference* to one (the Secret's name, a file path, a key name).
_REFERENCE_SUFFIX = re.compile(r"(_?(NAME|NAMES|REF|PATH|FILE|DIR|KEY_?NAME|SECRET_?NAME|MOUNT|URL|ENDPOINT|"
                               r"TTL|EXPIRY|EXPIRATION|TIMEOUT|AUDIENCE|ENABLED|TYPE|ISSUER|HEADER))$")
_NOT_LITERAL = re.compile(r"^(\$\(|\$\{|\{\{|/|<)")
# Value shapes that are credentials wherever they appear (harness.boundary.redact patterns).
SHAPES = ("aws-access-key", "jwt", "private-key")
_BOOLEAN_LIKE = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "required", "optional"})


def _normal(key: str) -> str:
    # camelCase -> CAMEL_CASE so `secretAccessKey` and `SECRET_ACCESS_KEY` read alike
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(key)).upper().replace("-", "_").replace(".", "_")


def is_credential_key(key: Any) -> bool:
    """Does this key name hold a credential value (not the name or path of one)?"""
    name = _normal(str(key))
    return bool(_CREDENTIAL_KEY.search(name)) and not _REFERENCE_SUFFIX.search(name)


def is_literal(value: Any) -> bool:
    """A non-trivial literal string: not empty, a reference, a template, a path or a boolean word."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return bool(text) and len(text) >= 3 and not _NOT_LITERAL.match(text) and text.lower() not in _BOOLEAN_LIKE


def shapes_in(text: str) -> list[tuple[str, str]]:
    """(shape name, fingerprint) for every credential-shaped value inside `text`; never the value."""
    found = []
    for name in SHAPES:
        for match in SECRET_PATTERNS[name].finditer(text):
            found.append((name, fingerprint(match.group(0))))
    return found


def masked(value: Any) -> str:
    """What an output shows instead of a credential value."""
    return f"<value changed: {fingerprint(value if isinstance(value, str) else repr(value))}>"


def _mask_text(text: str) -> str:
    """Credential shapes and `key: value` / `KEY=value` credentials inside a longer string, fingerprinted."""
    lowered = text.lower()
    if not any(h in lowered for h in ("eyj", "akia", "asia", "private key", "secret", "passw", "token",
                                      "access_key", "accesskey", "api_key", "credential")):
        return text
    for name in SHAPES:
        text = SECRET_PATTERNS[name].sub(lambda m: masked(m.group(0)), text)
    for name in ("token-field", "env-credential"):
        pattern = SECRET_PATTERNS[name]
        text = pattern.sub(lambda m: m.group(1) + (masked(m.group(2)) if is_literal(m.group(2)) else m.group(2)),
                           text)
    return text


def mask_credentials(value: Any, key: Any = None) -> Any:
    """`value` with every credential inside it replaced by its fingerprint: scalars under a credential key,
    `{name: <credential key>, value: ...}` items (env), and credential shapes inside strings."""
    if isinstance(value, dict):
        named = value.get("name")
        out = {}
        for k, v in value.items():
            hint = named if k == "value" and isinstance(named, str) else k
            out[k] = mask_credentials(v, hint)
        return out
    if isinstance(value, list):
        return [mask_credentials(v) for v in value]
    if isinstance(value, str):
        if key is not None and is_credential_key(key) and is_literal(value):
            return masked(value)
        return _mask_text(value)
    if key is not None and is_credential_key(key) and isinstance(value, int | float) and not isinstance(value, bool):
        return masked(str(value))
    return value


def mask_secret_data(value: Any) -> Any:
    """Every value of a Secret's `data`/`stringData` (or a part of it), fingerprinted, keys kept."""
    if isinstance(value, dict):
        return {k: mask_secret_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secret_data(v) for v in value]
    return None if value is None else masked(value if isinstance(value, str) else repr(value))


def mask_field(kind: str, path: Sequence[Any], value: Any) -> Any:
    """The value an inventory diff may show for `path` of an object of `kind`.

    A Secret's `data`/`stringData` never shows a value; elsewhere credentials inside the value are masked,
    with the nearest key of the path as the hint (`env[PASSWORD].value` -> `PASSWORD`).
    """
    if value is None:
        return None
    parts = [str(p) for p in path]
    if kind == "Secret" and (not parts or parts[0] in ("data", "stringData")):
        return mask_secret_data(value)
    hint = None
    for part in reversed(parts):
        if part != "value" and not part.isdigit():
            hint = part
            break
    return mask_credentials(value, hint)


def reviewer_copy(text: str) -> str:
    """A manifest file as a reviewer may see it: every Secret's `data`/`stringData` value and every literal
    credential elsewhere replaced by its fingerprint; a file with nothing to mask comes back unchanged."""
    try:
        docs = load_all(text)
    except yaml.YAMLError:
        return mask_credentials(text)
    masked_docs = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Secret":
            doc = {k: mask_secret_data(v) if k in ("data", "stringData") else v for k, v in doc.items()}
        masked_docs.append(mask_credentials(doc) if isinstance(doc, dict | list) else doc)
    if masked_docs == docs:
        return text
    if all(isinstance(doc, dict) for doc in masked_docs):  # the same text, written faster (write_plan's hot spot)
        return dump_documents(masked_docs, width=120)
    return yaml.safe_dump_all(masked_docs, sort_keys=False, width=120)
