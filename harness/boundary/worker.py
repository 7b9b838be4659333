"""Python work in a child interpreter (a worker process), so it uses a second core instead of waiting for the
GIL.

The caller names a function (`"package.module:function"`) and a picklable request; the worker imports the
module, calls `function(request, out)` and the function writes its reply to `out` as pickles, which the
caller reads back from `Worker.stdout`. `reply` and `failure` are the usual reply: the value, or a
HarnessError that survives pickling, or "redo it yourself" (a bug, or an error that would not come back
intact), so the caller's own run gives the outcome, traceback included.

Workers are ordinary children started through the subprocess boundary (`Runner.popen`: their own session, so
a terminal's Ctrl-C reaches only the caller). The caller ends a worker it no longer waits for (`end`); a worker
that crashed, was killed or exited non-zero reads as "redo it yourself" (`finish`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import harness
from harness.boundary.proc import Runner, end_group
from harness.errors import HarnessError

T = TypeVar("T")
REDO = ("redo",)  # the reply that sends the work back to the caller

# The worker's program: put this harness first on sys.path (the caller may run it from any directory), then
# serve one request. Given to `python -c`, so no argv is read by the harness.
_ROOT = str(Path(harness.__file__).resolve().parent.parent)
PROGRAM = f"import sys; sys.path.insert(0, {_ROOT!r}); from harness.boundary.worker import serve; serve()"


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def serve() -> None:
    """A worker's body: read (target, request) pickled on stdin and let the target write its reply to stdout."""
    target, request = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # (discarded) whatever else would print cannot corrupt the reply
    module, _, name = target.partition(":")
    getattr(importlib.import_module(module), name)(request, out)
    out.flush()


def reply(out: IO[bytes], compute: Callable[[], Any]) -> None:
    """Write ("ok", compute()) to `out`, or `compute`'s failure (see `failure`)."""
    try:
        value = compute()
    except Exception as exc:  # noqa: BLE001 - worded by `failure`
        pickle.dump(failure(exc), out)
    else:
        pickle.dump(("ok", value), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def failure(exc: Exception) -> tuple:
    """("error", exc) for a HarnessError that comes back intact; REDO for anything else (a bug: the caller's own
    run raises it with its traceback)."""
    return ("error", exc) if isinstance(exc, HarnessError) and survives_pickling(exc) else REDO


def survives_pickling(exc: HarnessError) -> bool:
    """An error whose type and one-line message come back unchanged (a subclass with another __init__
    signature, e.g. ConfigError, does not unpickle)."""
    try:
        back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    except Exception:  # noqa: BLE001
        return False
    return type(back) is type(exc) and str(back) == str(exc)


class Worker:
    """One worker process serving one request."""

    def __init__(self, target: str, request: Any, program: str = PROGRAM) -> None:
        self.child = Runner().popen([sys.executable, "-c", program], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdin: IO[bytes] = self.child.stdin  # type: ignore[assignment]
        try:
            with contextlib.suppress(BrokenPipeError):  # it ended at once: `finish` finds no reply
                try:
                    stdin.write(pickle.dumps((target, request), protocol=pickle.HIGHEST_PROTOCOL))
                finally:
                    stdin.close()
        except BaseException:  # e.g. a KeyboardInterrupt before the caller holds this worker: end it here
            end_group(self.child)
            raise

    @property
    def stdout(self) -> IO[bytes]:
        return self.child.stdout  # type: ignore[return-value]

    def ready(self) -> bool:
        """Its reply has started or it has ended."""
        return bool(select.select([self.stdout], [], [], 0)[0])

    def finish(self, receive: Callable[[IO[bytes]], T]) -> T | tuple:
        """`receive(stdout)` (waiting for it), or REDO when the worker crashed, was killed, exited non-zero or
        sent something unreadable."""
        try:
            value: T | tuple = receive(self.stdout)
        except Exception:  # noqa: BLE001 - the caller redoes the work
            value = REDO
        self.stdout.close()
        if self.child.wait() != 0:
            value = REDO
        return value

    def end(self) -> None:
        end_group(self.child)


def read_reply(source: IO[bytes]) -> tuple:
    """One pickled reply as `reply` writes it."""
    return pickle.load(source)  # noqa: S301 - written by our own worker
