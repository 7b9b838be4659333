"""Reading big bundles in worker processes (harness/evidence/parallel.py), on bundles built from the real shapes:
the workers are real processes running the real read; the size threshold is lowered (`worker_min_bytes=0`)
so the factory's small bundles take the worker path. What the caller gets must be what the one-process read
gives: the same Evidence, in the same order, the same first error, and no worker left once the iteration
ends, whatever ends it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness.boundary.worker import REDO, failure, survives_pickling
from harness.errors import BundleError, ConfigError, HarnessError
from harness.evidence import parallel
from harness.evidence.bundle import dump_json
from harness.evidence.compact import read_evidence
from harness.evidence.parallel import iter_evidence
from harness.report.signoff import load_bundles
from tests.factory import VARIANT_DRIVER, condition_shapes
from tests.livefakes import gone
from tests.test_compact_evidence import _leaky, _write


@pytest.fixture(scope="module")
def shapes(kfp_trees: Path):
    return condition_shapes(kfp_trees)


@pytest.fixture
def started(monkeypatch) -> list[parallel._Worker]:
    """Every worker the read starts, in order."""
    found: list[parallel._Worker] = []
    real = parallel._Worker.__init__

    def record(self, directory: Path) -> None:
        real(self, directory)
        found.append(self)

    monkeypatch.setattr(parallel._Worker, "__init__", record)
    return found


def _bundles(root: Path, shapes) -> list[Path]:
    """One bundle per variant, in bundle_markers order (path order)."""
    return sorted(_write(root, shapes, variant, _leaky) for variant in VARIANT_DRIVER)


def _serial(root: Path) -> list:
    return list(iter_evidence(root, workers=0))


def _damage(target: Path) -> None:
    marker = target / "bundle.json"
    data = json.loads(marker.read_text())
    data["tasks"][-1]["state"] = 7  # found by the item validator, after the whole driver_nodes array
    marker.write_text(dump_json(data))


def _message(run) -> str:
    with pytest.raises(BundleError) as caught:
        run()
    return str(caught.value)


def _gone(worker) -> bool:
    return gone(worker.child)


def test_real_workers_yield_the_serial_evidence_in_the_serial_order(tmp_path: Path, shapes, started) -> None:
    _bundles(tmp_path, shapes)
    serial = _serial(tmp_path)
    assert not started
    found = list(iter_evidence(tmp_path, workers=2, worker_min_bytes=0))
    assert len(started) == 2, "the caller reads the first bundle, two workers the others"
    assert [e.path for e in found] == [e.path for e in serial]
    assert found == serial  # every field: the normalised run, the scan, timings, sha256
    assert all(_gone(w) for w in started)


def test_the_workers_pickles_rebuild_an_equal_evidence(tmp_path: Path, shapes) -> None:
    """`_send`'s three pickles (head, tasks' columns, drivers' columns) rebuild an equal Evidence, tasks and
    drivers in their order; the sender has dropped its tasks and drivers once sent."""
    target = _write(tmp_path, shapes, "central-driver", _leaky)
    sent, expected = read_evidence(target), read_evidence(target)
    wire = io.BytesIO()
    parallel._send(sent, wire)
    assert sent.normal.tasks == {} and sent.normal.drivers == {}
    wire.seek(0)
    status, back = parallel._receive(wire)
    assert status == "ok" and back == expected
    assert list(back.normal.tasks) == list(expected.normal.tasks)
    assert list(back.normal.drivers) == list(expected.normal.drivers)
    assert wire.read() == b"", "nothing left unread"


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("broken", [(1,), (2,), (0, 2), (1, 2)])
def test_first_error_in_bundle_order_is_raised_after_the_bundles_before_it(tmp_path: Path, shapes, started,
                                                                           broken: tuple[int, ...],
                                                                           workers: int) -> None:
    """Two workers: index 0 is read by the caller, 1 and 2 by workers (a worker's BundleError is re-raised
    here). One worker: the caller reads 0, the worker 1, and the caller reads 2 meanwhile (out of order: its
    error waits for its turn)."""
    targets = _bundles(tmp_path, shapes)
    for index in broken:
        _damage(targets[index])
    serial_items: list = []
    serial_error = _message(lambda: serial_items.extend(iter_evidence(tmp_path, workers=0)))
    items: list = []
    error = _message(lambda: items.extend(iter_evidence(tmp_path, workers=workers, worker_min_bytes=0)))
    assert error == serial_error
    assert items == serial_items and len(items) == broken[0]
    assert started and all(_gone(w) for w in started)


def test_a_missing_root_is_raised_after_the_bundles_of_the_roots_before_it(tmp_path: Path, shapes) -> None:
    _bundles(tmp_path / "a", shapes)
    roots = (tmp_path / "a", tmp_path / "missing")
    items: list = []
    error = _message(lambda: items.extend(iter_evidence(*roots, workers=2, worker_min_bytes=0)))
    assert error == _message(lambda: list(iter_evidence(*roots, workers=0)))
    assert [e.path for e in items] == [e.path for e in _serial(tmp_path / "a")]


def test_a_worker_that_crashes_leaves_its_bundle_to_the_caller(tmp_path: Path, shapes, started, monkeypatch) -> None:
    _bundles(tmp_path, shapes)
    monkeypatch.setattr(parallel, "_PROGRAM", "import sys; sys.exit(3)")
    assert list(iter_evidence(tmp_path, workers=2, worker_min_bytes=0)) == _serial(tmp_path)
    assert [w.child.returncode for w in started] == [3, 3]


def test_only_errors_that_come_back_whole_are_sent_by_a_worker() -> None:
    assert survives_pickling(BundleError("x/bundle.json: broken", "write it again"))
    assert survives_pickling(HarnessError("broken"))
    assert not survives_pickling(ConfigError("f.yaml", "broken"))  # another __init__: re-read here
    assert failure(BundleError("x/bundle.json: broken", "write it again"))[0] == "error"
    assert failure(ConfigError("f.yaml", "broken")) == REDO
    assert failure(KeyError("a bug")) == REDO  # the caller's own read raises it, traceback included


def test_small_bundles_never_start_a_worker(tmp_path: Path, shapes, started, monkeypatch) -> None:
    """The default threshold: the factory's bundles are far below WORKER_MIN_BYTES, so even with 8 cores
    the read stays in this process; with the threshold at the smallest bundle's size, workers start."""
    targets = _bundles(tmp_path, shapes)
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    assert max((t / "bundle.json").stat().st_size for t in targets) < parallel.WORKER_MIN_BYTES
    assert list(iter_evidence(tmp_path)) == _serial(tmp_path)
    assert started == []
    smallest = min((t / "bundle.json").stat().st_size for t in targets)
    assert list(iter_evidence(tmp_path, worker_min_bytes=smallest)) == _serial(tmp_path)
    assert len(started) == 2  # the first bundle is the caller's: it reads while the others are read


def test_a_worker_only_when_the_caller_has_as_much_to_read_meanwhile(tmp_path: Path, shapes, started) -> None:
    """One big bundle after small ones: a worker would only make the caller wait for it."""
    targets = _bundles(tmp_path, shapes)
    sizes = sorted((t / "bundle.json").stat().st_size for t in targets)
    assert list(iter_evidence(tmp_path, workers=2, worker_min_bytes=sum(sizes) + 1)) == _serial(tmp_path)
    assert started == []


def test_ctrl_c_in_the_callers_read_ends_every_worker(tmp_path: Path, shapes, started, monkeypatch) -> None:
    _bundles(tmp_path, shapes)

    def interrupted(directory):
        raise KeyboardInterrupt

    monkeypatch.setattr(parallel, "read_evidence", interrupted)
    with pytest.raises(KeyboardInterrupt):
        list(iter_evidence(tmp_path, workers=2, worker_min_bytes=0))
    assert len(started) == 2
    assert all(_gone(w) for w in started), "a worker outlived the interrupted read"


def test_closing_the_iteration_early_ends_every_worker(tmp_path: Path, shapes, started) -> None:
    _bundles(tmp_path, shapes)
    evidence = iter_evidence(tmp_path, workers=2, worker_min_bytes=0)
    first = next(evidence)
    assert first == _serial(tmp_path)[0]
    assert len(started) == 2 and not all(_gone(w) for w in started)
    evidence.close()  # e.g. load_bundles refusing two different bundles for one key
    assert all(_gone(w) for w in started)


def test_ctrl_c_while_waiting_for_a_reply_ends_every_worker(tmp_path: Path, shapes, started, monkeypatch) -> None:
    _bundles(tmp_path, shapes)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(parallel._Worker, "result", interrupted)
    with pytest.raises(KeyboardInterrupt):
        list(iter_evidence(tmp_path, workers=2, worker_min_bytes=0))
    assert len(started) == 2
    assert all(_gone(w) for w in started), "the worker being waited for outlived the interrupt"


def test_a_refused_duplicate_bundle_ends_the_workers_at_once(tmp_path: Path, shapes, started, monkeypatch) -> None:
    """load_bundles refuses two different bundles for one cell in the middle of the read: the workers still
    reading (or waiting to send) are ended then, not whenever the generator (held by the error's traceback)
    is collected."""
    monkeypatch.setattr(parallel, "WORKER_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "available_cores", lambda: 3)
    _write(tmp_path / "job-a", shapes, "central-driver")
    _bundles(tmp_path / "job-b", shapes)  # its central-driver bundle differs (another run id)
    with pytest.raises(BundleError) as caught:
        load_bundles([tmp_path / "job-a", tmp_path / "job-b"])
    assert str(caught.value).startswith("two different bundles for pipeline-with-condition/central-driver")
    assert len(started) == 2
    assert all(_gone(w) for w in started), "a worker outlived the refused read"
