"""`kfp-conformance matrix`: the CI job matrix (variant × mode) as JSON, from the config."""

from __future__ import annotations

import argparse
import json

from harness.config import load_config
from harness.plan.matrix import job_matrix


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("matrix", help="print the CI job matrix (variant x mode) as JSON for GitHub Actions")
    parser.add_argument("--config", help="variants/modes catalogue (env KFPC_CONFIG)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[:LABEL]",
                        help="restrict to these variants or instances (central-driver:pr); a =SOURCE is ignored")
    parser.add_argument("--mode", action="append", default=[], help="restrict to these modes")
    parser.add_argument("--tag", action="append", default=[], help="scenario tags the jobs run (e.g. critical)")
    parser.add_argument("--github-output", metavar="NAME",
                        help="print as NAME=<json> for $GITHUB_OUTPUT instead of plain JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [v.partition("=")[0] for v in args.variant]  # the workflow passes its --variant NAME=SOURCE words
    matrix = job_matrix(load_config(args.config), variants=names, modes=args.mode, tags=args.tag)
    text = json.dumps(matrix, sort_keys=True, separators=(",", ":"))
    print(f"{args.github_output}={text}" if args.github_output else text)
    return 0
