"""Arguments shared by every command that selects variants and modes, and their resolution; the
`clusters` options shared by `run` and `migrate`.

`--variant NAME[:LABEL][=SOURCE]` (repeatable) picks variants and optionally their source (path or git
URL@REF); `NAME:LABEL` is an instance: another build of the config entry NAME (e.g. `central-driver:base`
and `central-driver:pr`), named so in every output and taking its behaviour from NAME;
`--sources DIR` (env KFPC_SOURCES) gives one tree per variant; `--remote-bases DIR` (env
KFPC_REMOTE_BASES) is the offline mirror of kustomize remote bases.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.models import Source
from harness.render.sources import resolve_source
from harness.selection import Selection, SelectionRequest
from harness.selection import resolve_selection as resolve

if TYPE_CHECKING:
    from harness.live.session import LiveOptions


def default_cache_dir() -> Path:
    if os.environ.get("KFPC_CACHE_DIR"):
        return Path(os.environ["KFPC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-conformance"


def scenario_source(args: argparse.Namespace) -> dict[str, Any]:
    """Where the catalogue's scenario files are and how long one may take to import (--pipelines or
    KFPC_PIPELINES; KFPC_SCENARIO_IMPORT_SECONDS), as `harness.catalogue.scenarios.discover` arguments."""
    seconds = os.environ.get("KFPC_SCENARIO_IMPORT_SECONDS")
    return {"directory": getattr(args, "pipelines", None) or os.environ.get("KFPC_PIPELINES") or None,
            "import_seconds": float(seconds) if seconds else None}


def default_kubeconfig() -> str | None:
    """The first file of $KUBECONFIG, as kubectl takes it (None: the library's ~/.kube/config)."""
    value = os.environ.get("KUBECONFIG")
    return value.split(os.pathsep)[0] if value else None


def check_reachable(handle: Any, timeout: float = 10) -> None:
    """--provider existing: the API server answers /version (once, no retries: an unreachable server is a
    setup problem the user fixes, not a transient fault)."""
    from harness.boundary.kube import Kube, KubeApiError
    from harness.boundary.retry import RetryPolicy

    try:
        Kube(str(handle.kubeconfig), handle.context or None, request_timeout=timeout,
             retry_policy=RetryPolicy(attempts=1)).version()
    except KubeApiError as exc:
        import re

        errno = re.search(r"\[Errno -?\d+\] [^'\")]+", exc.reason)  # urllib3 wraps the OS error in 3 layers
        reason = errno.group(0) if errno else f"{exc.status or ''} {exc.reason}".strip()
        raise HarnessError(f"the API server of context {handle.context or 'current'} in {handle.kubeconfig} does "
                           f"not answer: {reason[:300]}",
                           "start the cluster or fix --kubeconfig/--context (check with `kubectl version`)") from None


def add_selection_args(parser: argparse.ArgumentParser, *, out_default: str = "out") -> None:
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[:LABEL][=SOURCE]",
                        help="variant to include, optionally with its source (path or git URL@REF); NAME:LABEL "
                             "is another build of the config entry NAME (e.g. central-driver:base=URL@REF "
                             "central-driver:pr=../checkout); repeatable; default: every variant in the config")
    parser.add_argument("--mode", action="append", default=[], metavar="MODE",
                        help="install mode (standalone, multi-user, tls); repeatable; default: every mode")
    add_source_args(parser, out_default=out_default)


def add_source_args(parser: argparse.ArgumentParser, *, out_default: str = "out") -> None:
    """Where the config, trees, mirror, cache and output are (for commands that pick variants their own way)."""
    parser.add_argument("--config", help="variants/modes catalogue (default fixtures/variants.yaml, env KFPC_CONFIG)")
    parser.add_argument("--sources", default=os.environ.get("KFPC_SOURCES"), metavar="DIR",
                        help="directory holding one KFP tree per variant name (env KFPC_SOURCES)")
    parser.add_argument("--remote-bases", default=os.environ.get("KFPC_REMOTE_BASES"), metavar="DIR",
                        help="offline mirror of kustomize remote bases (env KFPC_REMOTE_BASES); omit to fetch online")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="clones and renders cache (env KFPC_CACHE_DIR, default ~/.cache/kfp-conformance)")
    parser.add_argument("--out", default=out_default, metavar="DIR", help=f"output directory (default {out_default})")


def add_cluster_args(parser: argparse.ArgumentParser, *, driver_image_help: str) -> argparse._ArgumentGroup:
    """The `clusters` group shared by `run` and `migrate`; returned so a command can add its own options."""
    from harness.plan.build import KEEP_CHOICES

    clusters = parser.add_argument_group("clusters")
    clusters.add_argument("--provider", choices=("kind", "existing", "controlplane"), default="kind",
                          help="kind (Docker), existing (--kubeconfig), or controlplane: a local kube-apiserver, "
                               "etcd, controllers and kwok without Docker (install tier only; scenarios are not "
                               "verified; binaries from `bash scripts/controlplane-build.sh`)")
    clusters.add_argument("--kubeconfig", help="--provider existing: kubeconfig file (default $KUBECONFIG)")
    clusters.add_argument("--context", help="--provider existing: context (default the current one)")
    clusters.add_argument("--image", action="append", default=[], metavar="VARIANT=REPOSITORY=REF",
                          help="replace image REPOSITORY (as rendered, without tag) by REF for VARIANT; repeatable")
    clusters.add_argument("--driver-image", action="append", default=[], metavar="VARIANT=REF", help=driver_image_help)
    clusters.add_argument("--keep-clusters", choices=KEEP_CHOICES, default="never")
    clusters.add_argument("--run-id", help="run id used in cluster names and out/<run-id>/ (default: generated)")
    return clusters


def parse_images(values: list[str], variants: list[str]) -> dict[str, dict[str, str]]:
    images: dict[str, dict[str, str]] = {}
    for value in values:
        parts = value.split("=", 2)
        if len(parts) != 3 or not all(parts):
            raise HarnessError(f"--image {value!r} is not VARIANT=REPOSITORY=REF",
                               "e.g. --image central-driver=kind-registry:5000/apiserver=ghcr.io/me/apiserver:dev")
        _known(parts[0], variants, "--image")
        images.setdefault(parts[0], {})[parts[1]] = parts[2]
    return images


def parse_driver_images(values: list[str], variants: list[str]) -> dict[str, str]:
    return _per_variant(values, variants, "--driver-image", "VARIANT=REF",
                        "e.g. --driver-image sidecar-plugin=kind-registry:5000/driver:ci")


def parse_base_args(values: list[str], variants: list[str]) -> dict[str, str]:
    """`NAME=SOURCE` per --base; NAME must be a selected variant (or instance), once."""
    return _per_variant(values, variants, "--base", "NAME=SOURCE",
                        "e.g. --base central-driver=../shared/kfp-bases/central-driver or "
                        "--base central-driver=merge-base:upstream/master", once=True)


def _per_variant(values: list[str], variants: list[str], flag: str, form: str, example: str, *,
                 once: bool = False) -> dict[str, str]:
    """`VARIANT=VALUE` options: each names a selected variant; with `once`, at most one value per variant."""
    found: dict[str, str] = {}
    for value in values:
        name, _, given = value.partition("=")
        if not name or not given:
            raise HarnessError(f"{flag} {value!r} is not {form}", example)
        _known(name, variants, flag)
        if once and name in found:
            raise HarnessError(f"{flag} {name} given twice", f"pass one {flag} per variant")
        found[name] = given
    return found


def _known(name: str, variants: list[str], flag: str) -> None:
    if name not in variants:
        raise HarnessError(f"{flag}: variant {name!r} is not selected", f"use one of {', '.join(variants)}")


def live_options(args: argparse.Namespace, variants: list[str], **extra: Any) -> LiveOptions:
    """`LiveOptions` from the `clusters` group (a plan gets the fixed run id "plan", so it is golden-testable)."""
    from harness.cluster.base import new_run_id, shared_run_id
    from harness.live.session import LiveOptions

    run_id = args.run_id or ("plan" if args.plan else (shared_run_id(os.environ.get("KFPC_RUN_ID"), None)
                                                       or new_run_id()))
    return LiveOptions(run_id=run_id, provider=args.provider, keep=args.keep_clusters,
                       kubeconfig=args.kubeconfig or default_kubeconfig(), context=args.context,
                       state_dir=os.environ.get("KFPC_STATE_DIR") or None, images=parse_images(args.image, variants),
                       driver_images=parse_driver_images(args.driver_image, variants), env=dict(os.environ),
                       **extra)


def add_base_args(parser: argparse.ArgumentParser) -> None:
    """Drift attribution (harness.static.drift): each variant's upstream merge-base, and hiding what upstream made."""
    parser.add_argument("--base", action="append", default=[], metavar="NAME=SOURCE",
                        help="the upstream merge-base of variant NAME (path, git URL@REF, or merge-base:REF to "
                             "compute it in NAME's git checkout); every static finding then carries its origin: "
                             "branch, upstream-drift or both; repeatable (a variant without one is its own base)")
    parser.add_argument("--hide-drift", action="store_true",
                        help="with --base: leave findings that only come from upstream drift out of static.md "
                             "(static.json keeps them)")


def resolve_bases(args: argparse.Namespace, selection: Selection) -> dict[str, Source] | None:
    """The base source of every selected variant when any --base is given (else None: no attribution)."""
    from harness.static.drift import MERGE_BASE, merge_base_tree

    if getattr(args, "hide_drift", False) and not args.base:
        raise HarnessError("--hide-drift needs --base", "pass --base NAME=SOURCE for the variants whose "
                                                        "merge-base differs (e.g. the PoC branches)")
    if not args.base:
        return None
    specs = parse_base_args(args.base, [v.name for v in selection.variants])
    sources_dir = Path(args.sources) if args.sources else None
    bases: dict[str, Source] = {}
    for variant in selection.variants:
        spec = specs.get(variant.name)
        if spec is None:
            bases[variant.name] = selection.sources[variant.name]  # its own base
        elif spec.startswith(MERGE_BASE):
            tree = merge_base_tree(selection.sources[variant.name], spec[len(MERGE_BASE):], selection.cache_dir)
            bases[variant.name] = resolve_source(str(tree), variant.name, cache_dir=selection.cache_dir)
        else:
            bases[variant.name] = resolve_source(spec, variant.name, sources_dir=sources_dir,
                                                 cache_dir=selection.cache_dir)
    return bases


def selection_request(args: argparse.Namespace, *, resolve_sources: bool = True) -> SelectionRequest:
    """The selection options (and their environment defaults) as a library request."""
    config = args.config or os.environ.get("KFPC_CONFIG")
    return SelectionRequest(
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
        cache_dir_flag="--cache-dir" if args.cache_dir else "the cache dir (KFPC_CACHE_DIR)",
        variants=tuple(args.variant or ()), modes=tuple(args.mode or ()),
        config=Path(config) if config else None, sources=Path(args.sources) if args.sources else None,
        remote_bases=Path(args.remote_bases) if args.remote_bases else None, out=Path(args.out),
        resolve_sources=resolve_sources)


def resolve_selection(args: argparse.Namespace, *, resolve_sources: bool = True) -> Selection:
    return resolve(selection_request(args, resolve_sources=resolve_sources))
