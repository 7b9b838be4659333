"""The corpus files of a KFP tree: which files, how they parse, and the `CorpusEntry` each becomes.

A file that does not parse (bad YAML, a key the KFP protos do not know, no pipeline name) becomes an
entry with `error` set, never an exception: one corrupted upstream file must not hide the others.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from harness.catalogue.corpus.analysis import analyse
from harness.errors import HarnessError, SourceError
from harness.manifests.yamlload import load_all

CORPUS_DIR = PurePosixPath("test_data/sdk_compiled_pipelines")
# The folders KFP's E2E suite runs (labels E2ECritical, E2EEssential, E2EParallelNested, E2EFailure).
E2E_FOLDERS = ("critical", "essential", "parallel_and_nested", "failing")
TOP_LEVEL = "top-level"  # files directly in valid/: SDK compiler fixtures, and env-var.yaml (E2EProxy)
ALL_FOLDERS = (*E2E_FOLDERS, "integration", TOP_LEVEL, "invalid")
FOLDER_DIRS = {**{f: f"valid/{f}" for f in (*E2E_FOLDERS, "integration")}, TOP_LEVEL: "valid", "invalid": "invalid"}
LABELS = {"e2ecritical": "critical", "e2eessential": "essential", "e2eparallelnested": "parallel_and_nested",
          "e2efailure": "failing", "integration": "integration"}
FOLDER_STATE = {"failing": "FAILED"}  # every other folder must succeed
SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class CorpusEntry:
    """One compiled pipeline of the corpus and what it uses. `error` is set when the file does not parse."""

    path: str  # upstream path inside the KFP tree, e.g. test_data/sdk_compiled_pipelines/valid/critical/x.yaml
    folder: str  # one of ALL_FOLDERS
    file: str  # absolute path on disk
    name: str  # scenario name: corpus-<file stem, kebab-case>
    digest: str  # sha256 of the file
    pipeline_name: str = ""
    components: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    importer_uris: tuple[str, ...] = ()
    features: tuple[str, ...] = ()  # kfp-kubernetes platform features
    constructs: tuple[str, ...] = ()  # DSL constructs (condition, loop, caching, ...)
    driver_outputs: tuple[str, ...] = ()
    arguments: dict[str, Any] = field(default_factory=dict)  # root input defaults + generated values
    generated_arguments: tuple[str, ...] = ()  # required inputs without a default: values we generated
    secrets: tuple[str, ...] = ()  # non-optional Secrets the pods read (RUNTIME if not static)
    config_maps: tuple[str, ...] = ()
    expected_state: str = "SUCCEEDED"
    error: str = ""

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.folder, self.stem)

    def to_dict(self) -> dict[str, Any]:
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        data["tags"] = list(self.tags)
        return data


def corpus_root(tree: Path) -> Path:
    root = Path(tree) / CORPUS_DIR
    if not root.is_dir():
        raise SourceError(f"{tree} has no {CORPUS_DIR}/ (not a KFP tree, or a KFP too old for the E2E corpus)",
                          "point --sources/--variant at the root of a kubeflow/pipelines checkout")
    return root


def parse_folders(values: Iterable[str]) -> tuple[str, ...]:
    """Folder names, E2E labels (E2ECritical, ...) or `all` -> folder ids; empty -> the E2E folders."""
    chosen: list[str] = []
    for value in values:
        key = value.strip()
        folder = LABELS.get(key.lower()) or (key if key in ALL_FOLDERS else None)
        if key != "all" and folder is None:
            raise HarnessError(f"unknown corpus folder {value!r}",
                               f"use one of {', '.join(ALL_FOLDERS)}, an E2E label ({', '.join(LABELS)}) or all")
        chosen += [f for f in (ALL_FOLDERS if key == "all" else (folder,)) if f and f not in chosen]
    return tuple(chosen) or E2E_FOLDERS


def path_matches(pattern: str, rel: str) -> bool:
    """A glob with a `/` matches the path under sdk_compiled_pipelines/, otherwise the file name or stem."""
    if "/" in pattern:
        return fnmatch.fnmatchcase(rel, pattern)
    name = PurePosixPath(rel).name
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(PurePosixPath(rel).stem, pattern)


class CorpusReader:
    """Parses corpus files once per content for one listing or run: the trees share most files, and YAML plus
    proto validation is the slow part. Made by the caller for one job and dropped with it (never process-wide),
    so no parsed file outlives the run that read it."""

    def __init__(self) -> None:
        self._fields: dict[tuple[str, str], dict[str, Any]] = {}

    def fields(self, digest: str, suffix: str, data: bytes) -> dict[str, Any]:
        """The parse and analysis of one file's bytes as entry fields; a deep copy (an entry's `arguments` dict
        is mutable)."""
        key = (digest, suffix)
        if key not in self._fields:
            self._fields[key] = _fields(suffix, data)
        return copy.deepcopy(self._fields[key])

    def entry(self, file: Path, folder: str, tree: Path) -> CorpusEntry:
        data = file.read_bytes()
        base = CorpusEntry(
            path=file.relative_to(tree).as_posix(), folder=folder, file=str(file.resolve()),
            name=scenario_name(file.stem), digest=hashlib.sha256(data).hexdigest(),
            expected_state=FOLDER_STATE.get(folder, "SUCCEEDED"),
        )
        return replace(base, **self.fields(base.digest, file.suffix, data))

    def corpus(self, tree: Path, *, folders: Sequence[str] = (), glob: str = "*") -> list[CorpusEntry]:
        """Every pipeline file of the chosen folders (default: the E2E folders) whose name matches `glob`."""
        root = corpus_root(tree)
        entries: list[CorpusEntry] = []
        for folder in parse_folders(folders):
            directory = root / FOLDER_DIRS[folder]
            if not directory.is_dir():
                continue  # e.g. central-driver has no parallel_and_nested/; coverage reports it
            for file in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES):
                rel = file.relative_to(root).as_posix()
                if path_matches(glob, rel):
                    entries.append(self.entry(file, folder, tree))
        return _unique_names(entries)


def load_corpus(tree: Path, *, folders: Sequence[str] = (), glob: str = "*",
                reader: CorpusReader | None = None) -> list[CorpusEntry]:
    """`reader.corpus(...)`; without a reader, a new one for this call (pass one to share parses across trees)."""
    return (reader or CorpusReader()).corpus(tree, folders=folders, glob=glob)


def scenario_name(stem: str) -> str:
    return "corpus-" + re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")


def _unique_names(entries: list[CorpusEntry]) -> list[CorpusEntry]:
    """Same stem twice (x.yaml and x.json, or valid/x.yaml and valid/essential/x.yaml): the entry in the
    earlier folder of ALL_FOLDERS keeps the plain name, the others get the folder (and suffix) appended."""
    by_name: dict[str, list[CorpusEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    renamed: dict[str, str] = {}
    for name, group in by_name.items():
        group = sorted(group, key=lambda e: (ALL_FOLDERS.index(e.folder), PurePosixPath(e.path).suffix != ".yaml"))
        for entry in group[1:]:
            suffix = PurePosixPath(entry.path).suffix.lstrip(".")
            extra = entry.folder if entry.folder != group[0].folder else suffix
            renamed[entry.path] = f"{name}-{extra}"
    return [replace(e, name=renamed[e.path]) if e.path in renamed else e for e in entries]


def _fields(suffix: str, data: bytes) -> dict[str, Any]:
    """Parse + analysis of one file's bytes, as CorpusEntry fields (`error` when it does not parse)."""
    try:
        spec, platform = _parse(data, suffix)
    except _CorpusParseError as exc:
        return {"error": str(exc)}
    return analyse(spec, platform)


class _CorpusParseError(Exception):
    pass


def _parse(data: bytes, suffix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bytes -> (pipeline spec, kubernetes platform spec or {}), validated against the KFP protos."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _CorpusParseError("not a text file (not UTF-8)") from exc
    try:
        docs = [json.loads(text)] if suffix == ".json" else load_all(text)
    except json.JSONDecodeError as exc:
        raise _CorpusParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise _CorpusParseError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}{where}") from exc
    docs = [d for d in docs if d is not None]
    if not docs:
        raise _CorpusParseError("empty file: no pipeline spec")
    specs = [d for d in docs if isinstance(d, dict) and "platforms" not in d]
    platforms = [d for d in docs if isinstance(d, dict) and "platforms" in d]
    if len(specs) != 1 or len(specs) + len(platforms) != len(docs):
        raise _CorpusParseError(f"expected one pipeline spec document (plus an optional platform spec), "
                                f"found {len(docs)} document(s) of which {len(specs)} look like a pipeline spec")
    spec = specs[0]
    _validate(spec, pipeline_spec_pb2.PipelineSpec(), "pipeline spec")
    if not (spec.get("pipelineInfo") or {}).get("name"):
        raise _CorpusParseError("pipeline spec has no pipelineInfo.name")
    if "root" not in spec:
        raise _CorpusParseError("pipeline spec has no root DAG")
    kubernetes: dict[str, Any] = {}
    for doc in platforms:
        _validate(doc, pipeline_spec_pb2.PlatformSpec(), "platform spec")
        kubernetes = (doc.get("platforms") or {}).get("kubernetes") or {}
        for label, cfg in ((kubernetes.get("deploymentSpec") or {}).get("executors") or {}).items():
            _validate(cfg, k8s_pb2.KubernetesExecutorConfig(), f"kubernetes config of {label}")
    return spec, kubernetes


def _validate(doc: Any, message: Any, what: str) -> None:
    # The KFP protos are the authority on the IR format (a misspelt key is an error, as in the KFP API).
    try:
        json_format.ParseDict(doc, message)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise _CorpusParseError(f"invalid {what}: {str(exc).splitlines()[0]}") from exc


