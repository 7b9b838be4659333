"""The local oracle: run catalogue scenarios with kfp.local and record every task's outputs.

Each scenario runs in its own Python subprocess (`python -m harness.catalogue.oracle`), because kfp.local keeps
global state and the oracle must observe its orchestration without touching the harness process. The
child runs the *compiled* IR with `kfp.local.SubprocessRunner(use_venv=False)`: no venv, no pip, no
network. The result, `oracle.json`, maps each task path (`root/...`, loop iterations as `for-loop-2[0]`,
the same paths as evidence bundles) to its state and outputs; live runs are compared against it.

kfp.local has no hook that reports per-task outputs (`run_local_pipeline` returns only the pipeline's
outputs), so the child wraps three kfp 2.17 orchestration functions to observe them. The wrappers only
record; kfp.local still does all the work. kfp is pinned in pyproject.toml, and a changed kfp layout
fails loudly here (see `_install_recorder`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boundary.proc import Runner
from harness.catalogue.scenarios import ScenarioSpec, compile_scenario
from harness.config import REPO_ROOT
from harness.errors import CommandFailedError, HarnessError
from harness.manifests.yamlload import load_all
from harness.models import ORACLE

SCHEMA_VERSION = "1.0"
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class OracleResult:
    scenario: str
    path: Path  # oracle.json
    data: dict[str, Any]

    @property
    def state(self) -> str:
        return self.data["state"]

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.data["tasks"]


@dataclass
class OracleCheck:
    """The oracle run compared with what the scenario declares."""

    scenario: str
    supported: bool
    reason: str = ""
    result: OracleResult | None = None
    mismatches: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.supported:
            return "skipped"
        return "passed" if not self.mismatches else "failed"


def run_oracle(spec: ScenarioSpec, out_dir: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT,
               runner: Runner | None = None) -> OracleResult:
    """Compile the scenario's oracle IR and run it with kfp.local; writes `<out_dir>/<name>/oracle.json`."""
    if not spec.oracle_supported:
        raise HarnessError(f"scenario {spec.name} cannot run on the local oracle: {spec.oracle_reason}",
                           "compare its live runs against the declared values")
    target = Path(out_dir) / spec.name
    target.mkdir(parents=True, exist_ok=True)
    compiled = compile_scenario(spec, target, oracle=True)
    result_file = target / "oracle.json"
    result_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"kfpc-oracle-{spec.name}-") as work:
        # TMPDIR is per run: components that keep state across retries (marker files) find a fresh one.
        _run_child(runner or Runner(), compiled, spec, work, result_file, target, timeout)
    return OracleResult(spec.name, result_file, json.loads(result_file.read_text()))


def _run_child(runner: Runner, compiled: Path, spec: ScenarioSpec, work: str, result_file: Path,
               target: Path, timeout: float) -> None:
    argv = [sys.executable, "-m", "harness.catalogue.oracle", str(compiled), "--arguments",
            json.dumps(dict(spec.arguments), sort_keys=True), "--scenario", spec.name, "--workdir", work,
            "--out", str(result_file)]
    log = target / "oracle.log"
    try:
        result = runner.run(argv, timeout=timeout, extra_env={"TMPDIR": work, "PYTHONPATH": _pythonpath()},
                            fix=f"see {log}")
        log.write_text(result.stdout + result.stderr)
    except CommandFailedError as exc:
        log.write_text(exc.stderr_tail)
        raise
    if not result_file.is_file():
        raise HarnessError(f"oracle for {spec.name} wrote no result", f"see {log}")


def _pythonpath() -> str:
    root = str(REPO_ROOT)
    return root  # the child imports the harness and the scenario files from the repository, nothing else


def check(spec: ScenarioSpec, result: OracleResult) -> list[str]:
    """Differences between the oracle run and the scenario's declarations, one readable line each."""
    problems: list[str] = []
    if result.state != spec.expected_state:
        problems.append(f"run state {result.state}, expected {spec.expected_state}"
                        + (f" ({result.data.get('error')})" if result.data.get("error") else ""))
    for path in spec.failing_tasks:
        state = result.tasks.get(path, {}).get("state", "not run")
        if state != "FAILED":
            problems.append(f"{path}: state {state}, expected FAILED")
    for path, declared in spec.expected_outputs.items():
        task = result.tasks.get(path)
        if task is None:
            problems.append(f"{path}: task did not run ({len(result.tasks)} other task(s) ran, see {result.path})")
            continue
        if declared == ORACLE:
            continue
        observed = task.get("outputs", {})
        for name, value in declared.items():
            if name not in observed:
                problems.append(f"{path}: output {name!r} missing (has {', '.join(sorted(observed)) or 'none'})")
            elif value != ORACLE and not matches(value, observed[name]):
                problems.append(f"{path}.{name}: expected {value!r}, oracle recorded {observed[name]!r}")
    return problems


def matches(expected: Any, observed: Any) -> bool:
    """Literal equality, except artifact expectations (dicts with `type`) compare only the declared keys."""
    if isinstance(expected, list) and isinstance(observed, list):
        return len(expected) == len(observed) and all(matches(e, o) for e, o in zip(expected, observed))
    if isinstance(expected, Mapping) and "type" in expected and isinstance(observed, Mapping) and "type" in observed:
        return all(key in observed and observed[key] == value for key, value in expected.items())
    return expected == observed


def check_catalogue(specs: Iterable[ScenarioSpec], out_dir: str | os.PathLike[str], *, jobs: int = 2,
                    timeout: float = DEFAULT_TIMEOUT) -> list[OracleCheck]:
    """Run every oracle-supported scenario (`jobs` at a time) and check it; others are reported skipped."""
    specs = list(specs)

    def one(spec: ScenarioSpec) -> OracleCheck:
        if not spec.oracle_supported:
            return OracleCheck(spec.name, False, spec.oracle_reason)
        result = run_oracle(spec, out_dir, timeout=timeout)
        return OracleCheck(spec.name, True, result=result, mismatches=check(spec, result))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, specs))


def load_result(out_dir: str | os.PathLike[str], name: str) -> OracleResult | None:
    """A previously written `<out_dir>/<name>/oracle.json`, or None."""
    path = Path(out_dir) / name / "oracle.json"
    if not path.is_file():
        return None
    return OracleResult(name, path, json.loads(path.read_text()))


def bundle_oracle(spec: ScenarioSpec, result: OracleResult | None) -> dict[str, Any]:
    """The evidence bundle's `oracle` object (harness/schemas/bundle.schema.json) for one scenario."""
    if result is None:
        return {"available": False,
                "reason": spec.oracle_reason or f"no oracle.json for {spec.name}: run `kfp-conformance scenarios --oracle`"}
    return {"available": True, "state": result.state,
            "outputs": {path: task.get("outputs", {}) for path, task in result.tasks.items()}}


# ---- the child process: runs one compiled pipeline under kfp.local and records every task ----

_ITERATION = re.compile(r"^(?P<loop>.+)-iteration-(?P<index>\d+)$")


class _Recorder:
    """Collects {task path: {state, outputs}} while kfp.local orchestrates (threads: loop iterations)."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._pending = threading.local()  # path of a DAG task whose IOStore is about to be created

    @staticmethod
    def segment(task_name: str) -> str:
        match = _ITERATION.match(task_name)
        return f"{match['loop']}[{match['index']}]" if match else task_name

    def path_of(self, io_store: Any, task_name: str) -> str:
        return f"{getattr(io_store, '_kfpc_path', 'root')}/{self.segment(task_name)}"

    def record(self, path: str, succeeded: bool, outputs: Mapping[str, Any]) -> None:
        entry = {"state": "SUCCEEDED" if succeeded else "FAILED",
                 "outputs": {k: _value(v) for k, v in sorted(outputs.items())} if succeeded else {}}
        with self._lock:
            self.tasks[path] = entry

    def set_pending(self, path: str | None) -> None:
        self._pending.path = path

    def take_pending(self) -> str:
        path = getattr(self._pending, "path", None)
        self._pending.path = None
        return path or "root"


def _value(value: Any) -> Any:
    """A task output as JSON: parameters as they are, artifacts as {type, metadata, digest}."""
    from kfp import dsl

    if isinstance(value, dsl.Artifact):
        return {"type": value.schema_title, "metadata": json.loads(json.dumps(value.metadata, sort_keys=True)),
                "digest": _digest(value.path if value.uri else "")}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def _digest(path: str) -> str | None:
    """sha256 of an artifact's file; a directory hashes its relative paths and contents in order."""
    target = Path(path) if path else None
    if target is None or not target.exists():
        return None
    sha = hashlib.sha256()
    if target.is_file():
        sha.update(target.read_bytes())
    else:
        for child in sorted(p for p in target.rglob("*") if p.is_file()):
            sha.update(str(child.relative_to(target)).encode() + b"\0" + child.read_bytes())
    return "sha256:" + sha.hexdigest()


def _install_recorder(recorder: _Recorder) -> None:
    """Wrap kfp.local's orchestration entry points (kfp 2.17) so every task's path and outputs are seen."""
    from kfp.local import io, status
    from kfp.local.orchestrator import enhanced_dag_orchestrator, task_executor

    original_init: Callable[..., None] = io.IOStore.__init__
    original_execute_task = enhanced_dag_orchestrator.execute_task
    original_single = task_executor.execute_single_task

    def init(self: Any, parent: Any = None) -> None:
        original_init(self, parent)
        self._kfpc_path = recorder.take_pending() if parent is not None else "root"

    def execute_task(**kwargs: Any) -> Any:
        path = recorder.path_of(kwargs["io_store"], kwargs["task_name"])
        component = kwargs["components"][kwargs["task_spec"].component_ref.name]
        if component.WhichOneof("implementation") != "dag":
            return original_execute_task(**kwargs)
        recorder.set_pending(path)
        outputs, task_status = original_execute_task(**kwargs)
        recorder.record(path, task_status == status.Status.SUCCESS, outputs)
        return outputs, task_status

    def execute_single_task(**kwargs: Any) -> Any:
        outputs, task_status = original_single(**kwargs)
        recorder.record(recorder.path_of(kwargs["io_store"], kwargs["task_name"]),
                        task_status == status.Status.SUCCESS, outputs)
        return outputs, task_status

    io.IOStore.__init__ = init
    enhanced_dag_orchestrator.execute_task = execute_task
    task_executor.execute_single_task = execute_single_task


def _child(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.catalogue.oracle")
    parser.add_argument("pipeline", help="compiled pipeline IR YAML")
    parser.add_argument("--arguments", default="{}")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import kfp
    from google.protobuf import json_format
    from kfp import local
    from kfp.local import pipeline_orchestrator
    from kfp.pipeline_spec import pipeline_spec_pb2

    recorder = _Recorder()
    _install_recorder(recorder)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(args.workdir) / "root"),
               workspace_root=str(Path(args.workdir) / "workspace"), raise_on_error=True)
    # The compiled IR itself, not the Python function: the oracle runs exactly what the live tier submits.
    # (kfp.components.load_component_from_file cannot load IR with importers, so parse the spec directly.)
    document = load_all(Path(args.pipeline).read_text())[0]
    spec = json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    state, error = "SUCCEEDED", ""
    try:
        pipeline_orchestrator.run_local_pipeline(pipeline_spec=spec, arguments=json.loads(args.arguments))
    except RuntimeError as exc:  # kfp.local raises RuntimeError naming the failed task chain
        state, error = "FAILED", re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    data = {
        "schema_version": SCHEMA_VERSION, "scenario": args.scenario, "kfp_version": kfp.__version__,
        "pipeline_file": Path(args.pipeline).name,
        "pipeline_sha256": hashlib.sha256(Path(args.pipeline).read_bytes()).hexdigest(),
        "arguments": json.loads(args.arguments), "state": state, "error": error,
        "tasks": dict(sorted(recorder.tasks.items())),
    }
    Path(args.out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child())
