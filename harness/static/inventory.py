"""Inventory diff between two renders: which objects one variant adds, removes or changes.

Objects are keyed by (apiVersion group, kind, namespace, name), the identity `kubectl apply` uses, so
an apiVersion bump within a group is a field change, not a remove+add. Field changes come from
the harness's one diff walk (harness.diff); before diffing, lists whose items all carry a unique `name`
(containers, env, volumes, ports) become maps keyed by that name, so reordering is not a change and paths
read `spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE].value`.

Values never leave as they are when they are secret: a Secret's `data`/`stringData` and credential-looking
values (env, ConfigMap keys, credential shapes) show as `<value changed: sha256:…/len=N>`
(`harness.static.credentials.mask_field`), and the change is marked `masked`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.diff import by_name, plain, walk
from harness.models import Finding, Severity
from harness.render.kustomize import resource_key
from harness.static.credentials import mask_field

ResourceKey = tuple[str, str, str, str]  # (group, kind, namespace, name), as harness.render.kustomize.resource_key
Manifest = dict[str, Any]
MAX_CHANGES_IN_FINDING = 25  # field changes listed per finding; the full list is in the summary


def describe(key: ResourceKey) -> str:
    """`Kind namespace/name`, or `Kind name` for cluster-scoped objects: the finding subject."""
    _group, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def subject_of(obj: Manifest) -> str:
    return describe(resource_key(obj))


def index_manifests(manifests: Iterable[Manifest]) -> dict[ResourceKey, Manifest]:
    """Key -> object; a later duplicate wins, as a later `kubectl apply` of the same object would."""
    return {resource_key(obj): obj for obj in manifests}


@dataclass(frozen=True)
class FieldChange:
    path: str
    change: str  # added | removed | changed
    old: Any = None
    new: Any = None
    masked: bool = False  # old/new are fingerprints: the values are secret

    def to_dict(self) -> dict[str, Any]:
        data = {"path": self.path, "change": self.change, "old": self.old, "new": self.new}
        if self.masked:
            data["masked"] = True
        return data


def field_changes(old: Manifest, new: Manifest) -> list[FieldChange]:
    """Field-level differences between two versions of one object, sorted by path; secret values masked."""
    kind = str(new.get("kind") or old.get("kind") or "")
    changes = []
    for c in walk(by_name(old), by_name(new)):
        before, after = plain(c.old), plain(c.new)
        safe_before, safe_after = mask_field(kind, c.parts, before), mask_field(kind, c.parts, after)
        hidden = safe_before != before or safe_after != after
        changes.append(FieldChange(c.path, c.change, safe_before, safe_after, hidden))
    return sorted(changes, key=lambda c: c.path)


@dataclass
class InventoryDiff:
    """`base` -> `other`: keys only in other (added), only in base (removed), in both but different."""

    added: list[ResourceKey] = field(default_factory=list)
    removed: list[ResourceKey] = field(default_factory=list)
    changed: dict[ResourceKey, list[FieldChange]] = field(default_factory=dict)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable: subjects, and every field change per changed object."""
        return {
            "added": [describe(k) for k in self.added],
            "removed": [describe(k) for k in self.removed],
            "changed": {describe(k): [c.to_dict() for c in v] for k, v in self.changed.items()},
            "counts": {"added": len(self.added), "removed": len(self.removed),
                       "changed": len(self.changed), "unchanged": self.unchanged},
        }

    def findings(self, *, mode: str, variants: tuple[str, str]) -> list[Finding]:
        """Facts for the reviewer: one finding per added, removed or changed object."""
        base, other = variants
        found = [
            Finding("inventory.added", Severity.INFO, "inventory", mode, variants, describe(key),
                    f"{other} adds {describe(key)}, which {base} does not install",
                    {"group": key[0], "kind": key[1]})
            for key in self.added
        ]
        found += [
            Finding("inventory.removed", Severity.WARNING, "inventory", mode, variants, describe(key),
                    f"{other} no longer installs {describe(key)}, which {base} does",
                    {"group": key[0], "kind": key[1]})
            for key in self.removed
        ]
        for key, changes in self.changed.items():
            paths = [c.path for c in changes]
            found.append(Finding(
                "inventory.changed", Severity.INFO, "inventory", mode, variants, describe(key),
                f"{describe(key)} differs in {len(changes)} field(s): {', '.join(paths[:5])}"
                + (" …" if len(paths) > 5 else ""),
                {"changes": [c.to_dict() for c in changes[:MAX_CHANGES_IN_FINDING]],
                 "total_changes": len(changes)},
            ))
        return found


def diff_inventories(base: Iterable[Manifest], other: Iterable[Manifest]) -> InventoryDiff:
    """Compare two renders (lists of manifests) object by object."""
    old, new = index_manifests(base), index_manifests(other)
    diff = InventoryDiff(
        added=sorted(new.keys() - old.keys()),
        removed=sorted(old.keys() - new.keys()),
    )
    for key in sorted(old.keys() & new.keys()):
        changes = field_changes(old[key], new[key]) if old[key] != new[key] else []
        if changes:
            diff.changed[key] = changes
        else:
            diff.unchanged += 1
    return diff
