"""The static tier's checks, by name. Each takes (context, variant pairs, mode) and returns findings and
the data static.json keeps for it. `kfp-conformance static` and `scenarios/test_static.py` both run these.
"""

from __future__ import annotations

from typing import Any

from harness.manifests import tls as tlscheck
from harness.models import Finding, Mode
from harness.rbac import evaluator as rbac
from harness.static import install_checks, security_checks, workflows
from harness.static.context import Check, Pair, StaticContext

Result = tuple[list[Finding], dict[str, Any]]


def _variants(pairs: list[Pair]) -> list[str]:
    return sorted({v.name for pair in pairs for v in (pair.base, pair.other)})


def check_rbac(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    manifests = {name: ctx.render(name, mode.name).manifests for name in _variants(pairs)}
    return rbac.static_rbac(ctx.selection.config, mode, [(p.base, p.other) for p in pairs], manifests)


def check_driver_transport_tls(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    """Which driver connections are plain HTTP (reported in TLS mode, where users expect encryption)."""
    if not mode.tls:
        return [], {}
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for name in _variants(pairs):
        manifests = ctx.render(name, mode.name).manifests
        conns = tlscheck.driver_connections(manifests, ctx.tree(name) / workflows.GOLDEN_DIR)
        data[name] = {"driver_connections": conns,
                      "tls_endpoints": [e.__dict__ | {"names": list(e.names)}
                                        for e in tlscheck.tls_endpoints(manifests)]}
        findings.extend(tlscheck.plain_http_findings(conns, mode=mode.name, variant=name))
    return findings, data


def check_compiled_workflows(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    """The compiled-workflow goldens of each pair of trees, normalised across driver transports (modeless)."""
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for number, pair in enumerate(pairs, 1):
        ctx.progress(f"comparing compiled workflows {number}/{len(pairs)}: {pair.label}")
        comparison = workflows.compare_compiled_workflows(
            ctx.tree(pair.base.name), ctx.tree(pair.other.name), base_variant=pair.base.name,
            other_variant=pair.other.name, mode="all", cache_dir=ctx.selection.cache_dir,
            views=ctx.workflow_views)
        findings.extend(comparison.findings())
        data[pair.label] = comparison.summary()
    return findings, data


CHECKS: dict[str, Check] = {
    "inventory": install_checks.CHECKS["inventory"],
    "validate": install_checks.CHECKS["validate"],
    "rbac": check_rbac,
    "crosscheck": install_checks.CHECKS["crosscheck"],
    "tls-transport": check_driver_transport_tls,
    "orphans": install_checks.CHECKS["orphans"],
    # security review (docs/security-checks.md): Pod Security Standards, exposure, literal credentials
    **security_checks.CHECKS,
    "workflows": check_compiled_workflows,
}
# Checks that do not depend on the install mode run once (their findings carry mode "all").
MODELESS: frozenset[str] = frozenset({"workflows"})
