"""CLI side of progress reporting: `--progress` / `--quiet`, else progress only when stderr is a terminal
(a CI log or a redirect stays quiet)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from harness.progress import Progress, StreamReporter, silent


def add_progress_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="report progress of slow steps on stderr (default: only when stderr is a terminal)")
    group.add_argument("--quiet", dest="progress", action="store_false", help="no progress lines")


def reporter(args: argparse.Namespace, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    wanted = getattr(args, "progress", None)
    if wanted is None:
        isatty = getattr(stream, "isatty", None)
        wanted = bool(isatty and isatty())
    return StreamReporter(stream) if wanted else silent
