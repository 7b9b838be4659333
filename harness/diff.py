"""One structural diff walk and one path syntax, used by every comparison in the harness (inventory,
compiled workflows, migration snapshots, bundle comparison).

Paths read `spec.template.spec.containers[ml-pipeline-api-server].env[V2_DRIVER_IMAGE].value`: identifier
keys dotted; list items matched by their `name`, list indices and any other map key (dots, slashes) in
brackets, e.g. `metadata.annotations[sidecar.istio.io/inject]`.

The walk skips equal subtrees with `==` (C speed), so its cost follows the differences, not the size of
the values; DeepDiff built a level object per node and took seconds per render pair. `==` is Python's
equality, so `1`, `1.0` and `True` compare equal as they do in JSON-minded code; at a differing leaf the
value and its type are both shown.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class Named(dict):
    """A list whose items all carry a unique `name`, keyed by it: order is not a change, paths say `[name]`."""


class Item(str):
    """A path part that is a list item's `name` (always bracketed)."""


def by_name(value: Any) -> Any:
    """Lists of items with unique string `name`s (containers, env, volumes, ports) become `Named` maps."""
    if isinstance(value, dict):
        return {k: by_name(v) for k, v in value.items()}
    if isinstance(value, list):
        names = [item.get("name") for item in value if isinstance(item, dict)]
        if value and len(names) == len(value) and all(isinstance(n, str) for n in names) \
                and len(set(names)) == len(names):
            return Named({item["name"]: by_name(item) for item in value})
        return [by_name(item) for item in value]
    return value


def plain(value: Any) -> Any:
    """Undo `by_name` (for evidence): named maps go back to lists."""
    if isinstance(value, Named):
        return [plain(v) for v in value.values()]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def render_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """The one path syntax: `a.b[name].c[0]`, keys that are not identifiers in brackets."""
    out = ""
    for part in parts:
        if isinstance(part, Item | int) or not isinstance(part, str) or not _IDENTIFIER.match(part):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Change:
    parts: tuple[Any, ...]
    change: str  # added | removed | changed
    old: Any = None
    new: Any = None

    @property
    def path(self) -> str:
        return render_path(self.parts)


def walk(base: Any, other: Any, *, unordered: bool = False, empty_when_missing: frozenset[str] = frozenset(),
         parts: tuple[Any, ...] = ()) -> Iterator[Change]:
    """Each difference from `base` to `other`, in document order (base's keys first); a subtree present on
    one side only is one change.

    `unordered` compares lists as multisets (an item moved is no change; one that differs is removed and
    added). Keys in `empty_when_missing` name maps that count as empty when absent, so an annotation added
    where there were none reads as that annotation, not as the whole map.
    """
    if base == other:
        return
    if isinstance(base, dict) and isinstance(other, dict) and type(base) is type(other):
        named = isinstance(base, Named)
        for key in [*base, *(k for k in other if k not in base)]:
            child = (*parts, Item(key) if named else key)
            if key in empty_when_missing and (key not in base or key not in other):
                yield from walk(base.get(key, {}), other.get(key, {}), unordered=unordered,
                                empty_when_missing=empty_when_missing, parts=child)
            elif key not in other:
                yield Change(child, "removed", base[key], None)
            elif key not in base:
                yield Change(child, "added", None, other[key])
            else:
                yield from walk(base[key], other[key], unordered=unordered,
                                empty_when_missing=empty_when_missing, parts=child)
    elif isinstance(base, list) and isinstance(other, list):
        if unordered:
            yield from _multiset(base, other, parts)
            return
        for i in range(max(len(base), len(other))):
            if i >= len(other):
                yield Change((*parts, i), "removed", base[i], None)
            elif i >= len(base):
                yield Change((*parts, i), "added", None, other[i])
            else:
                yield from walk(base[i], other[i], empty_when_missing=empty_when_missing, parts=(*parts, i))
    else:
        yield Change(parts, "changed", base, other)


def _multiset(base: list[Any], other: list[Any], parts: tuple[Any, ...]) -> Iterator[Change]:
    def key(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    def unmatched(values: list[Any], against: list[Any]) -> Iterator[tuple[int, Any]]:
        """(index, value) of each value with no equal partner left in `against`."""
        left = Counter(key(v) for v in against)
        for i, value in enumerate(values):
            k = key(value)
            if left[k]:
                left[k] -= 1
            else:
                yield i, value

    for i, value in unmatched(base, other):
        yield Change((*parts, i), "removed", value, None)
    for i, value in unmatched(other, base):
        yield Change((*parts, i), "added", None, value)


def describe(changes: list[Change], limit: int = 200) -> list[str]:
    """One line per change, `changed: a.b[x] {"old": 1, "new": 2}`, each detail cut at `limit` characters."""
    lines = []
    for c in changes:
        detail = c.new if c.change == "added" else c.old if c.change == "removed" else {"old": c.old, "new": c.new}
        lines.append(f"{c.change}: {c.path or '(value)'} {json.dumps(detail, default=str)[:limit]}")
    return lines
