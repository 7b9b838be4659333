"""Every bundle under some roots as compact Evidence, big ones read by worker processes alongside this one.

Reading a 100 000-node bundle is ~5 s of CPU, all of it Python (item decoding, validation, normalisation),
so two big bundles read one after the other cannot use a second core. Here the calling process reads one
bundle while up to (cores - 1) workers read others and send back their Evidence (pickled as columns of
plain tuples, `_send`). Small bundles never pay a worker's start-up and transfer: a
bundle goes to a worker only when its bundle.json is at least WORKER_MIN_BYTES and the caller has at least
as much to read meanwhile, so the many small-bundle reports (CI, tests) stay in one process.

What the caller sees is what the one-process read gives: the same Evidence, yielded in `bundle_markers`
order, and the first error in that order raised as it would be (a bundle read out of order keeps its error
until its turn). A worker's HarnessError is re-raised here; anything else a worker meets (a crash, an
unexpected exception, an error that does not survive pickling) makes this process read that bundle itself,
so the outcome, traceback included, is the one-process one.

Workers are ordinary children started through the subprocess boundary (`Runner.popen`: their own session,
so a terminal's Ctrl-C reaches only this process). Whatever ends the iteration (exhaustion, an error, a
KeyboardInterrupt, the caller closing the generator) ends every worker still running (`end_group`).
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import IO

from harness.boundary.collector import cycle_collection_paused
from harness.boundary.worker import PROGRAM, Worker, available_cores, failure
from harness.evidence.bundle import bundle_markers
from harness.evidence.compact import Evidence, read_evidence
from harness.evidence.normalize import NormalDriver, NormalRun, NormalTask

# A worker costs ~0.1 s of CPU to start (an interpreter importing the evidence modules), ~0.3-0.5 s of wall
# time on a busy machine, plus ~0.65 s to pickle and unpickle 100 000 nodes' Evidence; reading 32 MB of
# bundle.json costs ~0.85 s. Below this a worker does not pay for itself.
WORKER_MIN_BYTES = 32 << 20
_PROGRAM = PROGRAM  # (tests replace it with a program that crashes)
_TARGET = "harness.evidence.parallel:serve"


def serve(directory: Path, out: IO[bytes]) -> None:
    """A worker's body (harness.boundary.worker): read the bundle directory, write the reply as pickles:
    ("ok", head) then the tasks' and the drivers' columns (`_send`), or the read's failure (an error to raise,
    or REDO: the caller reads that bundle itself)."""
    try:
        evidence = read_evidence(directory)
    except Exception as exc:  # noqa: BLE001 - a bug comes back as REDO: the caller's own read raises it
        pickle.dump(failure(exc), out)
        return
    _send(evidence, out)


def _send(evidence: Evidence, out: IO[bytes]) -> None:
    """Evidence as three pickles: everything but the run's tasks and drivers, then the tasks, then the drivers,
    each as columns of plain tuples (pickle handles them in C: 0.4 s to dump 100 000 nodes' worth instead of
    1.0-1.6 s for the slotted dataclasses). Each pickle is written as it is made (pickle's 64 KiB frames) and the
    tasks are dropped here once sent, so the reply is never held twice here and the worker shrinks (~70 MB for
    100 000 tasks) while the caller builds its copy."""
    run = evidence.normal
    with cycle_collection_paused():  # 100 000s of tuples are made: no collections meanwhile
        head = (evidence.path, evidence.data, evidence.files, evidence.sha256, run.key, run.state, run.error,
                evidence.timings, evidence.scan)
        pickle.dump(("ok", head), out, protocol=pickle.HIGHEST_PROTOCOL)
        for records, fields in ((run.tasks, _TASK_FIELDS), (run.drivers, _DRIVER_FIELDS)):
            columns = (list(records), [fields(record) for record in records.values()])
            records.clear()
            pickle.dump(columns, out, protocol=pickle.HIGHEST_PROTOCOL)
            del columns
    out.flush()


def _receive(source: IO[bytes]) -> tuple:
    """`serve`'s reply, read back: ("ok", Evidence), ("error", HarnessError) or REDO."""
    with cycle_collection_paused():
        reply = pickle.load(source)  # noqa: S301 - written by our own worker
        if reply[0] != "ok":
            return reply
        path, data, files, sha256, key, state, error, timings, scan = reply[1]
        task_paths, tasks = pickle.load(source)  # noqa: S301
        run = NormalRun(key, state, error, dict(zip(task_paths, [NormalTask(*t) for t in tasks], strict=True)))
        del task_paths, tasks
        driver_paths, drivers = pickle.load(source)  # noqa: S301
        run.drivers = dict(zip(driver_paths, [NormalDriver(*d) for d in drivers], strict=True))
        return ("ok", Evidence(path, data, files, sha256, run, timings, scan))


# every field, in declaration order (a field added later is carried too)
_TASK_FIELDS = attrgetter(*(f.name for f in fields(NormalTask)))
_DRIVER_FIELDS = attrgetter(*(f.name for f in fields(NormalDriver)))

class _Worker:
    """One worker process reading one bundle."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.worker = Worker(_TARGET, directory, program=_PROGRAM)
        self.child = self.worker.child

    def ready(self) -> bool:
        return self.worker.ready()

    def result(self) -> Evidence:
        """Its Evidence (waiting for it); its HarnessError raised; on anything else, this process's own read."""
        reply = self.worker.finish(_receive)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise reply[1]
        return read_evidence(self.directory)

    def end(self) -> None:
        self.worker.end()


def _listed(roots: tuple[str | os.PathLike[str], ...]) -> tuple[list[Path], BaseException | None]:
    """The markers of `bundle_markers` up to its first error, and that error (raised after they are read)."""
    markers: list[Path] = []
    try:
        for marker in bundle_markers(*roots):
            markers.append(marker)
    except Exception as exc:  # noqa: BLE001 - re-raised at the same point of the iteration
        return markers, exc
    return markers, None


def _size(marker: Path) -> int:
    try:
        return marker.stat().st_size
    except OSError:
        return 0  # the read itself words the problem


def iter_evidence(*roots: str | os.PathLike[str], workers: int | None = None,
                  worker_min_bytes: int | None = None) -> Iterator[Evidence]:
    """Every bundle under the roots (`bundle_markers` order), verified, as compact Evidence; bundles of at
    least `worker_min_bytes` (default WORKER_MIN_BYTES) are read by up to `workers` worker processes (default:
    the available cores - 1) while this one reads others."""
    markers, listing_error = _listed(roots)
    limit = available_cores() - 1 if workers is None else workers
    if worker_min_bytes is None:
        worker_min_bytes = WORKER_MIN_BYTES
    if not sys.executable:  # an embedded interpreter: no program to start workers with
        limit = 0
    sizes = [_size(m) for m in markers]
    claimed = [False] * len(markers)
    running: dict[int, _Worker] = {}
    done: dict[int, Evidence | Exception] = {}

    def own_read(index: int) -> None:
        """Read markers[index] here, first handing workers what they should take meanwhile."""
        claimed[index] = True
        meanwhile = sizes[index]  # bytes this process reads while the workers started now run
        for other in range(index + 1, len(markers)):
            if not claimed[other] and sizes[other] < worker_min_bytes:
                meanwhile += sizes[other]
        for other in range(index + 1, len(markers)):
            if len(running) >= limit:
                break
            if not claimed[other] and sizes[other] >= worker_min_bytes and meanwhile >= worker_min_bytes:
                try:
                    running[other] = _Worker(markers[other].parent)
                except OSError:  # no process to be had (fork limits, memory): this process reads it later
                    break
                claimed[other] = True
        try:
            done[index] = read_evidence(markers[index].parent)
        except Exception as exc:  # noqa: BLE001 - raised when its turn comes, as the one-process read would
            done[index] = exc

    def collect(index: int) -> None:
        try:
            done[index] = running[index].result()
        except Exception as exc:  # noqa: BLE001
            done[index] = exc
        del running[index]  # (only now: a KeyboardInterrupt meanwhile leaves it to the `finally` to end)

    try:
        for index in range(len(markers)):
            while index not in done:
                for finished in [i for i, w in running.items() if w.ready()]:
                    collect(finished)  # frees its slot (a finished worker waits for its reply to be read)
                if index in done:
                    break
                if not claimed[index]:
                    own_read(index)
                elif index in running and not all(claimed):  # read the next unclaimed one while it works
                    own_read(claimed.index(False))
                else:
                    collect(index)
            found = done.pop(index)
            if isinstance(found, Exception):
                raise found
            yield found
    finally:
        for worker in running.values():
            worker.end()
    if listing_error is not None:
        raise listing_error
