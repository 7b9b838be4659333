"""Live migration: install the baseline, keep runs, upgrade in place to each movable variant, roll back (marker
`live`). Moves come from the selection and the variants' driver kinds, not from names.

The migration changes its cluster, so it gets a cluster of its own (never a shared `kfpc_cluster`). Without a
Docker engine or an existing cluster the test SKIPS with the reason, reported as skipped, never as passed.
Its plan is tested without a cluster in tests/test_migration_plan.py (golden files).
"""

from __future__ import annotations

import dataclasses

import pytest

from harness.errors import HarnessError
from pytest_kfp_conformance.outcomes import skip_if_not_verified

pytestmark = [pytest.mark.live, pytest.mark.kfpc_live("migration")]


def test_live_migration_and_rollback(pytestconfig, migration_move):
    from pytest_kfp_conformance.live import RUN_ID_KEY, provider_unavailable

    reason = provider_unavailable(pytestconfig)
    if reason:
        pytest.skip(reason)
    old, new, mode = migration_move
    from harness.cli.common import parse_driver_images
    from harness.live.migration import MigrationRun, compiled_scenarios
    from harness.live.session import LiveOptions, existing_handle, pair_inputs
    from harness.models import Scenario
    from harness.plan.migration import DEFAULT_SCENARIOS, build_migration_plan
    from harness.selection import resolve_selection
    from pytest_kfp_conformance.plugin import selection_request

    variants = [old, new]
    request = dataclasses.replace(selection_request(pytestconfig), variants=tuple(variants), modes=(mode,))
    run_id = pytestconfig.stash[RUN_ID_KEY] + "m"
    try:
        selection = resolve_selection(request)
        options = LiveOptions(run_id=run_id, provider=pytestconfig.getoption("--kfpc-provider"),
                              keep=pytestconfig.getoption("--kfpc-keep-clusters"),
                              kubeconfig=pytestconfig.getoption("--kfpc-kubeconfig"),
                              context=pytestconfig.getoption("--kfpc-context"),
                              driver_images=parse_driver_images(pytestconfig.getoption("--kfpc-driver-image"), variants))
        _provider, existing = existing_handle(options)
        pairs = {p.variant.name: p for p in pair_inputs(selection)}
        kept = [Scenario(n, "catalogue", f"pipelines/{n}.yaml") for n in DEFAULT_SCENARIOS]
        plan = build_migration_plan(config=selection.config, old=pairs[old], new=pairs[new],
                                    scenarios=kept, options=options.plan_options(existing), rollback=True)
        selection = selection.with_out_dir(selection.out_dir / run_id / f"migration-{mode}")
        migration = MigrationRun(selection, plan, options, compiled_scenarios(plan, selection.out_dir.resolve()))
        _record, findings = migration.run()
    except HarnessError as exc:
        pytest.fail(exc.line(), pytrace=False)
    blocking = [f for f in findings if f.blocking]
    shown = "\n".join(f"- {f.id} {f.subject}: {f.message}" for f in blocking)
    assert not blocking, f"{len(blocking)} blocking migration finding(s) in {selection.out_dir}/migration.json:\n{shown}"
    skip_if_not_verified(findings)
