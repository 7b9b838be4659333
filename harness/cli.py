"""`kfp-conformance` command line: a thin layer over the harness library.

Each subcommand lives in its own module under harness/commands/ and exposes `register(subparsers)`;
`main` maps a HarnessError to one line on stderr and its exit code (2 bad input, 1 failure).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import HarnessError

# Subcommand modules, in the order `--help` lists them. Adding a command is one line here.
COMMANDS = (
    "harness.commands.static",
    "harness.commands.run",
    "harness.commands.clusters",
    "harness.commands.matrix",
    "harness.commands.images",
    "harness.commands.rbac",
    "harness.commands.report",
    "harness.commands.scenarios",
    "harness.commands.migrate",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="kfp-conformance",
        description="Compare Kubeflow Pipelines driver variants: static tier, live runs, reports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted (cleanup ran; re-run to continue)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
