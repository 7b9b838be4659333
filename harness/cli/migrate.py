"""`kfp-conformance migrate`: upgrade a live install in place from one driver variant to another (and back).

`--plan` prints every command, manifest and check and runs nothing (no Docker needed). Without it the
migration runs on a kind cluster (or `--provider existing`) and writes `<out>/<run-id>/migration.json`.
Exit 0: every check passed; 1: a blocking finding or the migration did not finish; 2: bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_cluster_args, add_source_args, live_options, resolve_selection
from harness.errors import HarnessError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="upgrade a live install in place between driver variants; check runs, "
                                            "in-flight runs and orphans",
                            description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--from", dest="old", default="sidecar-plugin", metavar="VARIANT[:LABEL][=SOURCE]",
                        help="variant installed first (default sidecar-plugin), optionally an instance with "
                             "its source as in --variant (sidecar-plugin:pr=../checkout)")
    parser.add_argument("--to", dest="new", default="central-driver", metavar="VARIANT[:LABEL][=SOURCE]",
                        help="variant applied over it (default central-driver), as --from")
    parser.add_argument("--rollback", action="store_true", help="then move back to --from on the same cluster")
    parser.add_argument("--mode", default="standalone", help="install mode (default standalone)")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME",
                        help="scenario whose runs are kept across the move (repeatable; default single-component, "
                             "artifacts)")
    parser.add_argument("--in-flight-seconds", type=int, default=None, metavar="N",
                        help="how long the in-flight run sleeps (default 600)")
    parser.add_argument("--plan", action="store_true", help="print the migration plan; run nothing")
    parser.add_argument("--plan-format", choices=("text", "json"), default="text")
    add_source_args(parser)
    clusters = add_cluster_args(parser, driver_image_help="the driver image built from VARIANT's branch (needed "
                                                          "for both variants)")
    clusters.add_argument("--local-tag", default="", metavar="TEMPLATE",
                          help="tag of your local builds under the registry prefix (default '{variant}', as "
                               "`kfp-conformance images build --tag <variant>` makes them): both variants push to "
                               "one registry, and a move between two identical builds would change nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli.run import check_docker, live_runner
    from harness.live.session import existing_handle, pair_inputs
    from harness.models import Scenario
    from harness.plan.migration import DEFAULT_SCENARIOS, IN_FLIGHT_SECONDS, build_migration_plan

    old, new = args.old.partition("=")[0], args.new.partition("=")[0]  # NAME[:LABEL], the source aside
    if old == new:
        raise HarnessError(f"--from and --to are both {old}", "pick two different variants")
    from harness.config import load_config
    from harness.plan.migration import check_movable

    catalogue = load_config(args.config)
    check_movable(catalogue.variant(old), catalogue.variant(new))  # before any source is resolved
    selection = resolve_selection(argparse.Namespace(**{**vars(args), "variant": [args.old, args.new],
                                                        "mode": [args.mode]}))
    options = live_options(args, [old, new], local_tag=args.local_tag)
    _provider, existing = existing_handle(options)
    pairs = {p.variant.name: p for p in pair_inputs(selection)}
    kept = [Scenario(name, "catalogue", f"pipelines/{name}.yaml") for name in (args.scenario or DEFAULT_SCENARIOS)]
    plan = build_migration_plan(config=selection.config, old=pairs[old], new=pairs[new], scenarios=kept,
                                options=options.plan_options(existing), rollback=args.rollback,
                                in_flight_seconds=args.in_flight_seconds or IN_FLIGHT_SECONDS)
    if args.plan:
        print(plan.to_json() if args.plan_format == "json" else plan.to_text(), end="")
        return 0
    from harness.live.migration import MigrationRun, compiled_scenarios

    runner = live_runner()
    if existing is not None:
        from harness.cli.common import check_reachable

        check_reachable(existing)
    if args.provider == "kind":
        check_docker(runner)
        runner.which("kind")
    runner.which("kubectl")
    selection = selection.with_out_dir(Path(args.out) / options.run_id)
    scenarios = compiled_scenarios(plan, selection.out_dir.resolve())
    migration = MigrationRun(selection, plan, options, scenarios, runner=runner,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    _record, findings = migration.run()
    blocking = [f for f in findings if f.blocking]
    for finding in findings:
        print(f"{finding.severity.value:7} {finding.id} {finding.subject}: {finding.message}", file=sys.stderr)
    print(f"migrate: {len(findings)} finding(s), {len(blocking)} blocking -> {selection.out_dir / 'migration.json'}",
          file=sys.stderr)
    return 1 if blocking else 0
