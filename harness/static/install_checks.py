"""The static tier's install checks, in the `harness.static.context.Check` shape: (ctx, pairs, mode) -> (findings, data).

Thin adapters over the pure modules (inventory, validate, crosscheck, orphans); `CHECKS` is meant to be
merged into `harness.static.registry.CHECKS`. Every finding's evidence names the overlay (`ci`/`product`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.models import Finding, Mode
from harness.static.crosscheck import (
    collect_images,
    driver_ca_wiring,
    image_findings,
    network_findings,
    tls_findings,
)
from harness.static.inventory import diff_inventories
from harness.static.orphans import rollback_orphans, static_orphans
from harness.static.validate import SchemaValidator

if TYPE_CHECKING:
    from harness.static.context import Pair, StaticContext

Result = tuple[list[Finding], dict[str, Any]]


def _overlays(ctx: StaticContext, mode: Mode) -> list[str]:
    return sorted({which for (_v, m, which) in ctx.renders if m == mode.name})


def _tag(findings: list[Finding], which: str) -> list[Finding]:
    return [replace(f, evidence={**f.evidence, "overlay": which}) for f in findings]


def _variants(pairs: list[Pair]) -> list:
    seen: dict[str, Any] = {}
    for pair in pairs:
        seen.setdefault(pair.base.name, pair.base)
        seen.setdefault(pair.other.name, pair.other)
    return list(seen.values())


def check_inventory(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    findings, data = [], {}
    for which in _overlays(ctx, mode):
        for pair in pairs:
            diff = diff_inventories(ctx.render(pair.base.name, mode.name, which).manifests,
                                    ctx.render(pair.other.name, mode.name, which).manifests)
            findings += _tag(diff.findings(mode=mode.name, variants=(pair.base.name, pair.other.name)), which)
            data[f"{pair.label}.{which}"] = diff.summary()
    return findings, data


def check_schemas(ctx: StaticContext, pairs: list[Pair], mode: Mode, validator: SchemaValidator | None = None) -> Result:
    validator = validator or ctx.validator
    findings, data = [], {}
    for which in _overlays(ctx, mode):
        for variant in _variants(pairs):
            report = validator.validate_install(ctx.render(variant.name, mode.name, which), ctx.selection.cache_dir)
            findings += _tag(report.findings(mode=mode.name, variants=(variant.name,)), which)
            data[f"{variant.name}.{which}"] = report.summary()
    return findings, data


def check_crosschecks(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    findings, data = [], {}
    variants = _variants(pairs)
    for which in _overlays(ctx, mode):
        renders = {v.name: ctx.render(v.name, mode.name, which).manifests for v in variants}
        for name, manifests in renders.items():
            images = collect_images(manifests)
            findings += _tag(image_findings(images, mode=mode.name, variants=(name,)), which)
            data.setdefault("images", {})[f"{name}.{which}"] = [i.to_dict() for i in images]
        if mode.tls:
            wirings = [driver_ca_wiring(renders[v.name], v, mode) for v in variants]
            findings += _tag(tls_findings(wirings, mode=mode), which)
            data.setdefault("tls", {})[which] = [w.to_dict() for w in wirings]
        for pair in pairs:
            findings += _tag(network_findings(renders[pair.base.name], renders[pair.other.name], mode=mode.name,
                                              variants=(pair.base.name, pair.other.name)), which)
    return findings, data


def check_orphans(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    """Upgrade (base -> other) and rollback, over what the CI overlay installs (else the product one)."""
    overlays = _overlays(ctx, mode)
    if not overlays:
        return [], {}
    which = "ci" if "ci" in overlays else overlays[0]
    config = ctx.selection.config
    findings: list[Finding] = []
    for pair in pairs:
        old = ctx.render(pair.base.name, mode.name, which).manifests
        new = ctx.render(pair.other.name, mode.name, which).manifests
        profiles = {"old_profile": config.profile_objects(pair.base, mode),
                    "new_profile": config.profile_objects(pair.other, mode)}
        variants = (pair.base.name, pair.other.name)
        findings += _tag(static_orphans(old, new, mode=mode.name, variants=variants, **profiles), which)
        findings += _tag(rollback_orphans(old, new, mode=mode.name, variants=variants, **profiles), which)
    data = {"overlay": which, "orphans": sorted({f.subject for f in findings if f.id == "migration.orphan"})}
    return findings, data


CHECKS = {
    "inventory": check_inventory,
    "validate": check_schemas,
    "crosscheck": check_crosschecks,
    "orphans": check_orphans,
}
