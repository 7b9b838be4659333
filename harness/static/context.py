"""What every static check works on: the selection's renders, the variant pairs compared, and the check
signature. Checks (`harness.static.registry`) and the runner (`harness.static.runner`) both build on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from harness.models import Finding, Mode, Variant
from harness.progress import Progress, silent
from harness.render.kustomize import InstallRender, Render, install_overlay
from harness.selection import Selection
from harness.static.validate import SchemaValidator
from harness.static.workflows import RunViews

OVERLAYS = ("ci", "product")


@dataclass(frozen=True)
class Pair:
    """Two variants compared in one mode; `base` is the reference (the baseline when it is selected)."""

    base: Variant
    other: Variant

    @property
    def label(self) -> str:
        return f"{self.base.name}..{self.other.name}"


@dataclass
class StaticContext:
    selection: Selection
    renders: dict[tuple[str, str, str], InstallRender] = field(default_factory=dict)  # (variant, mode, which)
    progress: Progress = silent  # slow steps report here (the CLI decides whether anyone sees it)
    # Memos of this run only (issue 13: nothing outlives a run): built validators and each distinct object's
    # schema errors, and the compiled-workflow goldens' canonical views.
    validator: SchemaValidator = field(default_factory=SchemaValidator)
    workflow_views: RunViews = field(default_factory=RunViews)

    def render(self, variant: str, mode: str, which: str = "ci") -> InstallRender:
        return self.renders[(variant, mode, which)]

    def tree(self, variant: str) -> Path:
        return Path(self.selection.sources[variant].path)


def variant_pairs(selection: Selection, *, baseline_only: bool = False, self_check: bool = False) -> list[Pair]:
    """Every pair of selected variants in config order (upstream first), or only the baseline against each
    other variant; `self_check` compares each tree with itself."""
    variants = selection.variants
    if self_check:
        return [Pair(v, v) for v in variants]
    if baseline_only:
        base = selection.config.variant(selection.baseline)
        return [Pair(base, v) for v in variants if v.name != base.name]
    order = list(selection.config.variants)
    ordered = sorted(variants, key=lambda v: order.index(v.name))
    return [Pair(a, b) for a, b in combinations(ordered, 2)]


def self_comparisons(findings: list[Finding]) -> list[Finding]:
    """A self-check calibrates the comparison: only findings that compare a tree with itself count.

    Per-tree properties (one variant: images, TLS wiring) and findings across several trees are left out;
    the normal run reports them.
    """
    return [f for f in findings if len(f.variants) >= 2 and len(set(f.variants)) == 1]


def render_all(ctx: StaticContext, overlays: tuple[str, ...] = OVERLAYS, workers: int = 2,
               then: Callable[[InstallRender], object] | None = None,
               mode_done: Callable[[Mode], object] | None = None) -> None:
    """Render every (variant, mode, overlay) once; kustomize runs in parallel (it is the slow part).

    The worker threads only stage trees and run kustomize, back to back, each distinct render once. This
    thread meanwhile assembles the installs in mode order and runs the Python work on them: `then` on each
    install as soon as it exists, and `mode_done` once every install of a mode exists (that mode's checks), so
    Python work overlaps the kustomize processes still running (they hold no GIL).
    """
    sel = ctx.selection
    jobs = [(v.name, m, which) for m in sel.modes for v in sel.variants for which in overlays]
    ctx.progress(f"rendering {len(jobs)} installs with kustomize (cached renders are instant)")
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        renders = _start_renders(pool, ctx, jobs, workers)
        left = Counter(mode.name for _variant, mode, _which in jobs)
        for mode in sel.modes:
            if not left[mode.name] and mode_done is not None:  # no overlay selected: its checks find nothing
                mode_done(mode)
        handed: set[tuple[str, str]] = set()
        for done, (variant, mode, which) in enumerate(jobs, 1):
            overlay_key = (variant, install_overlay(mode, which))
            overlay = renders[overlay_key].result()
            # An install reads its renders from the cache as a render of its own would (`cached` in static.json):
            # the cluster-scoped one was rendered by an earlier job; an overlay shared by two installs is
            # handed to the first and read from the cache by the next.
            if overlay_key in handed:
                overlay = sel.renderer.render(ctx.tree(variant), overlay_key[1])
            handed.add(overlay_key)
            install = InstallRender(mode.name, which, sel.renderer.render(ctx.tree(variant), mode.cluster_scoped),
                                    overlay)
            ctx.renders[(variant, mode.name, which)] = install
            ctx.progress(f"rendered {done}/{len(jobs)}: {variant} {mode.name} ({which})")
            if then is not None:
                then(install)
            left[mode.name] -= 1
            if not left[mode.name] and mode_done is not None:
                mode_done(mode)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, renders not started yet never start


def _start_renders(pool: ThreadPoolExecutor, ctx: StaticContext, jobs: list[tuple[str, Mode, str]],
                   workers: int) -> dict[tuple[str, str], Future[Render]]:
    """Queue each distinct (variant, overlay) render once, each tree's cluster-scoped ones first; return once
    every tree is staged and every cluster-scoped render is done (a broken one stops the run first, as before).

    The queue starts with one tree's staging per worker, then each render is followed by the next tree's
    staging: the first kustomize starts as soon as one tree is staged.
    """
    sel = ctx.selection
    cluster_scoped = [(v.name, m.cluster_scoped) for v in sel.variants for m in sel.modes]
    wanted = dict.fromkeys([*cluster_scoped, *((v, install_overlay(m, which)) for v, m, which in jobs)])
    names = [v.name for v in sel.variants]
    stages = {name: pool.submit(sel.renderer.stage, ctx.tree(name)) for name in names[:workers]}
    renders = {}
    for variant, overlay in wanted:
        renders[(variant, overlay)] = pool.submit(sel.renderer.render, ctx.tree(variant), overlay)
        if len(stages) < len(names):
            stages[names[len(stages)]] = pool.submit(sel.renderer.stage, ctx.tree(names[len(stages)]))
    sel.renderer.versions()  # (every render's key needs them) `kubectl version` runs here while the trees stage
    for name in names:
        stages[name].result()
    for key in dict.fromkeys(cluster_scoped):
        renders[key].result()
    return renders


# A check takes the context, the pairs and one mode, and returns findings plus data for static.json.
Check = Callable[[StaticContext, list[Pair], Mode], tuple[list[Finding], dict[str, Any]]]


@dataclass(frozen=True)
class Started:
    """A check started before its result is needed: `result()` waits for it (raising its error), `end()` stops
    what it still runs (called whatever ends the run; harmless once the result is in)."""

    result: Callable[[], tuple[list[Finding], dict[str, Any]]]
    end: Callable[[], None] = lambda: None


# A modeless check's start: same arguments as the check, returns at once.
Starter = Callable[[StaticContext, list[Pair], Mode], Started]


