"""`kfp-conformance` command line: a thin layer over the harness library.

Each subcommand lives in its own module under harness/cli/ and exposes `register(subparsers)`;
`main` maps a HarnessError to one line on stderr and its exit code (2 bad input, 1 failure).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness import __version__
from harness.errors import HarnessError

# Subcommand modules, in the order `--help` lists them. Adding a command is one line here.
COMMANDS = (
    "harness.cli.static",
    "harness.cli.run",
    "harness.cli.clusters",
    "harness.cli.matrix",
    "harness.cli.images",
    "harness.cli.rbac",
    "harness.cli.report",
    "harness.cli.scenarios",
    "harness.cli.migrate",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where the usage is (exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: when it names a command, only that command's module is imported (importing
    them all costs ~0.16 s more: `run` brings the plan and cluster layers, which `static` never needs);
    otherwise (`--help`, no command, a misspelt one) every command is, so the usage lists them all."""
    import importlib

    parser = _Parser(
        prog="kfp-conformance",
        description="Compare Kubeflow Pipelines driver variants: static tier, live runs, reports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _command_named(argv or ())
    for module in COMMANDS:
        if named is None or module.rsplit(".", 1)[1] == named:
            importlib.import_module(module).register(sub)
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` names (its first word that is not an option: the top level has no option taking a
    value), if it is one of COMMANDS."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in {module.rsplit(".", 1)[1] for module in COMMANDS} else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv)  # imports the command's module: Ctrl-C here must be quiet too
        args = parser.parse_args(argv)
        if hasattr(args, "config") and not args.config:  # the library never reads the environment
            args.config = os.environ.get("KFPC_CONFIG") or None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted (cleanup ran; re-run to continue)", file=sys.stderr)
        return 130
    except OSError as exc:  # a disk full, a permission changed mid-run: one line, not a traceback
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or type(exc).__name__}{where} (check the path, its permissions and free "
              "space, then run again)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
