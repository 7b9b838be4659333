"""Inventory diff between two renders: which objects one variant adds, removes or changes.

Objects are keyed by (apiVersion group, kind, namespace, name), the identity `kubectl apply` uses, so
an apiVersion bump within a group is a field change, not a remove+add. Field changes come from
deepdiff; before diffing, lists whose items all carry a unique `name` (containers, env, volumes, ports)
become maps keyed by that name, so reordering is not a change and paths read
`spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE].value`.

Values never leave as they are when they are secret: a Secret's `data`/`stringData` and credential-looking
values (env, ConfigMap keys, credential shapes) show as `<value changed: sha256:…/len=N>`
(`harness.credentials.mask_field`), and the change is marked `masked`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff

from harness.credentials import mask_field
from harness.models import Finding, Severity
from harness.render import resource_key

ResourceKey = tuple[str, str, str, str]  # (group, kind, namespace, name), as harness.render.resource_key
Manifest = dict[str, Any]
MAX_CHANGES_IN_FINDING = 25  # field changes listed per finding; the full list is in the summary
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def describe(key: ResourceKey) -> str:
    """`Kind namespace/name`, or `Kind name` for cluster-scoped objects: the finding subject."""
    _group, kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def subject_of(obj: Manifest) -> str:
    return describe(resource_key(obj))


def index_manifests(manifests: Iterable[Manifest]) -> dict[ResourceKey, Manifest]:
    """Key -> object; a later duplicate wins, as a later `kubectl apply` of the same object would."""
    return {resource_key(obj): obj for obj in manifests}


class _ItemName(str):
    """A map key that stands for a list item matched by its `name` (printed as `[name]`)."""


def _by_name(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _by_name(v) for k, v in value.items()}
    if isinstance(value, list):
        names = [item.get("name") for item in value if isinstance(item, dict)]
        if value and len(names) == len(value) and all(isinstance(n, str) for n in names) \
                and len(set(names)) == len(names):
            return {_ItemName(item["name"]): _by_name(item) for item in value}
        return [_by_name(item) for item in value]
    return value


def field_path(parts: Iterable[Any]) -> str:
    """deepdiff's path list -> `a.b[name].c[0]`, with map keys that are not identifiers quoted."""
    out = ""
    for part in parts:
        if isinstance(part, _ItemName | int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f'["{part}"]'
    return out


def _plain(value: Any) -> Any:
    """Undo `_by_name` for evidence: named maps go back to lists."""
    if isinstance(value, dict):
        if value and all(isinstance(k, _ItemName) for k in value):
            return [_plain(v) for v in value.values()]
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


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


_CHANGE_KINDS = {
    "dictionary_item_added": "added", "iterable_item_added": "added", "attribute_added": "added",
    "dictionary_item_removed": "removed", "iterable_item_removed": "removed", "attribute_removed": "removed",
    "values_changed": "changed", "type_changes": "changed",
}


def field_changes(old: Manifest, new: Manifest) -> list[FieldChange]:
    """Field-level differences between two versions of one object, sorted by path; secret values masked."""
    diff = DeepDiff(_by_name(old), _by_name(new), verbose_level=2)
    kind = str(new.get("kind") or old.get("kind") or "")
    changes = []
    for report_type, levels in diff.tree.items():
        change = _CHANGE_KINDS.get(report_type, "changed")
        for level in levels:
            parts = level.path(output_format="list")
            before = None if change == "added" else _plain(level.t1)
            after = None if change == "removed" else _plain(level.t2)
            safe_before, safe_after = mask_field(kind, parts, before), mask_field(kind, parts, after)
            hidden = safe_before != before or safe_after != after
            changes.append(FieldChange(field_path(parts), change, safe_before, safe_after, hidden))
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
