"""`--known-findings` and `--write-known-findings`, shared by `static` and `run`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.judge.decisions import KnownFinding, known_findings_yaml, load_known_findings


def add_known_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("accepted findings")
    group.add_argument("--known-findings", metavar="FILE",
                       help="YAML of accepted findings (id, subject, modes, reason, owner, until): they are shown "
                            "with their reason and do not fail the run until they expire")
    group.add_argument("--write-known-findings", metavar="FILE",
                       help="write today's blocking causes as a known-findings file to edit (a starting point)")


def load_known(args: argparse.Namespace) -> list[KnownFinding] | None:
    """Read the file before any work, so a bad file is one line and nothing is made."""
    target = getattr(args, "write_known_findings", None)
    if target and (Path(target).is_dir() or not Path(target).resolve().parent.is_dir()):
        raise HarnessError(f"--write-known-findings {target} cannot be written",
                           "name a file in an existing directory")
    path = getattr(args, "known_findings", None)
    return load_known_findings(Path(path)) if path else None


def report_known(args: argparse.Namespace, findings: list, summary: dict, today: dt.date) -> None:
    if summary.get("accepted"):
        print(f"static: {summary['accepted']} finding(s) accepted by {args.known_findings}", file=sys.stderr)
    target = getattr(args, "write_known_findings", None)
    if target:
        Path(target).write_text(known_findings_yaml(findings, today))
        print(f"static: wrote the blocking causes to {target}: give each a reason before using it", file=sys.stderr)
