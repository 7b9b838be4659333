"""`kfp-conformance static`: the static conformance tier (no cluster)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from harness.cli.common import add_base_args, add_selection_args, resolve_bases, resolve_selection
from harness.cli.known import add_known_args, load_known, report_known
from harness.cli.progress import add_progress_args, reporter
from harness.errors import HarnessError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("static", help="compare renders, RBAC and compiled workflows of the variants (no cluster)",
                            description="Static tier: inventory diffs, schema validation, RBAC, install "
                                        "cross-checks, orphans and compiled-workflow comparison. Exit 0: no "
                                        "unexpected error findings; 1: findings; 2: bad input.")
    add_selection_args(parser)
    parser.add_argument("--baseline-pairs", action="store_true",
                        help="compare only the baseline against each other variant (default: every pair)")
    parser.add_argument("--self-check", action="store_true",
                        help="compare each variant's tree with itself (must give no unexpected finding)")
    parser.add_argument("--check", action="append", default=[], help="run only these checks (repeatable)")
    add_base_args(parser)
    add_known_args(parser)
    add_progress_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.static.runner import iter_checks, run_static

    names = [name for name, _check in iter_checks()]
    unknown = [name for name in args.check if name not in names]
    if unknown:  # otherwise nothing runs and the tier "passes"
        raise HarnessError(f"unknown --check {', '.join(unknown)}", f"choose from {', '.join(names)}")
    known = load_known(args)
    selection = resolve_selection(args)
    bases = resolve_bases(args, selection)
    today = dt.date.today()
    result = run_static(selection, baseline_only=args.baseline_pairs, self_check=args.self_check,
                        only=tuple(args.check), known=known, today=today, bases=bases, hide_drift=args.hide_drift,
                        progress=reporter(args))
    summary = result.data["summary"]
    report_known(args, result.findings, summary, today)
    print(f"static: {summary['findings']} findings ({summary['blocking']} blocking) over "
          f"{len(selection.variants)} variant(s) x {len(selection.modes)} mode(s) -> {result.json_path}, "
          f"{result.markdown_path}", file=sys.stderr)
    if bases is not None:
        origins = ", ".join(f"{n} {o}" for o, n in summary["by_origin"].items())
        print(f"static: origins against the merge-bases: {origins}", file=sys.stderr)
    return result.exit_code
