"""`kfp-conformance clusters list|prune`: what the ledger and kind know, and removal of crashed runs' leftovers."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.cli.common import default_cache_dir
from harness.cluster.base import CLUSTER_PREFIX
from harness.cluster.controlplane import ControlPlaneProvider
from harness.cluster.kind import KindProvider
from harness.cluster.ledger import Ledger
from harness.config import load_config
from harness.errors import CommandFailedError, CommandTimeoutError, MissingBinaryError
from harness.selection import check_writable_dir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("clusters", help="list or prune clusters created by kfp-conformance",
                            description="The ledger (<cache dir>/clusters.json) is written before any cluster is "
                                        "created, so a crashed run's clusters can always be found and removed.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (("list", "show ledger entries and kind clusters named kfpc-*"),
                            ("prune", "delete clusters of crashed or finished runs")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--config", help="variants/modes catalogue (for live settings)")
        action.add_argument("--cache-dir", metavar="DIR", help="cache dir holding the ledger (env KFPC_CACHE_DIR; KFPC_STATE_DIR overrides the ledger dir)")
        action.add_argument("--run-id", help="only clusters of this run")
        if name == "prune":
            action.add_argument("--include-kept", action="store_true",
                                help="also delete clusters kept with --keep-clusters")
            action.add_argument("--unlisted", action="store_true",
                                help="also delete kind clusters named kfpc-* that no ledger entry knows")
            action.add_argument("--dry-run", action="store_true", help="say what would be deleted")
        action.set_defaults(func=run)


def _kind_clusters(provider: KindProvider) -> tuple[list[str] | None, str]:
    try:
        return provider.list_owned(), ""
    except MissingBinaryError as exc:
        return None, f"kind not available ({exc.problem}): only the ledger is shown"
    except (CommandFailedError, CommandTimeoutError) as exc:
        return None, f"`kind get clusters` failed ({exc.problem}): only the ledger is shown"


def run(args: argparse.Namespace) -> int:
    from harness.live.session import ledger_dir  # lazy: it pulls in the Kubernetes client (~0.25 s start-up)

    state = ledger_dir(Path(args.cache_dir or default_cache_dir()), os.environ.get("KFPC_STATE_DIR"))
    check_writable_dir(state, "--cache-dir" if args.cache_dir and not os.environ.get("KFPC_STATE_DIR")
                       else "the ledger dir (KFPC_STATE_DIR or KFPC_CACHE_DIR)")
    ledger = Ledger(state / "clusters.json")
    provider = KindProvider(load_config(args.config).live)
    planes = ControlPlaneProvider(env=dict(os.environ))  # where `run --provider controlplane` keeps its state
    entries = ledger.entries()
    kind, note = _kind_clusters(provider)
    if note:
        print(note, file=sys.stderr)

    def wanted(name: str, entry: dict | None) -> bool:
        run_id = entry.get("run_id") if entry else None
        return not args.run_id or run_id == args.run_id or name.startswith(f"{CLUSTER_PREFIX}{args.run_id}-")

    unlisted = [n for n in kind or [] if n not in entries and wanted(n, None)]
    if args.action == "list":
        for name, entry in sorted(entries.items()):
            if not wanted(name, entry):
                continue
            alive = "abandoned" if ledger.abandoned(dict(entry)) else "in use"
            kept = " kept" if entry.get("keep") else ""
            exists = "" if kind is None or entry.get("provider") != "kind" else \
                (" (exists)" if name in kind else " (gone)")
            if entry.get("provider") == "controlplane":
                exists = " (exists)" if planes.directory(name).is_dir() else " (gone)"
            print(f"{name}\t{entry.get('variant')}.{entry.get('mode')}\trun {entry.get('run_id')}\t"
                  f"{entry.get('state')}\t{alive}{kept}{exists}")
        for name in unlisted:
            print(f"{name}\t?\t?\tunlisted\tnot in the ledger (prune --unlisted removes it)")
        return 0
    if not args.dry_run:
        for ended in ledger.end_orphans():  # children of SIGKILLed runs (port-forwards, kubectl waits, ...)
            print(f"ended process {ended} left by a crashed run", file=sys.stderr)
    deleted, failed = 0, []
    for name, entry in sorted(entries.items()):
        if not wanted(name, entry) or not ledger.abandoned(dict(entry)):
            continue
        if entry.get("keep") and not args.include_kept:
            continue
        if entry.get("provider") == "kind" and kind is None:
            failed.append(name)  # kind or Docker is not working: the entry stays, nothing is erased
            continue
        if entry.get("provider") == "controlplane":
            deleted += _delete_controlplane(ledger, planes, name, args.dry_run)
            continue
        deleted += _delete(ledger, provider, name, entry.get("provider") == "kind", args.dry_run, failed)
    if args.unlisted or args.run_id:
        for name in unlisted:
            deleted += _delete(ledger, provider, name, True, args.dry_run, failed)
        # a control plane's state dir outlives a SIGKILLed run (its processes die with it: PR_SET_PDEATHSIG)
        for name in planes.list_owned():
            if name.startswith(CLUSTER_PREFIX) and name not in entries and wanted(name, None):
                deleted += _delete_controlplane(ledger, planes, name, args.dry_run)
    print(f"{'would delete' if args.dry_run else 'deleted'} {deleted} cluster(s)", file=sys.stderr)
    if failed:
        print(f"error: cannot delete {len(failed)} cluster(s) ({', '.join(failed)}); their ledger entries are "
              f"kept ({note or 'kind delete failed'}; make kind and Docker work, then run "
              "`kfp-conformance clusters prune` again)", file=sys.stderr)
        return 1
    return 0


def _delete_controlplane(ledger: Ledger, planes: ControlPlaneProvider, name: str, dry_run: bool) -> int:
    """Stop a crashed run's control plane: only pids whose command line is still the recorded binary
    (processes.json, never a recycled pid), then remove its state (certificates, etcd data)."""
    print(f"{'would stop' if dry_run else 'stopping'} control plane {name}", file=sys.stderr)
    if not dry_run:
        planes.delete(name)
        ledger.forget(name)
    return 1


def _delete(ledger: Ledger, provider: KindProvider, name: str, via_kind: bool, dry_run: bool,
            failed: list[str]) -> int:
    print(f"{'would delete' if dry_run else 'deleting'} {name}", file=sys.stderr)
    if dry_run:
        return 1
    if via_kind:
        try:
            provider.delete(name)
        except (CommandFailedError, CommandTimeoutError, MissingBinaryError) as exc:
            ledger.delete_failed(name, exc.line())
            failed.append(name)
            return 0
    ledger.forget(name)
    return 1
