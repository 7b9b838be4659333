"""Progress lines for steps that take more than a moment (renders, workflow comparison, image builds).

The library only calls a `Progress` callable it is given; whether lines are shown (a terminal, --progress,
--quiet) is the caller's decision (harness.cli.progress for the CLI), so library code never inspects
the terminal and a pytest run stays quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[str], None]


def silent(line: str) -> None:
    """The default reporter: says nothing."""


class StreamReporter:
    """Writes each line to `stream` with the seconds since it was made, flushed at once (a step's line must be
    visible while the step runs, not after)."""

    def __init__(self, stream: TextIO, *, prefix: str = "kfp-conformance",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.prefix, self.clock = stream, prefix, clock
        self.started = clock()

    def __call__(self, line: str) -> None:
        self.stream.write(f"{self.prefix} [{self.clock() - self.started:6.1f}s] {line}\n")
        self.stream.flush()
