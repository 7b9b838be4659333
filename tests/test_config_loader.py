"""The one loader of user-edited YAML files (harness.config.loader) and the four loaders built on it: the same
problem gives the same one-line error, naming the file, the field and the fix, in each of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.catalogue.corpus.exclusions import load_exclusions
from harness.config import load_config
from harness.config.loader import load_validated
from harness.errors import ConfigError
from harness.judge.policy import load_policy
from harness.plan.images import load_image_builds

SCHEMA = {"type": "object", "required": ["items"],
          "properties": {"items": {"type": "array", "items": {"type": "string"}}}}


def test_load_validated_returns_the_document_or_one_line_naming_file_field_and_fix(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("items: [a, b]\n")
    assert load_validated(good, SCHEMA) == {"items": ["a", "b"]}
    cases = {
        "missing.yaml": (None, "missing.yaml: thing not found (pass --thing PATH)"),
        "bad.yaml": ("items: [a\nother: 1\n", "bad.yaml: not valid YAML: while parsing a flow sequence"),
        "field.yaml": ("items: [a, 3]\n", "field.yaml: items/1: 3 is not of type 'string' (fix the file and run again)"),
        "top.yaml": ("- a\n", "top.yaml: (top level): ['a'] is not of type 'object'"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_validated(path, SCHEMA, missing="thing not found", fix_missing="pass --thing PATH")
        line = raised.value.line()
        assert line.startswith(f"{tmp_path}/{expected}") and "\n" not in line, line


def _policy(path: Path) -> Any:
    return load_policy(path.parent)


LOADERS: dict[str, Callable[[Path], Any]] = {
    "config": load_config, "images": load_image_builds, "policy": _policy, "exclusions": load_exclusions,
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_config_loader_reports_broken_yaml_and_a_wrong_field_alike(tmp_path: Path, name: str) -> None:
    """The images file used to say `cannot read: <the parser's multi-line message>` where the others said
    `not valid YAML: <its first line>`."""
    path = tmp_path / "input.yaml"
    path.write_text("key: [unclosed\n")
    with pytest.raises(ConfigError) as raised:
        LOADERS[name](path)
    assert raised.value.line() == (f"{path}: not valid YAML: while parsing a flow sequence "
                                   "(fix the file and run again)")
    path.write_text("- a list, not a mapping\n")
    with pytest.raises(ConfigError) as raised:
        LOADERS[name](path)
    assert raised.value.line().startswith(f"{path}: (top level): ['a list, not a mapping'] is not of type 'object'")
