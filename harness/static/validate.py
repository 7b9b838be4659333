"""Schema validation of every rendered resource, offline.

Built-in kinds are checked against the Kubernetes OpenAPI schemas bundled with `kubernetes-validate`;
custom resources against the `openAPIV3Schema` of a CRD in the same render (jsonschema). A kind with
neither is reported as `validate.no-schema`: not verified, never counted as passed.

We use kubernetes-validate's bundled schema files but build the validators here: its `validate()`
re-reads the 1.5 MB `_definitions.json` on every call, and a render has ~100-200 objects.
Strict schemas are the default because kubectl's default field validation (1.27+) rejects unknown fields.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate.utils import all_versions
from packaging.version import InvalidVersion, Version
from referencing import Registry, Resource

from harness.errors import ConfigError
from harness.models import Finding, Severity
from harness.render.cache import pickled
from harness.render.kustomize import InstallRender, resource_key
from harness.static.inventory import subject_of

# The Kubernetes version whose schemas we validate against: KFP CI's newest lane for the PoCs is v1.34.0.
DEFAULT_KUBERNETES_VERSION = "1.34"
MAX_ERRORS_PER_RESOURCE = 10
Manifest = dict[str, Any]


def is_builtin_group(group: str) -> bool:
    """Kubernetes' own API groups: the core group, dotless groups (apps, batch, policy) and `*.k8s.io`."""
    return "." not in group or group.endswith(".k8s.io")


def supported_version(desired: str) -> str:
    """The newest bundled schema version not newer than `desired` (major.minor), or a ConfigError."""
    try:
        want = Version(desired.lstrip("v")).release[:2]
    except InvalidVersion:
        want = ()
    candidates = [v for v in all_versions() if want and Version(v).release[:2] <= want]
    if not candidates:
        raise ConfigError("kubernetes-version", f"kubernetes-validate has no schemas for Kubernetes {desired}",
                          f"choose a version between {all_versions()[0]} and {all_versions()[-1]}")
    return candidates[-1]


def crd_json_schema(openapi: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """A CRD's structural openAPIV3Schema -> JSON Schema: `nullable`, `x-kubernetes-int-or-string` and,
    when strict, no unknown fields unless `x-kubernetes-preserve-unknown-fields` says so."""

    def convert(node: Any, top: bool = False) -> Any:
        if isinstance(node, list):
            return [convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: convert(v) for k, v in node.items() if k not in ("properties", "additionalProperties")}
        if "properties" in node:
            out["properties"] = {k: convert(v) for k, v in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = convert(node["additionalProperties"])
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        preserve = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
        if strict and node.get("type") == "object" and "properties" in node and not preserve:
            out["additionalProperties"] = False
        if top:  # apiVersion, kind and metadata are the API server's, not the CRD's
            props = out.setdefault("properties", {})
            for name in ("apiVersion", "kind", "metadata"):
                props[name] = {"type": "object"} if name == "metadata" else {"type": "string"}
        return out

    return convert(copy.deepcopy(openapi), top=True)


@dataclass(frozen=True)
class SchemaIssue:
    subject: str
    path: str
    message: str
    schema: str  # "kubernetes <version>" or "CRD <name>"

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "path": self.path, "message": self.message, "schema": self.schema}


@dataclass
class ValidationReport:
    kubernetes_version: str
    checked: int = 0  # objects validated against a schema (passed or not)
    errors: list[SchemaIssue] = field(default_factory=list)
    unverified: dict[str, list[str]] = field(default_factory=dict)  # "Kind (apiVersion)" -> subjects

    def summary(self) -> dict[str, Any]:
        return {"kubernetes_version": self.kubernetes_version, "checked": self.checked,
                "errors": [e.to_dict() for e in self.errors],
                "unverified": {k: sorted(v) for k, v in sorted(self.unverified.items())}}

    def findings(self, *, mode: str, variants: tuple[str, ...]) -> list[Finding]:
        found = [
            Finding("validate.schema-error", Severity.ERROR, "validate", mode, variants, e.subject,
                    f"{e.path or '(object)'}: {e.message}", {"path": e.path, "schema": e.schema})
            for e in self.errors
        ]
        found += [
            Finding("validate.no-schema", Severity.INFO, "validate", mode, variants, kind,
                    f"not verified: no Kubernetes {self.kubernetes_version} schema and no CRD in the render "
                    f"for {kind} ({len(subjects)} object(s))", {"objects": sorted(subjects)})
            for kind, subjects in sorted(self.unverified.items())
        ]
        return found


def _crd_schemas(manifests: Iterable[Manifest]) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
    """(group, kind, version) -> (CRD name, openAPIV3Schema) for every CRD in the render."""
    out = {}
    for obj in manifests:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}
            out[(group, kind, version.get("name", ""))] = (obj["metadata"]["name"], schema)
    return out


class SchemaValidator:
    """Validates renders; holds the Kubernetes version and strictness (both configurable).

    One instance per run (StaticContext.validator): it memoises the validators it builds and each distinct
    object's errors (most objects recur in every mode and variant: ~340 distinct among ~1,900 per run), and
    nothing of it outlives the instance.
    """

    def __init__(self, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION, *, strict: bool = True) -> None:
        self.version = supported_version(kubernetes_version)
        self.strict = strict
        self._registry: tuple[Any, Registry] | None = None
        self._builtin: dict[tuple[str, str], jsonschema.Validator | None] = {}
        self._crd: dict[str, jsonschema.Validator] = {}  # CRD schema fingerprint -> validator
        # (schema, repr(object)) -> its issues; repr tells apart all validation depends on (1 from "1")
        self._issues: dict[tuple[str, str], list[SchemaIssue]] = {}

    def _builtin_validator(self, kind: str, api_version: str) -> jsonschema.Validator | None:
        """The bundled Kubernetes schema of kind/apiVersion (kubernetes-validate's files), None if it has none."""
        key = (kind, api_version)
        if key not in self._builtin:
            if self._registry is None:
                root = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
                folder = root / (f"v{self.version}-local" + ("-strict" if self.strict else ""))
                definitions = json.loads((folder / "_definitions.json").read_text())
                self._registry = folder, Resource.from_contents(definitions) @ Registry()
            folder, registry = self._registry
            # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1
            suffix = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            file = folder / f"{kind.lower()}-{suffix}.json"
            validator = None
            if file.is_file():
                schema = json.loads(file.read_text())
                validator = jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ registry)
            self._builtin[key] = validator
        return self._builtin[key]

    def _crd_validator(self, fingerprint: str, openapi: dict[str, Any]) -> jsonschema.Validator:
        if fingerprint not in self._crd:
            self._crd[fingerprint] = jsonschema.Draft202012Validator(crd_json_schema(openapi, strict=self.strict))
        return self._crd[fingerprint]

    def validate(self, manifests: list[Manifest], *, extra_crds: Iterable[Manifest] = ()) -> ValidationReport:
        """Every object in `manifests`; CRDs come from the render itself plus `extra_crds`."""
        crds = _crd_schemas([*extra_crds, *manifests])
        fingerprints: dict[tuple[str, str, str], str] = {}
        report = ValidationReport(self.version)
        for obj in manifests:
            group, kind, _ns, _name = resource_key(obj)
            api_version = obj.get("apiVersion", "")
            version = api_version.rpartition("/")[2]
            if (group, kind, version) in crds:
                key = (group, kind, version)
                if key not in fingerprints:  # the CRD's schema by content: renders may carry different ones
                    fingerprints[key] = "CRD " + hashlib.sha256(repr(crds[key]).encode()).hexdigest()
                schema_key, schema_name = fingerprints[key], f"CRD {crds[key][0]}"
                validator = self._crd_validator(schema_key, crds[key][1])
            elif is_builtin_group(group) and (builtin := self._builtin_validator(kind, api_version)) is not None:
                validator, schema_key, schema_name = builtin, f"kubernetes {kind} {api_version}", f"kubernetes {self.version}"
            else:
                report.unverified.setdefault(f"{kind} ({api_version})", []).append(subject_of(obj))
                continue
            report.checked += 1
            memo = (schema_key, repr(obj))
            if memo not in self._issues:
                self._issues[memo] = self._issues_of(obj, validator, schema_name)
            report.errors.extend(self._issues[memo])
        return report

    @staticmethod
    def _issues_of(obj: Manifest, validator: jsonschema.Validator, schema_name: str) -> list[SchemaIssue]:
        subject = subject_of(obj)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        return [SchemaIssue(subject, readable_path(obj, error.absolute_path), _short(error), schema_name)
                for error in errors[:MAX_ERRORS_PER_RESOURCE]]

    def validate_install(self, install: InstallRender, cache_dir: Path | None = None) -> ValidationReport:
        """`validate(install.manifests)`, kept on disk per render pair: the report depends only on the two
        renders' content (their digests), the schema version, strictness and this module's code."""
        if cache_dir is None:
            return self.validate(install.manifests)
        key = hashlib.sha256("\0".join([
            install.cluster_scoped.digest, install.overlay.digest, self.version, str(self.strict),
            _SCHEMA_PACKAGE, _CODE_DIGEST]).encode()).hexdigest()[:32]
        return pickled(Path(cache_dir) / "validate" / f"{key}.pickle", lambda: self.validate(install.manifests))


# Cached reports are keyed by this module's code and the bundled schemas' package version as well as the
# renders, so a new rule or a kubernetes-validate upgrade never reuses an old report.
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
_SCHEMA_PACKAGE = importlib_metadata.version("kubernetes-validate")


def readable_path(obj: Any, parts: Iterable[Any]) -> str:
    """`spec.template.spec.containers[main].ports[0].containerPort`: list items by name where they have one,
    matching the paths of harness.static.inventory."""
    out, node = "", obj
    for part in parts:
        if isinstance(part, int) and isinstance(node, list):
            item = node[part] if part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            out += f"[{name}]" if isinstance(name, str) else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _short(error: jsonschema.ValidationError) -> str:
    """One readable line: deep `anyOf` errors print whole schemas otherwise."""
    best = jsonschema.exceptions.best_match([error]) or error
    message = best.message
    return message if len(message) <= 200 else message[:197] + "..."


