"""The one way to read a YAML input file the user may edit: read, parse, validate against a JSON Schema, and
turn any problem into one ConfigError line naming the file, the field and the fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.errors import ConfigError
from harness.manifests.yamlload import load as load_yaml


def load_validated(path: Path, schema: Mapping[str, Any], *, missing: str = "file not found",
                   fix_missing: str = "pass the path of an existing file") -> Any:
    """The parsed document of `path`, valid against `schema` (JSON Schema draft 2020-12).

    `missing` and `fix_missing` word the error for a path that is not a file (the caller knows which option
    or variable names it)."""
    if not path.is_file():
        raise ConfigError(str(path), missing, fix_missing)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:  # the first line names the problem; the rest is the parser's context
        raise ConfigError(str(path), f"not valid YAML: {str(exc).splitlines()[0]}") from exc
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(raw))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(str(path), f"{where}: {error.message}")
    return raw
