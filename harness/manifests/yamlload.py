"""YAML documents as `yaml.load_all(text, Loader=yaml.CSafeLoader)` returns them, built from libyaml's events.

The static tier parses ~400 compiled-workflow goldens and ~20 renders per cold run, and PyYAML's C loader
spends most of its time composing a node tree (a Python `resolve` call and a Node per scalar) that
SafeConstructor then walks again in Python. Here the documents are built straight from the parser's events:
the same libyaml parser (same syntax errors), the same implicit resolver (PyYAML's `Resolver`, called once per
distinct plain scalar) and SafeConstructor's own constructors for every non-string scalar. Whatever this
builder does not handle itself (anchors and aliases, merge `<<` and value `=` keys, explicit collection tags
such as `!!set`/`!!omap`, custom tags, complex keys) or any error sends the whole text through
`yaml.load_all` unchanged, so the result (or the exception) is always PyYAML's.
tests/test_render.py compares both on real goldens and renders and on each fallback case.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
# Scalar tags SafeConstructor builds from the node's value alone (no marks, no other nodes).
_SCALARS = {tag: Loader.yaml_constructors[tag] for tag in (
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp")}


class _Fallback(Exception):
    """Something only PyYAML's own composer and constructor handle."""


def load_all(text: str, plain_tags: dict[str, str] | None = None) -> list[Any]:
    """`list(yaml.load_all(text, Loader=CSafeLoader))`, equal value for value and type for type.

    `plain_tags` (plain scalar -> its implicit tag) may be shared by the texts of one run: the resolver's
    answer depends on the scalar alone (path resolvers, which would make it depend on the place, send the
    text through PyYAML)."""
    if Loader is yaml.SafeLoader or Loader.yaml_path_resolvers:  # no libyaml, or a path resolver: PyYAML's way
        return list(yaml.load_all(text, Loader=Loader))
    loader = Loader(text)
    try:
        return _Builder(loader, {} if plain_tags is None else plain_tags).documents()
    except Exception:  # noqa: BLE001 - PyYAML's own load below gives the result or raises its own error
        pass
    finally:
        loader.dispose()
    return list(yaml.load_all(text, Loader=Loader))


class _Builder:
    def __init__(self, loader: Any, plain: dict[str, str]) -> None:
        self.loader = loader
        self.next = loader.get_event
        self.plain = plain  # plain scalar -> its implicit tag

    def documents(self) -> list[Any]:
        self.next()  # StreamStartEvent
        docs = []
        while True:
            event = self.next()  # DocumentStartEvent or StreamEndEvent
            if event.__class__ is StreamEndEvent:
                return docs
            docs.append(self.value(self.next()))
            self.next()  # DocumentEndEvent

    def value(self, event: Any) -> Any:
        cls = event.__class__
        if cls is ScalarEvent:
            return self.scalar(event)
        if event.anchor is not None:  # anchors (and so aliases) keep PyYAML's object identity rules
            raise _Fallback
        tag = event.tag
        if cls is MappingStartEvent and (tag is None or tag == "!" or tag == _MAP):
            mapping: dict[Any, Any] = {}
            while True:
                key_event = self.next()
                if key_event.__class__ is MappingEndEvent:
                    return mapping
                if key_event.__class__ is not ScalarEvent:  # complex key or alias
                    raise _Fallback
                key = self.scalar(key_event)
                mapping[key] = self.value(self.next())  # a later duplicate wins, as in SafeConstructor
        if cls is SequenceStartEvent and (tag is None or tag == "!" or tag == _SEQ):
            items = []
            while True:
                item = self.next()
                if item.__class__ is SequenceEndEvent:
                    return items
                items.append(self.value(item))
        raise _Fallback  # alias, or a collection with another tag

    def scalar(self, event: Any) -> Any:
        if event.anchor is not None:
            raise _Fallback
        tag, value = event.tag, event.value
        if tag is None or tag == "!":
            if not event.implicit[0]:  # quoted or block scalar: the resolver's default, a string
                return value
            tag = self.plain.get(value)
            if tag is None:
                tag = self.plain[value] = self.loader.resolve(ScalarNode, value, event.implicit)
        if tag == _STR:
            return value
        build = _SCALARS.get(tag)
        if build is None:  # merge/value keys, binary, custom tags
            raise _Fallback
        return build(self.loader, ScalarNode(tag, value, style=event.style))


def load(text: str) -> Any:
    """`yaml.safe_load(text)` with libyaml: the text's one document (None when empty)."""
    return yaml.load(text, Loader=Loader)
