"""Image overrides on rendered manifests, including the places kustomize `images:` cannot reach.

The sidecar-plugin variant keeps its driver image inside a ConfigMap string
(`ml-pipeline-driver-agent.data["sidecar.container"]`, a YAML document), and driver-pod passes it to the
apiserver as env `V2_DRIVER_IMAGE`. So the override walks containers, env values and ConfigMap data that
parse as a YAML mapping with an `image` key, and rewrites every reference whose repository matches.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from harness.manifests.yamlload import load as load_yaml
from harness.models import split_image

_POD_SPEC_KEYS = ("containers", "initContainers", "ephemeralContainers")


def _matches(image: str, repos: frozenset[str]) -> bool:
    return isinstance(image, str) and split_image(image)[0] in repos


def _containers(obj: Any) -> Iterable[dict[str, Any]]:
    """Every container-shaped mapping in an object (pod templates at any depth, CRD-agnostic)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _POD_SPEC_KEYS and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _containers(item)


def _image_documents(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, parsed document) for each ConfigMap value that is a YAML mapping with a string `image` (the
    sidecar-plugin's `sidecar.container`)."""
    if obj.get("kind") != "ConfigMap":
        return
    for key, value in (obj.get("data") or {}).items():
        if not isinstance(value, str) or "image" not in value:
            continue
        try:
            doc = load_yaml(value)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("image"), str):
            yield key, doc


def override_images(manifests: list[dict[str, Any]], overrides: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Return patched copies and a list of `where: old -> new` lines. `overrides` maps repository -> new ref."""
    if not overrides:
        return manifests, []
    out: list[dict[str, Any]] = []
    changes: list[str] = []

    def new(image: str) -> str:
        return overrides[split_image(image)[0]]

    repos = frozenset(r for r, ref in overrides.items() if ref)

    def _changes(image: str) -> bool:
        return _matches(image, repos) and new(image) != image

    for original in manifests:
        obj = copy.deepcopy(original)
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')}/{meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta.get('name')}"
        for container in _containers(obj):
            if _changes(container.get("image", "")):
                changes.append(f"{where} container {container.get('name')}: {container['image']} -> {new(container['image'])}")
                container["image"] = new(container["image"])
            for env in container.get("env") or []:
                if isinstance(env, dict) and _changes(env.get("value", "")):
                    changes.append(f"{where} env {env['name']}: {env['value']} -> {new(env['value'])}")
                    env["value"] = new(env["value"])
        for key, doc in _image_documents(obj):
            if _changes(doc["image"]):
                changes.append(f"{where} data[{key}].image: {doc['image']} -> {new(doc['image'])}")
                doc["image"] = new(doc["image"])
                obj["data"][key] = yaml.safe_dump(doc, sort_keys=False)
        out.append(obj)
    return out, changes


def referenced_images(manifests: list[dict[str, Any]]) -> list[str]:
    """Every image a render makes the cluster pull (containers and driver-carrying ConfigMap strings)."""
    found: set[str] = set()
    for obj in manifests:
        for container in _containers(obj):
            if isinstance(container.get("image"), str):
                found.add(container["image"])
            # the apiserver starts driver/launcher pods from env (V2_DRIVER_IMAGE, V2_LAUNCHER_IMAGE)
            for env in container.get("env") or []:
                if isinstance(env, dict) and str(env.get("name", "")).endswith("_IMAGE") and env.get("value"):
                    found.add(env["value"])
        found.update(doc["image"] for _key, doc in _image_documents(obj))
    return sorted(found)
