"""The static tier's checks, by name. Each takes (context, variant pairs, mode) and returns findings and
the data static.json keeps for it. `kfp-conformance static` and `scenarios/test_static.py` both run these.
"""

from __future__ import annotations

import sys
from typing import Any

from harness.boundary.worker import Worker, available_cores, read_reply
from harness.manifests import tls as tlscheck
from harness.models import Finding, Mode
from harness.rbac import evaluator as rbac
from harness.static import install_checks, security_checks, workflows
from harness.static.context import Check, Pair, Started, Starter, StaticContext

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


def _workflow_requests(ctx: StaticContext, pairs: list[Pair]) -> list[workflows.PairRequest]:
    return [workflows.PairRequest(str(ctx.tree(p.base.name)), str(ctx.tree(p.other.name)), p.base.name,
                                  p.other.name, "all") for p in pairs]


def _combined(pairs: list[Pair], results: list[workflows.PairResult]) -> Result:
    findings: list[Finding] = []
    data: dict[str, Any] = {}
    for pair, (found, summary) in zip(pairs, results, strict=True):
        findings.extend(found)
        data[pair.label] = summary
    return findings, data


def check_compiled_workflows(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Result:
    """The compiled-workflow goldens of each pair of trees, normalised across driver transports (modeless)."""
    results = []
    for number, request in enumerate(_workflow_requests(ctx, pairs), 1):
        ctx.progress(f"comparing compiled workflows {number}/{len(pairs)}: {pairs[number - 1].label}")
        results.append(workflows.pair_result(request, ctx.selection.cache_dir, ctx.workflow_views))
    return _combined(pairs, results)


# Goldens below this many bytes are compared in this process: a worker costs ~0.1 s of CPU to start, and the
# tests' small trees take less than that to compare.
WORKER_MIN_BYTES = 1 << 20


def start_compiled_workflows(ctx: StaticContext, pairs: list[Pair], mode: Mode) -> Started:
    """`check_compiled_workflows`, started now: it reads no render, so it runs while kustomize does.

    With goldens big enough to pay for it, in a worker process (harness.boundary.worker): its ~1.2 s of parsing
    and canonicalising then uses the second core instead of taking turns with this process's parsing,
    validation and checks for the GIL. The worker also reads the results a run has kept (hashing the goldens
    here would delay the first render). A worker's error is raised as the in-process check raises it; a worker
    that fails any other way leaves the work to this process. A tree without goldens fails here, before any
    render."""
    asked = _workflow_requests(ctx, pairs)
    cache_dir = ctx.selection.cache_dir
    goldens = sum(path.stat().st_size for r in asked for tree in (r.base_dir, r.other_dir)
                  for path in workflows.golden_dir(tree).glob("*.yaml"))
    if goldens < WORKER_MIN_BYTES or available_cores() < 2 or not sys.executable:
        return Started(lambda: check_compiled_workflows(ctx, pairs, mode))
    try:
        worker = Worker("harness.static.workflows:serve_pairs", (asked, str(cache_dir) if cache_dir else None))
    except OSError:  # no process to be had (fork limits, memory): this process compares them
        return Started(lambda: check_compiled_workflows(ctx, pairs, mode))

    def result() -> Result:
        answer = worker.finish(read_reply)
        if answer[0] == "ok":
            for number, pair in enumerate(pairs, 1):
                ctx.progress(f"compared compiled workflows {number}/{len(pairs)}: {pair.label} (in a worker)")
            return _combined(pairs, answer[1])
        if answer[0] == "error":
            raise answer[1]
        return check_compiled_workflows(ctx, pairs, mode)

    return Started(result, worker.end)


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
# Checks that do not depend on the install mode run once (their findings carry mode "all"), started before
# the renders (they read none).
MODELESS: dict[str, Starter] = {"workflows": start_compiled_workflows}
