"""The compiled-workflow check started in a worker process (harness/static/registry.py
`start_compiled_workflows`, harness/boundary/worker.py): a real worker on the real trees gives exactly the
in-process result; a crashed worker leaves the work to the caller; a worker's error is the in-process error;
whatever ends a static run ends its worker; small goldens never start one."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from harness.boundary import worker as worker_module
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import Source
from harness.render.kustomize import Renderer
from harness.selection import Selection
from harness.static import registry, workflows
from harness.static import runner as static_runner
from harness.static.context import StaticContext, variant_pairs
from tests.livefakes import gone
from tests.test_workflows import GOLDENS, _task, _workflow, _write_tree

VARIANTS = ("driver-pod", "central-driver")


def _context(trees: dict[str, Path], tmp_path: Path, cache: str) -> StaticContext:
    config = load_config()
    variants = tuple(config.variant(name) for name in VARIANTS)
    sources = {name: Source(name, str(path), "test", "unknown") for name, path in trees.items()}
    renderer = Renderer(mirror=None, cache_dir=tmp_path / cache)
    return StaticContext(Selection(config, variants, (config.mode("standalone"),), sources, renderer,
                                   tmp_path / "out", tmp_path / cache))


def _as_dicts(result):
    findings, data = result
    return [f.to_dict() for f in findings], data


class _Started(list):
    """The workers a check started, in order; `program`, when set, replaces their program."""

    program: str | None = None


@pytest.fixture
def workers(monkeypatch) -> _Started:
    found = _Started()

    class Recording(worker_module.Worker):
        def __init__(self, target, request, program=worker_module.PROGRAM):
            super().__init__(target, request, found.program or program)
            found.append(self)

    monkeypatch.setattr(registry, "Worker", Recording)
    return found


def _gone(worker) -> bool:
    return gone(worker.child)


def _small_trees(tmp_path: Path, edit: bool = False) -> dict[str, Path]:
    other = _workflow("http")
    if edit:
        _task(other, "root", "condition-1")["when"] = "false"
    return {"driver-pod": _write_tree(tmp_path / "a", {"w": _workflow("container")}),
            "central-driver": _write_tree(tmp_path / "b", {"w": other})}


def test_a_real_worker_gives_the_in_process_result_on_the_real_trees(kfp_trees: Path, tmp_path: Path,
                                                                      workers, monkeypatch) -> None:
    trees = {name: kfp_trees / name for name in VARIANTS}
    ctx = _context(trees, tmp_path, "cache-worker")
    pairs = variant_pairs(ctx.selection)
    mode = ctx.selection.modes[0]
    started = registry.start_compiled_workflows(ctx, pairs, mode)
    assert len(workers) == 1, "the real goldens (~6 MB) are compared in a worker"
    in_worker = started.result()
    assert _gone(workers[0])
    here = registry.check_compiled_workflows(_context(trees, tmp_path, "cache-here"), pairs, mode)
    assert _as_dicts(in_worker) == _as_dicts(here)
    assert in_worker[1]["driver-pod..central-driver"]["files_compared"] > 100
    # what the worker kept on disk is what a warm run reads, without parsing a golden
    def no_parsing(*_args, **_kwargs):
        raise AssertionError("the worker's kept result was not read")

    monkeypatch.setattr(workflows, "load_workflow", no_parsing)
    assert _as_dicts(registry.check_compiled_workflows(ctx, pairs, mode)) == _as_dicts(here)


def test_a_worker_that_crashes_leaves_the_work_to_this_process(tmp_path: Path, workers, monkeypatch) -> None:
    monkeypatch.setattr(registry, "WORKER_MIN_BYTES", 0)
    workers.program = "import sys; sys.exit(3)"
    ctx = _context(_small_trees(tmp_path, edit=True), tmp_path, "cache")
    pairs, mode = variant_pairs(ctx.selection), ctx.selection.modes[0]
    result = registry.start_compiled_workflows(ctx, pairs, mode).result()
    assert [w.child.returncode for w in workers] == [3]
    expected = registry.check_compiled_workflows(_context(_small_trees(tmp_path / "x", edit=True), tmp_path, "c2"),
                                                 pairs, mode)
    assert _as_dicts(result)[0] == _as_dicts(expected)[0]
    assert any(f.evidence["example"]["path"] == "templates[root].dag.tasks[condition-1].when" for f in result[0])


def test_a_workers_error_is_the_in_process_error(tmp_path: Path, workers, monkeypatch) -> None:
    monkeypatch.setattr(registry, "WORKER_MIN_BYTES", 0)
    trees = _small_trees(tmp_path)
    (trees["central-driver"] / GOLDENS / "w.yaml").write_text("kind: ConfigMap\n")
    ctx = _context(trees, tmp_path, "cache")
    pairs, mode = variant_pairs(ctx.selection), ctx.selection.modes[0]
    with pytest.raises(HarnessError) as here:
        registry.check_compiled_workflows(ctx, pairs, mode)
    started = registry.start_compiled_workflows(ctx, pairs, mode)
    with pytest.raises(HarnessError) as there:
        started.result()
    assert len(workers) == 1 and _gone(workers[0])
    assert type(there.value) is type(here.value) and str(there.value) == str(here.value)
    assert "expected exactly one Argo Workflow document" in str(there.value)


def test_whatever_ends_a_static_run_ends_its_worker(tmp_path: Path, workers, monkeypatch) -> None:
    """A Ctrl-C while kustomize renders: the worker still comparing is ended, not left running, and the cycle
    collector the run paused is running again."""
    monkeypatch.setattr(registry, "WORKER_MIN_BYTES", 0)
    workers.program = "import time; time.sleep(60)"

    def interrupted(*_args, **_kwargs):
        assert workers and workers[0].child.poll() is None, "the worker starts before the renders"
        raise KeyboardInterrupt

    monkeypatch.setattr(static_runner, "render_all", interrupted)
    ctx = _context(_small_trees(tmp_path), tmp_path, "cache")
    assert gc.isenabled()
    with pytest.raises(KeyboardInterrupt):
        static_runner.run_static(ctx.selection)
    assert len(workers) == 1 and _gone(workers[0])
    assert gc.isenabled(), "the run paused the cycle collector (harness.boundary.collector) and must restore it"


def test_small_goldens_are_compared_in_this_process(tmp_path: Path, workers) -> None:
    ctx = _context(_small_trees(tmp_path, edit=True), tmp_path, "cache")
    pairs, mode = variant_pairs(ctx.selection), ctx.selection.modes[0]
    result = registry.start_compiled_workflows(ctx, pairs, mode).result()
    assert workers == []
    assert any(f.evidence["example"]["path"] == "templates[root].dag.tasks[condition-1].when" for f in result[0])
