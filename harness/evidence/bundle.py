"""The evidence-bundle format: what one run of one scenario on one `<variant>.<mode>` left behind.

Contract (schema: `harness/schemas/bundle.schema.json`, docs: `docs/bundle-format.md`):

- Layout: `out/<run-id>/bundles/<scenario>/<variant>.<mode>/` holds raw files (`workflow.json`, `run.json`,
  `logs/*.log`, `events.json`, `rbac.json`, ...) and `bundle.json`, which is written LAST. A directory
  without `bundle.json` is not a bundle (its writer died); a bundle with `status: partial` says why.
- `bundle.json` carries `schema_version` "MAJOR.MINOR". Readers refuse another MAJOR with one clear error;
  a newer MINOR only adds optional fields, which this reader ignores.
- `files` maps each raw file's relative path to its sha256; `read_bundle` verifies every hash.
- Task paths carry iteration indexes (`root/for-loop-2[1]/print-op`); comparison aligns on them, never on
  generated ids or pod names. Driver node outputs are a `parameters` dict (driver-pod, sidecar-plugin) or
  the raw JSON `result` string of an HTTP template (central-driver), exactly as Argo recorded them.

API: `write_bundle(dir, data, files)`, `read_bundle(dir)`, `iter_bundles(*roots)`, `bundle_dir(...)`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from harness import SCHEMAS_DIR
from harness.errors import BundleError

SCHEMA_VERSION = "1.1"  # 1.1: task_outputs (MLMD) and task execution_id
BUNDLE_FILE = "bundle.json"
SCHEMA_PATH = SCHEMAS_DIR / "bundle.schema.json"


class Envelope:
    """What a bundle says about itself, read from its `data` (the parsed bundle.json, or its envelope), and its
    raw files (`files`: their names, or names -> sha256), read on demand."""

    __slots__ = ()
    path: Path
    data: dict[str, Any]
    files: Collection[str]

    @property
    def scenario(self) -> str:
        return self.data["scenario"]["name"]

    @property
    def variant(self) -> str:
        return self.data["variant"]

    @property
    def mode(self) -> str:
        return self.data["mode"]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario, self.variant, self.mode)

    @property
    def complete(self) -> bool:
        return self.data["status"] == "complete"

    def read_bytes(self, relative: str) -> bytes:
        if relative not in self.files:
            raise BundleError(f"{self.path}: {relative} is not listed in bundle.json files",
                              "re-collect the bundle")
        with open(os.path.join(self.path, relative), "rb") as handle:  # noqa: PTH123 - hot path on big runs
            return handle.read()

    def read_text(self, relative: str) -> str:
        return self.read_bytes(relative).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Bundle(Envelope):
    """A validated bundle on disk. `data` is the parsed bundle.json; raw files are read on demand."""

    path: Path
    data: dict[str, Any]
    # sha256 of bundle.json as read (merging copies compares it); "" for a Bundle built in memory
    sha256: str = field(default="", compare=False)

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return self.data["tasks"]

    @property
    def driver_nodes(self) -> list[dict[str, Any]]:
        return self.data["driver_nodes"]

    @property
    def files(self) -> dict[str, str]:
        return self.data["files"]


def bundle_dir(out_dir: str | os.PathLike[str], scenario: str, variant: str, mode: str) -> Path:
    """`<out_dir>/bundles/<scenario>/<variant>.<mode>` (out_dir is `out/<run-id>`)."""
    from harness.models import instance_key

    # no ':' of an instance `NAME:LABEL` in paths (CI artifact uploads refuse it); bundle.json keeps the name
    return Path(out_dir) / "bundles" / scenario / f"{instance_key(variant)}.{mode}"


# cached: the package's own bundle schema, constant for the process like an import; no run data
@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _relaxed(schema: Any) -> Any:
    """The schema with `additionalProperties: false` dropped: a newer minor version may add fields."""
    if isinstance(schema, dict):
        return {k: _relaxed(v) for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [_relaxed(v) for v in schema]
    return schema


def _major_minor(version: Any, where: str) -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in str(version).split("."))
    except ValueError:
        raise BundleError(f"{where}: schema_version {version!r} is not MAJOR.MINOR",
                          f"write schema_version {SCHEMA_VERSION!r}") from None
    return major, minor


# The two arrays that grow with the pipeline: validated item by item with a validator compiled for the item
# type (the whole-document validator formats each item's name before checking it: ~3x slower per item).
_ITEM_ARRAYS = (("tasks", "task"), ("driver_nodes", "driver_node"))


# cached: compiled from the package's bundle schema (two entries: strict, relaxed); no run data
@cache
def _fast_validators(relaxed: bool) -> tuple[Any, dict[str, Any]] | None:
    """Compiled validators (fastjsonschema: ~50x quicker than jsonschema on 10 000-task bundles) for the
    envelope (the big arrays only checked to be arrays) and for each item type; None if not installed.
    Together they accept exactly what the whole schema accepts (the arrays' only keyword is `items: $ref`).

    They only answer valid/invalid; the error message always comes from jsonschema's best_match.
    """
    try:
        import fastjsonschema
    except ImportError:
        return None
    schema = _relaxed(_schema()) if relaxed else _schema()
    # fastjsonschema speaks draft-07; this schema only uses keywords draft-07 also has ($defs is a plain pointer).
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#"}
    envelope = copy.deepcopy(schema)
    items = {}
    for array, item in _ITEM_ARRAYS:
        assert envelope["properties"][array] == {"type": "array", "items": {"$ref": f"#/$defs/{item}"}}
        envelope["properties"][array] = {"type": "array"}
        item_schema = _inlined(schema["$defs"][item], schema["$defs"])
        items[array] = fastjsonschema.compile({**draft7, "$defs": schema["$defs"], **item_schema})
    return fastjsonschema.compile({**envelope, **draft7}), items


def _inlined(schema: Any, defs: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`schema` with each `{"$ref": "#/$defs/NAME"}` (a ref and nothing else, so the same in every draft)
    replaced by that definition, except a recursive one. The same constraints, but the compiled validator
    checks them inline instead of calling a function per ref (and per call building the value's name): ~20%
    quicker on the items of 100 000-node bundles."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if len(schema) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/"):]
            if name in defs and name not in seen:
                return _inlined(defs[name], defs, (*seen, name))
            return schema
        return {k: _inlined(v, defs, seen) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inlined(v, defs, seen) for v in schema]
    return schema


def _fast_valid(data: dict[str, Any], relaxed: bool) -> bool | None:
    """True/False from the compiled validators, None when fastjsonschema is not installed."""
    validators = _fast_validators(relaxed)
    if validators is None:
        return None
    envelope, items = validators
    try:
        envelope(data)
        for array, validate in items.items():
            for item in data[array]:
                validate(item)
    except Exception:  # noqa: BLE001 - any rejection: jsonschema names the problem
        return False
    return True


def compiled_validators(data: Mapping[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The compiled envelope validator and per-item validators (array name -> validator) for `data`'s
    schema_version; None when there are none (fastjsonschema missing, or a schema_version this reader refuses):
    the caller then takes `validate_bundle_data`, which words the error."""
    try:
        major, minor = _major_minor(data.get("schema_version"), "")
    except BundleError:
        return None
    ours_major, ours_minor = _major_minor(SCHEMA_VERSION, "harness")
    return _fast_validators(minor > ours_minor) if major == ours_major else None


def validate_bundle_data(data: Any, where: str = "bundle.json") -> None:
    """Check `data` against the schema; one BundleError naming the field on any problem."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: not a JSON object", "re-collect the bundle")
    if "schema_version" not in data:
        raise BundleError(f"{where}: no schema_version", f"write schema_version {SCHEMA_VERSION!r}")
    major, minor = _major_minor(data["schema_version"], where)
    ours_major, ours_minor = _major_minor(SCHEMA_VERSION, "harness")
    if major != ours_major:
        raise BundleError(
            f"{where}: bundle schema_version {data['schema_version']} is not supported "
            f"(this kfp-conformance reads {ours_major}.x)",
            "use the kfp-conformance version that wrote the bundle, or re-collect it with this one",
        )
    relaxed = minor > ours_minor
    if _fast_valid(data, relaxed):
        return
    schema = _relaxed(_schema()) if relaxed else _schema()
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BundleError(f"{where}: {field}: {error.message}", "fix the collector that wrote the bundle")


def _check_relative(name: str) -> None:
    # plain string tests, not PurePosixPath (12 us a name, 100 000s of names): absolute, a `..` part,
    # a backslash, or bundle.json itself
    if not name or name[0] == "/" or ".." in name.split("/") or "\\" in name or name == BUNDLE_FILE:
        raise BundleError(f"bundle file name {name!r} is not a plain relative path",
                          "use paths like logs/driver.log inside the bundle")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_json(data: Any) -> str:
    """The one JSON encoding for bundle files and report.json: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_bundle(directory: str | os.PathLike[str], data: Mapping[str, Any],
                 files: Mapping[str, bytes | str] | None = None, *, overwrite: bool = False) -> Path:
    """Validate `data`, write the raw `files`, then `bundle.json` last (atomically). Returns its path.

    `data["files"]` is computed here from `files`; `schema_version` defaults to the current one.
    Refuses to replace a complete bundle unless `overwrite`; a partial one is always replaceable.
    """
    target = Path(directory)
    marker = target / BUNDLE_FILE
    files = dict(files or {})
    for name in files:
        _check_relative(name)
    encoded = {name: body.encode("utf-8") if isinstance(body, str) else bytes(body) for name, body in files.items()}
    document = copy.deepcopy(dict(data))
    document.setdefault("schema_version", SCHEMA_VERSION)
    document["files"] = {name: _sha256(body) for name, body in sorted(encoded.items())}
    validate_bundle_data(document, str(marker))  # before touching the disk: nothing half-made
    if marker.exists():
        try:
            previous = json.loads(marker.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("status") == "complete" and not overwrite:
            raise BundleError(f"{target} already holds a complete bundle",
                              "choose a new run id, or pass overwrite=True to replace it")
        marker.unlink()  # from here until the end, the directory is (correctly) not a bundle
    target.mkdir(parents=True, exist_ok=True)
    for name, body in encoded.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    temporary = target / (BUNDLE_FILE + ".tmp")
    temporary.write_text(dump_json(document), encoding="utf-8")
    os.replace(temporary, marker)
    return marker


def bundle_marker(directory: str | os.PathLike[str]) -> Path:
    """`<directory>/bundle.json` (or `directory` itself if it names one); one error if it is not there."""
    target = Path(directory)
    marker = target / BUNDLE_FILE if target.name != BUNDLE_FILE else target
    if not marker.is_file():
        raise BundleError(f"{marker.parent}: no {BUNDLE_FILE} (not a bundle, or its collector did not finish)",
                          "pass a directory that holds bundle.json, or re-collect the bundle")
    return marker


def read_bundle(directory: str | os.PathLike[str]) -> Bundle:
    """Read and validate `<directory>/bundle.json` and verify every raw file's sha256."""
    marker = bundle_marker(directory)
    target = marker.parent
    raw = marker.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # also UnicodeDecodeError
        raise BundleError(f"{marker}: not valid JSON ({exc})", "re-collect the bundle") from exc
    validate_bundle_data(data, str(marker))
    for _name, _body in verified_files(target, data["files"]):
        pass
    return Bundle(target, data, _sha256(raw))


def verified_files(target: Path, files: Mapping[str, str]) -> Iterator[tuple[str, bytes]]:
    """(name, content) of every raw file in name order, each checked against its sha256 as it is read, so
    a reader that also scans the files reads each once. Raises on the first missing or changed file."""
    relative = os.open in os.supports_dir_fd
    base = os.open(target, os.O_RDONLY) if relative else -1
    try:
        for name, digest in sorted(files.items()):
            _check_relative(name)
            try:
                body = _read_all(name, base) if relative else _read_all(os.path.join(target, name))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise BundleError(f"{target}: file {name} listed in bundle.json is missing",
                                  "copy the whole bundle directory, or re-collect it") from None
            if _sha256(body) != digest:
                raise BundleError(f"{target}: file {name} does not match its sha256 in bundle.json",
                                  "the bundle was modified after collection; re-collect it")
            handed = [(name, body)]
            del body  # (a generator keeps its locals while suspended: the reader decides how long a big file lives)
            yield handed.pop()
    finally:
        if relative:
            os.close(base)


READ_SIZE = 1 << 16


def _read_all(path: str, directory: int | None = None) -> bytes:
    """A file's bytes through os.open/os.read, opened relative to an open directory when given: half the CPU
    of open().read() (no buffered file object, a short path walk) on 100 000s of small log files."""
    fd = os.open(path, os.O_RDONLY, dir_fd=directory)
    try:
        chunk = os.read(fd, READ_SIZE)
        if len(chunk) < READ_SIZE:  # a short read of a regular file is its end (read(2)); were it not, the
            return chunk            # sha256 check would refuse the file, never pass it
        chunks = [chunk]
        while chunk:
            chunk = os.read(fd, READ_SIZE)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def bundle_markers(*roots: str | os.PathLike[str]) -> Iterator[Path]:
    """The bundle.json of every bundle under the given roots (a bundle dir, a run dir or any parent), in path
    order."""
    for root in roots:
        base = Path(root)
        if not base.exists():
            raise BundleError(f"{base}: no such directory", "pass a directory that holds bundles")
        yield from [base / BUNDLE_FILE] if (base / BUNDLE_FILE).is_file() else sorted(base.rglob(BUNDLE_FILE))


def iter_bundles(*roots: str | os.PathLike[str]) -> Iterator[Bundle]:
    """Every bundle under the given roots (a bundle dir, a run dir or any parent), in path order."""
    for marker in bundle_markers(*roots):
        yield read_bundle(marker.parent)


def unfinished_dirs(*roots: str | os.PathLike[str]) -> list[Path]:
    """`bundles/<scenario>/<variant>.<mode>` directories whose collector never wrote bundle.json."""
    found: list[Path] = []
    for root in roots:
        for parent in sorted(Path(root).rglob("bundles")):
            if not parent.is_dir():
                continue
            for candidate in sorted(parent.glob("*/*.*")):
                if candidate.is_dir() and not (candidate / BUNDLE_FILE).exists():
                    found.append(candidate)
    return found
