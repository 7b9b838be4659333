"""The one structural diff walk (harness.diff) and its one path syntax."""

from __future__ import annotations

from harness.diff import Named, by_name, describe, plain, render_path, walk


def _paths(a, b, **kw) -> list[tuple[str, str]]:
    return [(c.path, c.change) for c in walk(a, b, **kw)]


def test_paths_dot_identifiers_and_bracket_names_indices_and_odd_keys() -> None:
    old = by_name({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}]}],
                            "ports": [80]},
                   "data": {"sidecar.container": "x"}})
    new = by_name({"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "2"}]}],
                            "ports": [80, 443]},
                   "data": {"sidecar.container": "y"}})
    assert _paths(old, new) == [("spec.containers[main].env[A].value", "changed"),
                                ("spec.ports[1]", "added"), ("data[sidecar.container]", "changed")]


def test_named_items_reordered_are_no_change_and_plain_restores_lists() -> None:
    items = [{"name": "a", "v": 1}, {"name": "b", "v": 2}]
    assert list(walk(by_name(items), by_name(list(reversed(items))))) == []
    assert isinstance(by_name(items), Named) and plain(by_name(items)) == items


def test_unordered_lists_are_multisets() -> None:
    assert _paths([1, 2, 3], [3, 1, 2], unordered=True) == []
    assert _paths([1, 2, 2], [2, 1, 4], unordered=True) == [("[2]", "removed"), ("[2]", "added")]


def test_named_map_against_plain_map_is_one_change_and_missing_maps_count_as_empty() -> None:
    assert _paths({"x": Named({"a": 1})}, {"x": {"a": 2}}) == [("x", "changed")]
    assert _paths({"metadata": {"name": "w"}}, {"metadata": {"name": "w", "annotations": {"k/v": "1"}}},
                  empty_when_missing=frozenset({"annotations"})) == [("metadata.annotations[k/v]", "added")]
    assert _paths({}, {"annotations": {"a": "1"}}) == [("annotations", "added")]


def test_describe_lines_and_render_path() -> None:
    (change,) = walk({"a": {"b": 1}}, {"a": {"b": 2}})
    assert describe([change]) == ['changed: a.b {"old": 1, "new": 2}']
    assert render_path(["templates", "root", 0, "x.y"]) == "templates.root[0][x.y]"
