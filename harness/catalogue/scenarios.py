"""The scenario catalogue: one kfp-SDK pipeline per file in `fixtures/pipelines/`, with its expectations.

Each scenario file declares a module-level `SCENARIO = ScenarioSpec(...)`; adding a scenario is adding one
file. This module discovers the files (imported by path), validates what they declare, compiles each
pipeline to the IR YAML the live tier submits, and turns a spec into a `harness.models.Scenario`.

Components use `component` below, so every scenario shares one base image (`BASE_IMAGE`) and never
pip-installs kfp at run time: kind clusters in CI must not reach the internet
mid-test, so the live tier preloads that image (see docs/catalogue.md).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from kfp import dsl

from harness.catalogue.corpus.analysis import DRIVER_OUTPUTS
from harness.config import REPO_ROOT
from harness.errors import ConfigError, HarnessError
from harness.manifests.yamlload import load_all
from harness.models import COMPONENT_IMAGE, ORACLE, TERMINAL_STATES, Scenario

PIPELINES_DIR = REPO_ROOT / "fixtures" / "pipelines"
# The image every catalogue component runs in (harness/plan/images.py says why and how it is built).
# It must have kfp (the version that compiled the scenario) preinstalled: components are built with
# install_kfp_package=False, so no pip at run time and kind clusters never reach the internet mid-test. The
# live plan builds it from fixtures/images/component/Dockerfile (FROM python:3.11-slim) and side-loads it. The
# name is part of the IR, so another image is used by tagging it with this name (docs/catalogue.md).
BASE_IMAGE = COMPONENT_IMAGE
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TASK_PATH_PATTERN = re.compile(r"^root(/[a-z0-9][a-z0-9-]*(\[\d+\])?)*$")

# Every catalogue component: one base image, no kfp install at run time (kfp.local and kind are offline).
component = functools.partial(dsl.component, base_image=BASE_IMAGE, install_kfp_package=False)


def text_digest(text: str) -> str:
    """The digest an artifact whose file holds exactly `text` (UTF-8) is recorded with."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def artifact(type_: str, *, metadata: Mapping[str, Any] | None = None, digest: str | None = None) -> dict[str, Any]:
    """An expected artifact output. Only the keys given are compared (the URI always differs per run)."""
    value: dict[str, Any] = {"type": type_}
    if metadata is not None:
        value["metadata"] = dict(metadata)
    if digest is not None:
        value["digest"] = digest
    return value


@dataclass(frozen=True)
class ScenarioSpec:
    """What one scenario file declares, in one place.

    `expected_outputs` maps a task path (`root/<task>[/<task>...]`, loop iterations as `for-loop-2[1]`; the
    same paths as evidence bundles) to {output name: literal | ORACLE}, or the whole task to ORACLE.
    `oracle` is True when kfp.local can run the scenario, else the reason it cannot (declared values only).
    `oracle_pipeline` optionally replaces `pipeline` for the kfp.local run only, e.g. without kubernetes
    platform config that kfp.local cannot run; it must produce the same task paths and outputs.
    """

    name: str
    pipeline: Callable[..., Any]
    description: str
    expected_state: str = "SUCCEEDED"
    arguments: Mapping[str, Any] = field(default_factory=dict)
    modes: tuple[str, ...] = ()  # empty = every mode
    tags: tuple[str, ...] = ()
    expected_outputs: Mapping[str, Any] = field(default_factory=dict)
    failing_tasks: tuple[str, ...] = ()
    driver_outputs: tuple[str, ...] = ()
    oracle: bool | str = True
    oracle_pipeline: Callable[..., Any] | None = None
    # objects the run needs in the user namespace (Secret, ConfigMap), created before and deleted after
    setup: tuple[Mapping[str, Any], ...] = ()
    # caching: how many identical runs to submit, and which tasks the repeat runs must take from the cache
    repeat_runs: int = 1
    expected_cache: Mapping[str, bool] = field(default_factory=dict)
    file: str = ""  # set by discovery

    @property
    def oracle_supported(self) -> bool:
        return self.oracle is True

    @property
    def oracle_reason(self) -> str:
        return "" if self.oracle is True else str(self.oracle)

    @property
    def expectation_source(self) -> str:
        return "oracle" if self.oracle_supported else "declared"


def discover(directory: str | os.PathLike[str] | None = None, *, modes: Iterable[str] | None = None,
             import_seconds: float | None = None) -> list[ScenarioSpec]:
    """Import every `*.py` scenario file (not `_*.py`) in `directory` (default fixtures/pipelines), validate
    each, sorted by name. A file whose import takes longer than `import_seconds` is one error line."""
    root = Path(directory or PIPELINES_DIR)
    if not root.is_dir():
        raise ConfigError(str(root), "scenario directory not found",
                          "pass the fixtures/pipelines directory or set KFPC_PIPELINES")
    specs: list[ScenarioSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = load_scenario_file(path, import_seconds)
        validate(spec, modes=modes)
        if spec.name in seen:
            raise ConfigError(str(path), f"scenario name {spec.name!r} is already used by {seen[spec.name]}",
                              "give every scenario a unique name")
        seen[spec.name] = path.name
        specs.append(spec)
    if not specs:
        raise ConfigError(str(root), "no scenario files found", "add fixtures/pipelines/<name>.py files")
    return sorted(specs, key=lambda s: s.name)


def load_scenario_file(path: Path, import_seconds: float | None = None) -> ScenarioSpec:
    module = _import_by_path(path, import_seconds)
    spec = getattr(module, "SCENARIO", None)
    if not isinstance(spec, ScenarioSpec):
        raise ConfigError(str(path), "declares no SCENARIO = ScenarioSpec(...)",
                          "add a module-level SCENARIO built with harness.catalogue.scenarios.ScenarioSpec")
    return replace(spec, file=str(path))


IMPORT_SECONDS = 60  # a scenario file declares a pipeline; importing kfp and compiling takes seconds


@contextlib.contextmanager
def _import_deadline(path: Path, seconds: float | None = None) -> Iterator[None]:
    """Fail a scenario import that hangs (a network call, an input() prompt, a loop) with one line. SIGALRM
    works in the main thread only; elsewhere (xdist helpers, threads) the import is not timed."""
    import signal
    import threading

    limit = float(seconds or IMPORT_SECONDS)
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise ConfigError(str(path), f"did not finish importing in {limit:.0f}s",
                          "remove blocking work (network calls, input(), loops) from the module level")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _import_by_path(path: Path, seconds: float | None = None) -> ModuleType:
    name = f"kfpc_scenario_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(str(path), "cannot be imported as a Python module", "name it <scenario>.py")
    module = importlib.util.module_from_spec(loader_spec)  # never registered in sys.modules: no global state
    try:
        with _import_deadline(path, seconds):
            loader_spec.loader.exec_module(module)
    except HarnessError:
        raise
    except SystemExit as exc:  # a scenario file must declare, not end the harness (exit 0 would look clean)
        raise ConfigError(str(path), f"calls sys.exit({exc.code!r}) while being imported",
                          "remove the exit call; a scenario file only declares SCENARIO") from None
    except Exception as exc:  # the file is user input: any error in it is one line naming the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(str(path), f"failed to import: {type(exc).__name__}: {first}") from exc
    return module


def validate(spec: ScenarioSpec, *, modes: Iterable[str] | None = None) -> None:
    """Every scenario declares expectations; names, states, modes, paths and driver outputs are known."""
    where = spec.file or spec.name

    def fail(problem: str, fix: str = "fix the scenario file and run again") -> None:
        raise ConfigError(where, problem, fix)

    if not NAME_PATTERN.match(spec.name or ""):
        fail(f"scenario name {spec.name!r} is not kebab-case", "use lowercase words joined by '-'")
    if spec.file and Path(spec.file).stem != spec.name.replace("-", "_"):
        fail(f"file name does not match scenario name {spec.name!r}",
             f"name the file {spec.name.replace('-', '_')}.py")
    if not callable(spec.pipeline) or not hasattr(spec.pipeline, "pipeline_spec"):
        fail("pipeline is not a @dsl.pipeline function", "pass the decorated pipeline function")
    if not spec.description.strip():
        fail("has no description", "say in one sentence what the scenario shows")
    if spec.expected_state not in TERMINAL_STATES:
        fail(f"expected_state {spec.expected_state!r} is not one of {', '.join(TERMINAL_STATES)}")
    if not spec.expected_outputs and not spec.failing_tasks:
        fail("declares no expectations (no expected_outputs and no failing_tasks)",
             "declare the outputs each task must produce, or the tasks that must fail")
    if spec.failing_tasks and spec.expected_state == "SUCCEEDED":
        fail("declares failing_tasks but expects the run to succeed", "set expected_state='FAILED'")
    for path in [*spec.expected_outputs, *spec.failing_tasks, *spec.expected_cache]:
        if not TASK_PATH_PATTERN.match(path):
            fail(f"task path {path!r} is not root/<task>[/<task>...] (loops as for-loop-2[0])")
    for path, outputs in spec.expected_outputs.items():
        if outputs != ORACLE and not (isinstance(outputs, Mapping) and outputs):
            fail(f"expected_outputs[{path!r}] must be a non-empty {{output: value}} mapping or ORACLE")
    uses_oracle = any(v == ORACLE or (isinstance(v, Mapping) and ORACLE in v.values())
                      for v in spec.expected_outputs.values())
    if spec.oracle is not True:
        if not isinstance(spec.oracle, str) or not spec.oracle.strip():
            fail("oracle must be True or a reason string why kfp.local cannot run the scenario")
        if uses_oracle:
            fail("uses ORACLE values but the oracle cannot run it", "declare literal values instead")
    unknown = set(spec.driver_outputs) - set(DRIVER_OUTPUTS)
    if unknown:
        fail(f"unknown driver output(s) {', '.join(sorted(unknown))}", f"use {', '.join(DRIVER_OUTPUTS)}")
    if modes is not None:
        extra = set(spec.modes) - set(modes)
        if extra:
            fail(f"unknown mode(s) {', '.join(sorted(extra))}", f"use modes from the config: {', '.join(modes)}")
    if spec.repeat_runs < 1:
        fail("repeat_runs must be at least 1")
    if spec.expected_cache and spec.repeat_runs < 2:
        fail("expected_cache needs repeat_runs >= 2", "submit the pipeline at least twice")
    if not all(isinstance(tag, str) and tag for tag in spec.tags):
        fail("tags must be non-empty strings")


def compile_scenario(spec: ScenarioSpec, out_dir: str | os.PathLike[str], *, oracle: bool = False) -> Path:
    """Compile to `<out_dir>/<name>.yaml` (or `<name>.oracle.yaml`), byte-identical on every run."""
    from kfp import compiler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = spec.oracle_pipeline if (oracle and spec.oracle_pipeline is not None) else spec.pipeline
    target = out / (f"{spec.name}.oracle.yaml" if oracle and spec.oracle_pipeline is not None else f"{spec.name}.yaml")
    tmp = target.with_name(f".{target.stem}.partial.yaml")
    try:
        compiler.Compiler().compile(pipeline, str(tmp))
    except Exception as exc:  # a compile error names the scenario, not a kfp traceback
        tmp.unlink(missing_ok=True)
        raise ConfigError(spec.file or spec.name, f"kfp compiler failed: {type(exc).__name__}: {exc}") from exc
    tmp.write_text(normalise_ir(tmp.read_text()))
    _check_compiled(spec, tmp)
    tmp.replace(target)
    return target


def normalise_ir(text: str) -> str:
    """Rename components and executors in a fixed order, so the IR is the same bytes on every compile.

    kfp 2.17.3 numbers duplicate component names (`comp-add-2`, `comp-add-3`) in an order that changes
    between processes when a pipeline nests other pipelines, and sometimes shares one executor between
    identical components and sometimes not (both seen with pipeline-in-pipeline). Identical executors are
    merged, and names are reassigned walking the DAG depth-first with tasks in name order: each component
    is called after the first task that uses it (`comp-<task>`, then `-2`, `-3` on clashes), its executor
    after the first component that uses it. The comment header and the dump settings are kfp's own
    (`yaml.dump_all(..., sort_keys=True)`), so an already-stable IR comes out byte-identical.
    """
    header = "".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines(keepends=True)))
    try:
        documents = list(load_all(text))
    except yaml.YAMLError:
        return text  # _check_compiled reports it
    ir = documents[0] if documents and isinstance(documents[0], dict) else None
    if not ir or "components" not in ir:
        return text
    _merge_identical_executors(ir, documents[1:])
    components, executors = _canonical_names(ir)
    ir["components"] = {components.get(name, name): body for name, body in ir["components"].items()}
    for body in ir["components"].values():
        if "executorLabel" in body:
            body["executorLabel"] = executors.get(body["executorLabel"], body["executorLabel"])
    for dag in [ir["root"].get("dag", {}), *(c.get("dag", {}) for c in ir["components"].values())]:
        for task in dag.get("tasks", {}).values():
            ref = task.get("componentRef", {})
            if "name" in ref:
                ref["name"] = components.get(ref["name"], ref["name"])
    deployment = ir.get("deploymentSpec", {}).get("executors")
    if deployment:
        ir["deploymentSpec"]["executors"] = {executors.get(k, k): v for k, v in deployment.items()}
    for platform in documents[1:]:
        for config in (platform or {}).get("platforms", {}).values():
            platform_executors = config.get("deploymentSpec", {}).get("executors")
            if platform_executors:
                config["deploymentSpec"]["executors"] = {executors.get(k, k): v for k, v in platform_executors.items()}
    return header + yaml.dump_all(documents, sort_keys=True)


def _merge_identical_executors(ir: dict[str, Any], platforms: list[Any]) -> None:
    """Point components whose executors (and platform config) are identical at one executor."""
    deployment = ir.get("deploymentSpec", {}).get("executors", {})

    def platform_config(label: str) -> list[Any]:
        return [config.get("deploymentSpec", {}).get("executors", {}).get(label)
                for platform in platforms for config in (platform or {}).get("platforms", {}).values()]

    keys = {label: json.dumps([deployment[label], platform_config(label)], sort_keys=True) for label in deployment}
    keep: dict[str, str] = {}
    for label in sorted(deployment):
        keep.setdefault(keys[label], label)
    merged = {label: keep[keys[label]] for label in deployment}
    if all(label == target for label, target in merged.items()):
        return
    for body in ir["components"].values():
        if body.get("executorLabel") in merged:
            body["executorLabel"] = merged[body["executorLabel"]]
    for label, target in merged.items():
        if label != target:
            del deployment[label]
            for platform in platforms:
                for config in (platform or {}).get("platforms", {}).values():
                    config.get("deploymentSpec", {}).get("executors", {}).pop(label, None)


def _canonical_names(ir: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    components: dict[str, str] = {}
    executors: dict[str, str] = {}
    used: set[str] = set()

    def unique(base: str) -> str:
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        return name

    def walk(dag: Mapping[str, Any]) -> None:
        for task_name in sorted(dag.get("tasks", {})):
            ref = dag["tasks"][task_name].get("componentRef", {}).get("name")
            if ref is None or ref in components or ref not in ir["components"]:
                continue
            components[ref] = unique(f"comp-{task_name}")
            body = ir["components"][ref]
            label = body.get("executorLabel")
            if label and label not in executors:
                executors[label] = "exec-" + components[ref][len("comp-"):]
            if "dag" in body:
                walk(body["dag"])

    walk(ir["root"].get("dag", {}))
    return components, executors


def task_paths(ir: Mapping[str, Any]) -> set[str]:
    """Every task path a compiled pipeline can produce; a loop iteration index is written `[]`."""
    components = ir.get("components", {})
    paths: set[str] = set()

    def walk(dag: Mapping[str, Any], prefix: str) -> None:
        for name, task in dag.get("tasks", {}).items():
            looped = "parameterIterator" in task or "artifactIterator" in task
            path = f"{prefix}/{name}{'[]' if looped else ''}"
            paths.add(path)
            child = components.get(task.get("componentRef", {}).get("name", ""), {})
            if "dag" in child:
                walk(child["dag"], path)

    walk(ir.get("root", {}).get("dag", {}), "root")
    return paths


def path_shape(path: str) -> str:
    """`root/for-loop-2[1]/square` -> `root/for-loop-2[]/square`, to match against `task_paths`."""
    return re.sub(r"\[\d+\]", "[]", path)


def _check_compiled(spec: ScenarioSpec, compiled: Path) -> None:
    """The IR must load as YAML (kfp writes multi-line string defaults into a broken header comment) and
    must not pip-install at run time (the oracle and kind clusters are offline)."""
    text = compiled.read_text()
    problem = ""
    documents: list[Any] = []
    try:
        documents = list(load_all(text))  # the pipeline spec, then the platform spec if any
    except yaml.YAMLError as exc:
        problem = f"compiled IR is not valid YAML ({str(exc).splitlines()[0]})"
        fix = "avoid multi-line string defaults in pipeline parameters"
    if not problem and "pip install" in text:
        problem, fix = "a component installs packages at run time", \
            "use harness.catalogue.scenarios.component (base image with kfp, install_kfp_package=False), no packages_to_install"
    if not problem:
        known = task_paths(documents[0] or {})
        unknown = sorted(p for p in [*spec.expected_outputs, *spec.failing_tasks, *spec.expected_cache]
                         if path_shape(p) not in known)
        if unknown:
            problem = f"task path(s) not in the compiled pipeline: {', '.join(unknown)}"
            fix = f"use paths the compiler produced: {', '.join(sorted(known))}"
    if problem:
        compiled.unlink(missing_ok=True)
        raise ConfigError(spec.file or spec.name, problem, fix)


def to_scenario(spec: ScenarioSpec, compiled_path: str | os.PathLike[str],
                oracle_result: Mapping[str, Any] | None = None) -> Scenario:
    """The live tier's view. With an oracle result, ORACLE markers become the values kfp.local recorded."""
    expected = resolve_expectations(spec, oracle_result) if oracle_result else {
        path: (dict(outs) if isinstance(outs, Mapping) else outs) for path, outs in spec.expected_outputs.items()
    }
    return Scenario(
        name=spec.name, origin="catalogue", pipeline_file=str(compiled_path), arguments=dict(spec.arguments),
        expected_state=spec.expected_state, modes=tuple(spec.modes), tags=tuple(spec.tags),
        expected_outputs=expected, failing_tasks=tuple(spec.failing_tasks),
        driver_outputs=tuple(spec.driver_outputs), description=spec.description,
        setup=tuple(dict(obj) for obj in spec.setup), repeat_runs=spec.repeat_runs,
        expected_cache=dict(spec.expected_cache),
    )


def resolve_expectations(spec: ScenarioSpec, oracle_result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Replace ORACLE markers by the outputs kfp.local recorded; literal declarations are kept as declared."""
    recorded = oracle_result.get("tasks", {})
    resolved: dict[str, dict[str, Any]] = {}
    for path, outputs in spec.expected_outputs.items():
        observed = recorded.get(path, {}).get("outputs", {})
        if outputs == ORACLE:
            resolved[path] = dict(observed)
            continue
        resolved[path] = {name: (observed.get(name, ORACLE) if value == ORACLE else value)
                          for name, value in outputs.items()}
    return resolved


def summary(spec: ScenarioSpec) -> dict[str, Any]:
    """One catalogue row (for `kfp-conformance scenarios`)."""
    return {
        "name": spec.name, "tags": list(spec.tags), "modes": list(spec.modes) or ["all"],
        "driver_outputs": list(spec.driver_outputs), "expectations": spec.expectation_source,
        "oracle_reason": spec.oracle_reason, "expected_state": spec.expected_state,
        "tasks_with_expectations": len(spec.expected_outputs), "failing_tasks": list(spec.failing_tasks),
        "description": spec.description, "file": Path(spec.file).name if spec.file else "",
    }
