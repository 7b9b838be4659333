"""Issue 14 item 4: a migration's install and in-place moves on a REAL kube-apiserver (local control plane,
binaries from `scripts/controlplane-build.sh`; missing binaries FAIL): install sidecar-plugin, apply
central-driver in place with the migration plan's own apply steps, roll back, and compare what each move
really leaves behind with the static orphan prediction (harness.static.orphans). Simulated: no kubelet (kwok),
so the plan's run steps (kept runs, in-flight run, new runs, driver mode) are reported as not verified.
"""

from __future__ import annotations

import json
import os

import pytest

from harness.boundary.kube import Kube
from harness.boundary.proc import Runner
from harness.cluster.base import ClusterHandle
from harness.cluster.controlplane import ControlPlaneProvider, find_binaries
from harness.errors import MissingBinaryError
from harness.live.controlplane_migration import migrate_on_controlplane
from harness.live.install import Installer
from harness.live.session import pair_inputs, write_plan
from harness.models import Scenario
from harness.plan.build import NO_KUBELET, PlanOptions
from harness.plan.migration import KEPT, MigrationPlan, build_migration_plan
from tests.livefakes import selection_for, shared_cache
from tests.test_controlplane_install import POLL_INTERVAL, planned_cluster

# Placeholder driver images are only names to the apiserver (no container runs under kwok); distinct per
# variant, as the plan requires for a move that changes something.
DRIVER_IMAGES = {v: f"kind-registry:5000/driver:{v}" for v in ("sidecar-plugin", "central-driver")}


def test_controlplane_real_apiserver_migration_orphans_equal_static_prediction_standalone(
        tmp_path, kfp_trees, remote_bases):
    try:
        binaries = find_binaries(dict(os.environ))
    except MissingBinaryError as exc:
        pytest.fail(exc.line())
    assert {"kube-controller-manager", "kube-scheduler", "kwok"} <= set(binaries), \
        "control-plane binaries missing (run `bash scripts/controlplane-build.sh`)"
    provider = ControlPlaneProvider(env=dict(os.environ, KFPC_CONTROLPLANE_STATE=str(tmp_path / "cp-state")))
    out = tmp_path / "out"
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), ["sidecar-plugin", "central-driver"],
                              ["standalone"])

    def migration_plan(handle: ClusterHandle) -> MigrationPlan:
        pairs = {p.variant.name: p for p in pair_inputs(selection)}
        options = PlanOptions(run_id="cpm", provider="existing", existing=handle, driver_images=DRIVER_IMAGES)
        return build_migration_plan(config=selection.config, old=pairs["sidecar-plugin"],
                                    new=pairs["central-driver"], options=options, rollback=True,
                                    scenarios=[Scenario("single-component", "catalogue",
                                                        "pipelines/single-component.yaml")])

    with planned_cluster(provider, "kfpc-cp-migration", migration_plan) as (plane, plan):
        write_plan(plan.install, out)
        for relative, text in plan.files.items():
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            (out / relative).write_text(text)
        installer = Installer(Runner(), out, progress=print, poll_interval=POLL_INTERVAL)
        report = migrate_on_controlplane(plan, installer, remote_bases, Kube.for_cluster(plane.handle()))
        (tmp_path / "migration-report.json").write_text(json.dumps(report.to_dict(), indent=2))
    assert [m.name for m in report.moves] == ["upgrade", "rollback"]
    for move, planned in zip(report.moves, plan.moves):
        assert any("overlay" in a for a in move.walk.applied), f"{move.name}: the overlay was not applied"
        # every predicted orphan is really there, and nothing else of the old render is left behind
        assert [o["subject"] for o in move.orphans if o["exists"] is not True] == []
        assert move.unpredicted == [] and move.predicted_gone == [], (move.name, move.unpredicted,
                                                                       move.predicted_gone)
        assert sorted(move.left_behind) == sorted(o["subject"] for o in planned.orphans if o["fate"] == KEPT)
    assert report.moves[0].left_behind, "sidecar-plugin -> central-driver leaves nothing: the check proves nothing"
    assert report.not_verified and all(NO_KUBELET in line for line in report.not_verified)
    assert not (tmp_path / "cp-state" / "kfpc-cp-migration").exists()
