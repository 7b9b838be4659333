"""`kfp-conformance report BUNDLE_DIR...`: rebuild the sign-off report from saved bundles (no cluster)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from harness.cli.known import add_known_args, load_known
from harness.report import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="compare saved evidence bundles and write the sign-off report (no cluster)",
        description="Reads every bundle under the given directories (merging several CI jobs), compares the "
                    "variants, applies the declared expected differences and writes report.json, summary.md, "
                    "index.html and junit.xml. Exit 0: ready to sign off; 1: differences or anything not "
                    "verified; 2: bad input.")
    parser.add_argument("bundle_dirs", nargs="+", metavar="BUNDLE_DIR",
                        help="directories holding bundles (out/<run-id>, a CI artifact, or one bundle)")
    parser.add_argument("--static", metavar="STATIC_JSON", help="the static tier's static.json to include")
    parser.add_argument("--policy", metavar="DIR", help="declared expected differences (default fixtures/policy)")
    parser.add_argument("--config", metavar="PATH", help="variants/modes catalogue (env KFPC_CONFIG)")
    parser.add_argument("--baseline", help="compare against this variant (default: the catalogue's baseline)")
    parser.add_argument("--out", default="out/report", metavar="DIR", help="where to write (default out/report)")
    parser.add_argument("--format", action="append", choices=sorted(FORMATS), dest="formats",
                        help="write only these formats (repeatable; default all)")
    add_known_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.boundary.redact import redact
    from harness.judge.decisions import known_findings_yaml
    from harness.report.signoff import sign_off
    from harness.selection import check_writable_dir

    check_writable_dir(args.out, "--out")
    from harness.judge.verdict import exit_code

    known = load_known(args)
    today = dt.date.today()
    result = sign_off(args.bundle_dirs, args.out, static=args.static, policy_dir=args.policy,
                      config_path=args.config, formats=tuple(args.formats or FORMATS), baseline=args.baseline,
                      known=known, today=today)
    data = result.report.data
    print(data["verdict"]["headline"])
    for mismatch in data["mismatches"]:
        print(f"warning: {mismatch['message']}: this report mixes builds and cannot be signed off", file=sys.stderr)
    for fmt, path in sorted(result.written.items()):
        print(f"  {fmt}: {path}", file=sys.stderr)
    if args.write_known_findings:
        Path(args.write_known_findings).write_text(redact(known_findings_yaml(result.report.findings, today)))
        print(f"report: wrote the blocking causes to {args.write_known_findings}: give each a reason before "
              "using it", file=sys.stderr)
    return exit_code(result.report.verdict)
