"""Loads and validates the variants/modes catalogue (`fixtures/variants.yaml` by default)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import PACKAGE_DIR
from harness.config.live import LIVE_SCHEMA, LiveSettings, parse_live_settings
from harness.config.loader import load_validated
from harness.errors import ConfigError
from harness.models import (
    DRIVER_KINDS,
    INSTANCE_LABEL,
    INSTANCE_SEP,
    DriverLogs,
    DriverSpec,
    Identity,
    ImageOverride,
    Mode,
    Variant,
    split_instance,
)

REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_CONFIG = REPO_ROOT / "fixtures" / "variants.yaml"
# Kinds that have no namespace; every other kind in a profile resource list gets the profile namespace.
CLUSTER_SCOPED_KINDS = frozenset({
    "ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "APIService", "ClusterIssuer", "Profile",
})

_IDENTITY = {"type": "string", "pattern": r"^[^/\s]+/[^/\s]+$"}
_MANIFEST = {"type": "object", "required": ["apiVersion", "kind", "metadata"]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "baseline", "modes", "variants"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kfp-conformance/v1"},
        "kind": {"const": "Catalogue"},
        "baseline": {"type": "string"},
        "live": LIVE_SCHEMA,  # optional: live-tier versions, URLs, timeouts (harness/config/live.py)
        "modes": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["description", "ci_overlay", "product_overlay", "cluster_scoped"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string"},
                    "ci_overlay": {"type": "string", "minLength": 1},
                    "product_overlay": {"type": "string", "minLength": 1},
                    "cluster_scoped": {"type": "string", "minLength": 1},
                    "prerequisites": {"type": "array", "items": {"type": "string"}},
                    "multi_user": {"type": "boolean"},
                    "tls": {"type": "boolean"},
                    "user_namespace": {"type": "string"},
                    "workflow_service_account": {"type": "string"},
                    "timeouts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
                    "profile_resources": {"type": "array", "items": _MANIFEST},
                },
            },
        },
        "variants": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[^:=\\s]+$"},  # ':' makes an instance name, '=' starts a source
            "additionalProperties": {
                "type": "object",
                "required": ["description", "driver"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string"},
                    "source": {"type": "string"},
                    "driver": {
                        "type": "object",
                        "required": ["kind", "identities", "logs", "image"],
                        "additionalProperties": False,
                        "properties": {
                            "kind": {"enum": list(DRIVER_KINDS)},
                            "image": {"type": "string"},
                            "image_required": {"type": "boolean"},
                            "carriers": {"type": "array", "items": {"type": "string"}},
                            "identities": {
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": {"type": "array", "items": _IDENTITY},
                            },
                            "logs": {
                                "type": "object",
                                "required": ["where", "container"],
                                "additionalProperties": False,
                                "properties": {
                                    "where": {"enum": ["pod", "agent-pod", "deployment"]},
                                    "container": {"type": "string"},
                                    "files": {"type": "string"},
                                    "namespace": {"type": "string"},
                                    "name": {"type": "string"},
                                },
                            },
                        },
                    },
                    "images": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "new_name": {"type": "string"},
                                           "new_tag": {"type": "string"}},
                        },
                    },
                    "profile_resources": {"type": "array", "items": _MANIFEST},
                    "expected_differences": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Config:
    path: str
    baseline: str
    modes: dict[str, Mode]
    variants: dict[str, Variant]
    mode_profile_resources: dict[str, tuple[dict[str, Any], ...]]
    live: LiveSettings = field(default_factory=LiveSettings)

    def variant(self, name: str) -> Variant:
        """The entry `name`, or for an instance `NAME:LABEL` the entry NAME under the instance's name."""
        if name in self.variants:
            return self.variants[name]
        entry, label = split_instance(name)
        if entry not in self.variants:
            raise ConfigError(self.path, f"unknown variant {entry!r}",
                              f"choose one of {', '.join(self.variants)} or add it to the config")
        if INSTANCE_SEP in label or not INSTANCE_LABEL.match(label):
            raise ConfigError(self.path, f"variant instance {name!r} has an invalid label {label!r}",
                              "write NAME:LABEL with a LABEL of up to 20 lowercase letters, digits and '-' "
                              "(e.g. central-driver:pr)")
        return replace(self.variants[entry], name=name)

    def with_instances(self, names: list[str]) -> Config:
        """This config with the instances among `names` added as variants, each right after its entry (config
        order is pair order), so every lookup by name and every walk over `variants` sees them."""
        instances = [self.variant(n) for n in dict.fromkeys(names) if n not in self.variants]
        if not instances:
            return self
        variants: dict[str, Variant] = {}
        for name, variant in self.variants.items():
            variants[name] = variant
            variants.update({i.name: i for i in instances if i.entry == name})
        return replace(self, variants=variants)

    def entries(self, names: list[str]) -> list[str]:
        """The config entries behind `names` (instances resolved), in order, without repeats."""
        return list(dict.fromkeys(self.variant(n).entry for n in names))

    def mode(self, name: str) -> Mode:
        if name not in self.modes:
            raise ConfigError(self.path, f"unknown mode {name!r}",
                              f"choose one of {', '.join(self.modes)} or add it to the config")
        return self.modes[name]

    def profile_objects(self, variant: Variant, mode: Mode) -> list[dict[str, Any]]:
        """What the Profile controller creates in the mode's user namespace for this variant (multi-user only):
        the mode's own per-profile objects plus the variant's (`sync.py`). Fresh copies with `{profile}`
        replaced by `mode.user_namespace` in every string, namespaced kinds put into that namespace."""
        if not mode.multi_user:
            return []
        templates = [*self.mode_profile_resources.get(mode.name, ()), *variant.profile_resources]
        bound = [_bind_profile(t, mode.user_namespace) for t in templates]
        for obj in bound:
            if obj.get("kind") not in CLUSTER_SCOPED_KINDS:
                obj.setdefault("metadata", {})["namespace"] = mode.user_namespace
        return bound


def _bind_profile(value: Any, namespace: str) -> Any:
    """A copy of a catalogue template with `{profile}` replaced in every string (keys too)."""
    if isinstance(value, str):
        return value.replace("{profile}", namespace)
    if isinstance(value, list):
        return [_bind_profile(v, namespace) for v in value]
    if isinstance(value, dict):
        return {_bind_profile(k, namespace): _bind_profile(v, namespace) for k, v in value.items()}
    return value


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The catalogue file: the explicit one (the CLI passes --config or KFPC_CONFIG), else the packaged one."""
    return Path(explicit or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, schema-validate and type the catalogue. Any problem is one ConfigError naming the field."""
    file = config_path(path)
    raw = load_validated(file, SCHEMA, missing="config file not found",
                         fix_missing="pass --config PATH or set KFPC_CONFIG")
    modes = {name: _mode(name, body) for name, body in raw["modes"].items()}
    variants = {name: _variant(name, body) for name, body in raw["variants"].items()}
    if raw["baseline"] not in variants:
        raise ConfigError(str(file), f"baseline {raw['baseline']!r} is not a declared variant")
    for variant in variants.values():
        unknown = set(variant.driver.identities) - set(modes) - {"*"}
        if unknown:
            raise ConfigError(str(file), f"variants/{variant.name}/driver/identities: unknown mode(s) "
                              f"{', '.join(sorted(unknown))}")
    profile = {name: tuple(body.get("profile_resources", [])) for name, body in raw["modes"].items()}
    return Config(str(file), raw["baseline"], modes, variants, profile, parse_live_settings(raw.get("live")))


def _mode(name: str, body: dict[str, Any]) -> Mode:
    return Mode(
        name=name, description=body["description"], ci_overlay=body["ci_overlay"],
        product_overlay=body["product_overlay"], cluster_scoped=body["cluster_scoped"],
        prerequisites=tuple(body.get("prerequisites", [])), multi_user=body.get("multi_user", False),
        tls=body.get("tls", False), user_namespace=body.get("user_namespace", "kubeflow"),
        workflow_service_account=body.get("workflow_service_account", "pipeline-runner"),
        timeouts=dict(body.get("timeouts", {})),
    )


def _variant(name: str, body: dict[str, Any]) -> Variant:
    driver = body["driver"]
    identities = {
        mode: tuple(Identity(*ref.split("/", 1)) for ref in refs) for mode, refs in driver["identities"].items()
    }
    logs = driver["logs"]
    return Variant(
        name=name, description=body["description"], source=body.get("source", ""),
        driver=DriverSpec(
            kind=driver["kind"], identities=identities,
            logs=DriverLogs(where=logs["where"], container=logs["container"], files=logs.get("files", ""),
                            namespace=logs.get("namespace", ""), name=logs.get("name", "")),
            image=driver["image"], image_required=driver.get("image_required", True),
            carriers=tuple(driver.get("carriers", [])),
        ),
        images=tuple(ImageOverride(i["name"], i.get("new_name", ""), i.get("new_tag", ""))
                     for i in body.get("images", [])),
        profile_resources=tuple(body.get("profile_resources", [])),
        expected_differences=tuple(body.get("expected_differences", [])),
    )
