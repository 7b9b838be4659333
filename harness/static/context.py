"""What every static check works on: the selection's renders, the variant pairs compared, and the check
signature. Checks (`harness.static.registry`) and the runner (`harness.static.runner`) both build on it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from harness.models import Finding, Mode, Variant
from harness.progress import Progress, silent
from harness.render.kustomize import InstallRender
from harness.selection import Selection

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
               then: Callable[[InstallRender], object] | None = None) -> None:
    """Render every (variant, mode, overlay) once; kustomize runs in parallel (it is the slow part).

    `then` runs on each install render as soon as it exists, in the render's thread: Python work on one
    render overlaps the kustomize processes of the others (they hold no GIL while they run).
    """
    sel = ctx.selection
    jobs = [(v.name, m, which) for v in sel.variants for m in sel.modes for which in overlays]
    ctx.progress(f"rendering {len(jobs)} installs with kustomize (cached renders are instant)")
    # Cluster-scoped renders are shared by the modes of a tree; render them first so threads don't race.
    for variant in {v.name for v in sel.variants}:
        for cluster_scoped in {m.cluster_scoped for m in sel.modes}:
            sel.renderer.render(ctx.tree(variant), cluster_scoped)

    def one(job: tuple[str, Mode, str]) -> InstallRender:
        install = sel.renderer.render_install(ctx.tree(job[0]), job[1], job[2])
        if then is not None:
            then(install)
        return install

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(one, jobs)
        for done, ((variant, mode, which), result) in enumerate(zip(jobs, results), 1):
            ctx.renders[(variant, mode.name, which)] = result
            ctx.progress(f"rendered {done}/{len(jobs)}: {variant} {mode.name} ({which})")


# A check takes the context, the pairs and one mode, and returns findings plus data for static.json.
Check = Callable[[StaticContext, list[Pair], Mode], tuple[list[Finding], dict[str, Any]]]


