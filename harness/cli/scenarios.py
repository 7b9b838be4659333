"""`kfp-conformance scenarios`: list the scenario catalogue, compile it, run the local oracle.

With `--corpus` it lists KFP's own compiled pipelines instead (`harness.cli.corpus_listing.main_corpus`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import scenario_source


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "scenarios", help="list the scenario catalogue (name, tags, modes, driver outputs, oracle or declared)",
        description="List the catalogue in fixtures/pipelines/. --compile-to writes each scenario's IR YAML "
                    "(what the live tier submits); --oracle runs every oracle-supported scenario with kfp.local "
                    "and checks its outputs against the declared expectations. Exit 0: ok; 1: an oracle "
                    "mismatch; 2: bad input (an invalid scenario file).")
    parser.add_argument("--config", help="variants/modes catalogue, for the known modes (env KFPC_CONFIG)")
    parser.add_argument("--pipelines", metavar="DIR", help="scenario directory (default fixtures/pipelines, "
                                                           "env KFPC_PIPELINES)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    parser.add_argument("--compile-to", metavar="DIR", help="write <DIR>/<scenario>.yaml for every scenario")
    parser.add_argument("--oracle", nargs="?", const="out/oracle", metavar="DIR",
                        help="run the local oracle, writing <DIR>/<scenario>/oracle.json (default out/oracle)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="only these scenarios (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="oracle scenarios run in parallel (default 2)")
    # The KFP corpus listing (harness.catalogue.corpus) shares this command.
    parser.add_argument("--corpus", action="store_true", help="list KFP's own compiled pipelines instead")
    parser.add_argument("--sources", metavar="DIR", help="with --corpus: directory with one KFP tree per variant "
                                                         "(env KFPC_SOURCES)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[:LABEL][=SOURCE]",
                        help="with --corpus: a variant and its tree (repeatable); the baseline's corpus is listed "
                             "and coverage is computed once every compared variant's tree is known")
    parser.add_argument("--folder", action="append", default=[], metavar="NAME",
                        help="with --corpus: corpus folder (repeatable)")
    parser.add_argument("--glob", metavar="PATTERN", help="with --corpus: file name pattern")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.corpus:
        from harness.cli.corpus_listing import main_corpus

        return main_corpus(args)

    from harness.catalogue import scenarios as catalogue
    from harness.config import load_config
    from harness.errors import HarnessError
    from harness.selection import check_writable_dir

    if args.compile_to:
        check_writable_dir(args.compile_to, "--compile-to")
    if args.oracle:
        check_writable_dir(args.oracle, "--oracle")
    if args.jobs < 1:
        raise HarnessError(f"--jobs {args.jobs} must be at least 1", "pass --jobs 1 or more")
    config = load_config(args.config)
    specs = catalogue.discover(**scenario_source(args), modes=list(config.modes))
    if args.only:
        unknown = sorted(set(args.only) - {s.name for s in specs})
        if unknown:
            raise HarnessError(f"unknown scenario(s): {', '.join(unknown)}",
                               f"choose from {', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in args.only]
    rows = [catalogue.summary(spec) for spec in specs]
    if args.compile_to:
        for spec, row in zip(specs, rows):
            row["compiled"] = str(catalogue.compile_scenario(spec, args.compile_to))
    exit_code = 0
    if args.oracle:
        exit_code = _run_oracle(specs, rows, Path(args.oracle), args.jobs)
    if args.format == "json":
        print(json.dumps({"scenarios": rows, "count": len(rows)}, indent=2))
    else:
        print(_table(rows, oracle=bool(args.oracle)))
    return exit_code


def _run_oracle(specs: list[Any], rows: list[dict[str, Any]], out: Path, jobs: int) -> int:
    from harness.catalogue import oracle

    checks = oracle.check_catalogue(specs, out, jobs=jobs)
    failed = 0
    for row, result in zip(rows, checks):
        row["oracle_status"] = result.status  # passed | failed | skipped (declared values), never merged
        row["oracle_mismatches"] = result.mismatches
        if result.result is not None:
            row["oracle_result"] = str(result.result.path)
        if result.status == "failed":
            failed += 1
            for problem in result.mismatches:
                print(f"oracle: {result.scenario}: {problem}", file=sys.stderr)
    ran = sum(1 for c in checks if c.supported)
    print(f"oracle: {ran - failed}/{ran} scenario(s) match their declarations, {len(checks) - ran} declared only "
          f"(not run locally) -> {out}", file=sys.stderr)
    return 1 if failed else 0


def _table(rows: list[dict[str, Any]], *, oracle: bool) -> str:
    headers = ["SCENARIO", "TAGS", "MODES", "DRIVER OUTPUTS", "EXPECTATIONS"] + (["ORACLE RUN"] if oracle else [])
    lines = [[r["name"], ",".join(r["tags"]) or "-", ",".join(r["modes"]), ",".join(r["driver_outputs"]) or "-",
              r["expectations"]] + ([r.get("oracle_status", "")] if oracle else []) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *lines)]
    out = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [headers, *lines]]
    declared = [r for r in rows if r["expectations"] == "declared"]
    out.append(f"\n{len(rows)} scenario(s); {len(rows) - len(declared)} checked by the kfp.local oracle, "
               f"{len(declared)} with declared values only:")
    out += [f"  {r['name']}: {r['oracle_reason']}" for r in declared]
    return "\n".join(out)
