"""The migration plan (sidecar-plugin -> central-driver and the rollback) over the shared trees, against golden
files, and the migration verdict on hand-built before/after records.

No fakes: the plan runs nothing and the verdict is pure. Regenerate the golden files with KFPC_UPDATE_GOLDEN=1
(review the diff: a change means a migration would run different commands or apply different manifests).
"""

from __future__ import annotations

import copy
import json

import pytest

from harness.errors import HarnessError
from harness.live import pair_inputs
from harness.migration import (
    IN_FLIGHT_SCENARIO,
    build_migration_plan,
    new_record,
    run_record,
    validate_record,
    verdict,
)
from harness.models import Scenario
from harness.plan import PlanOptions
from tests.golden_files import check_golden
from tests.livefakes import DRIVER_IMAGES, selection_for, shared_cache

KEPT = [Scenario(name, "catalogue", f"pipelines/{name}.yaml") for name in ("single-component", "artifacts")]


@pytest.fixture(scope="module")
def inputs(kfp_trees, remote_bases, tmp_path_factory):
    out = tmp_path_factory.mktemp("migration-plan")
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), ["sidecar-plugin", "central-driver"],
                              ["standalone", "multi-user"])
    pairs = {(p.variant.name, p.mode.name): p for p in pair_inputs(selection)}
    return selection, pairs


def _plan(inputs, mode: str, *, rollback: bool = True, run_id: str = "golden", scenarios=KEPT):
    selection, pairs = inputs
    return build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", mode)],
                                new=pairs[("central-driver", mode)], scenarios=scenarios,
                                options=PlanOptions(run_id=run_id, driver_images=DRIVER_IMAGES), rollback=rollback)




@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
def test_migration_plan_sidecar_to_central_and_back_matches_golden(inputs, mode, kfp_trees):
    plan = _plan(inputs, mode)
    text = plan.to_json()
    assert _plan(inputs, mode).to_json() == text  # deterministic
    assert "/tmp/" not in text and str(kfp_trees) not in text
    check_golden(f"migration-sidecar-plugin-to-central-driver.{mode}.json", text)
    check_golden(f"migration-sidecar-plugin-to-central-driver.{mode}.txt", plan.to_text())


def test_migration_plan_orders_record_move_then_verify(inputs):
    plan = _plan(inputs, "standalone")
    phases = [s.phase for s in plan.steps]
    names = [s.condition.get("name") for s in plan.steps]
    # before the move: runs kept, in-flight started, snapshot; the new render; only then verification
    upgrade = [p for p in phases if p.startswith("upgrade:")]
    assert phases[0] == "before" and upgrade[0] == "upgrade:in-flight" and upgrade[1] == "upgrade:snapshot"
    order = [p.split(":")[1] for p in upgrade]
    assert order.index("cluster-scoped") < order.index("overlay") < order.index("readiness") < order.index("verify")
    assert names.count("run-scenarios") == 3 and names.count("orphans") == 2 and phases[-1] == "cleanup"
    # the applies are the install's own server-side applies, and nothing is pruned
    applies = [s for s in plan.steps if s.action == "apply"]
    install_apply = next(s for s in plan.install.pairs[0].steps if s.action == "apply")
    assert all(s.argv[5:9] == install_apply.argv[5:9] for s in applies)
    assert not any("--prune" in a for s in applies for a in s.argv)
    cluster = plan.install.pairs[0].cluster
    assert all(s.argv[:5] == tuple(cluster.kubectl()) for s in plan.steps if s.argv and s.argv[0] == "kubectl")
    # the upgrade applies central-driver's render, the rollback sidecar-plugin's (the install's own file)
    manifests = [s.manifest for s in applies]
    assert manifests == ["rendered/central-driver.standalone/cluster-scoped.yaml",
                         "rendered/central-driver.standalone/overlay.yaml",
                         "rendered/sidecar-plugin.standalone/cluster-scoped.yaml",
                         "rendered/sidecar-plugin.standalone/overlay.yaml"]
    assert set(plan.files) == {"rendered/central-driver.standalone/cluster-scoped.yaml",
                               "rendered/central-driver.standalone/overlay.yaml"}
    # the new driver image is pushed before the upgrade applies it
    pushes = [s.argv for s in plan.steps if s.argv[:2] == ("docker", "push")]
    assert ("docker", "push", "localhost:5001/driver:latest") in pushes


def test_static_orphans_of_the_upgrade_name_the_leftover_objects(inputs):
    plan = _plan(inputs, "multi-user")
    upgrade, rollback = plan.moves
    subjects = {o["subject"]: o for o in upgrade.orphans}
    for subject in ("ConfigMap kubeflow/ml-pipeline-driver-agent",
                    "ServiceAccount kubeflow/ml-pipeline-driver-agent-executor-plugin",
                    "Secret kubeflow/ml-pipeline-driver-agent-executor-plugin.service-account-token",
                    "RoleBinding kubeflow/ml-pipeline-driver-agent-executor-plugin-binding",
                    "ClusterRole ml-pipeline-driver-agent-executor-plugin-cluster-role"):
        assert subjects[subject]["origin"] == "render", subject
    for subject in ("ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin",
                    "RoleBinding kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin-binding",
                    "Secret kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin.service-account-token"):
        assert subjects[subject]["origin"] == "profile-controller", subject
    assert subjects["ConfigMap kubeflow/ml-pipeline-driver-agent"]["api_version"] == "v1"
    assert subjects["ClusterRole ml-pipeline-driver-agent-executor-plugin-cluster-role"]["namespace"] == ""
    assert {"Deployment kubeflow/ml-pipeline-driver", "Service kubeflow/ml-pipeline-driver"} <= \
        {o["subject"] for o in rollback.orphans}


def test_migration_plan_rejects_bad_input(inputs):
    selection, pairs = inputs
    with pytest.raises(HarnessError, match="in-flight run"):
        _plan(inputs, "standalone", scenarios=[Scenario(IN_FLIGHT_SCENARIO, "catalogue", "x.yaml")])
    with pytest.raises(HarnessError, match="at least one scenario"):
        _plan(inputs, "standalone", scenarios=[])
    with pytest.raises(HarnessError, match="between modes"):
        build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", "standalone")],
                             new=pairs[("central-driver", "multi-user")], scenarios=KEPT,
                             options=PlanOptions(run_id="x", driver_images=DRIVER_IMAGES))
    with pytest.raises(HarnessError, match="not supported"):
        build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", "standalone")],
                             new=pairs[("sidecar-plugin", "standalone")], scenarios=KEPT,
                             options=PlanOptions(run_id="x", driver_images=DRIVER_IMAGES))


# --- verdict on hand-built records -----------------------------------------------------------------------
RUN = {"run_id": "r1", "state": "SUCCEEDED", "finished_at": "2026-05-01T10:00:00Z",
       "run_details": {"task_details": [
           {"task_id": "n1", "display_name": "say-hello", "state": "SUCCEEDED",
            "outputs": {"Output": {"artifact_ids": ["7"]}}},
           {"task_id": "n0", "display_name": "root", "state": "SUCCEEDED"}]}}
NODES = {"root/say-hello": {"parameters": {"Output": "Hello, conformance!"}}}


def _record(*, after=None, in_flight=None, new_runs=None, orphans=None, status="complete"):
    before = {"r1": run_record(RUN, NODES, scenario="single-component")}
    move = {"name": "upgrade", "from": "sidecar-plugin", "to": "central-driver", "before": before,
            "after": copy.deepcopy(before) if after is None else after,
            "in_flight": in_flight if in_flight is not None else
            {"run_id": "r9", "scenario": IN_FLIGHT_SCENARIO, "state_before": "RUNNING", "state": "SUCCEEDED"},
            "new_runs": new_runs if new_runs is not None else
            [{"scenario": "single-component", "run_id": "r2", "state": "SUCCEEDED", "expected_state": "SUCCEEDED"}],
            "orphans": orphans or []}
    record = {"schema_version": "1.0", "run_id": "t", "mode": "standalone",
              "variants": ["sidecar-plugin", "central-driver"], "rollback": False, "status": status, "reason": "",
              "runs": [], "moves": [move]}
    validate_record(record)
    return record


def _by_id(findings):
    return {(f.id, f.severity.value): f for f in findings}


def test_verdict_unchanged_runs_pass():
    found = verdict(_record())
    assert sorted((f.id, f.severity.value) for f in found) == [
        ("migration.in-flight-run", "info"), ("migration.new-run", "info"), ("migration.old-run-preserved", "info")]
    assert not any(f.blocking for f in found)


def test_verdict_changed_output_is_an_error_naming_the_change():
    after = {"r1": run_record(RUN, {"root/say-hello": {"parameters": {"Output": "Hello, other!"}}},
                              scenario="single-component")}
    finding = _by_id(verdict(_record(after=after)))[("migration.old-run-changed", "error")]
    assert finding.subject == "KFP run r1 (single-component)"
    assert any("Hello, other!" in change for change in finding.evidence["changes"])


def test_verdict_changed_task_state_is_an_error():
    changed = copy.deepcopy(RUN)
    changed["run_details"]["task_details"][0]["state"] = "FAILED"
    after = {"r1": run_record(changed, NODES, scenario="single-component")}
    assert ("migration.old-run-changed", "error") in _by_id(verdict(_record(after=after)))


def test_verdict_missing_or_unreadable_old_run_is_an_error():
    missing = _by_id(verdict(_record(after={"other": {"state": "SUCCEEDED"}})))
    assert missing[("migration.old-run-unreadable", "error")].message.endswith("missing from the re-read")
    unreadable = _by_id(verdict(_record(after={"r1": {"read_error": "KFP API answered 404 for run r1"}})))
    assert "404" in unreadable[("migration.old-run-unreadable", "error")].message


def test_verdict_in_flight_failed_with_message_is_a_warning_with_the_message():
    flight = {"run_id": "r9", "scenario": IN_FLIGHT_SCENARIO, "state_before": "RUNNING", "state": "FAILED",
              "message": "driver plugin not found: ml-pipeline-driver-agent"}
    finding = _by_id(verdict(_record(in_flight=flight)))[("migration.in-flight-run", "warning")]
    assert finding.message.endswith("ended FAILED: driver plugin not found: ml-pipeline-driver-agent")


def test_verdict_in_flight_failed_without_message_or_still_running_is_an_error():
    silent = {"run_id": "r9", "state": "FAILED", "message": ""}
    assert ("migration.in-flight-run", "error") in _by_id(verdict(_record(in_flight=silent)))
    stuck = {"run_id": "r9", "state": "RUNNING", "waited_seconds": 1500, "timed_out": True}
    finding = _by_id(verdict(_record(in_flight=stuck)))[("migration.in-flight-run", "error")]
    assert "still RUNNING after 1500s" in finding.message


def test_verdict_new_run_failing_is_an_error():
    runs = [{"scenario": "artifacts", "run_id": "r3", "state": "FAILED", "expected_state": "SUCCEEDED"}]
    finding = _by_id(verdict(_record(new_runs=runs)))[("migration.new-run-failed", "error")]
    assert finding.subject == "KFP run r3 (artifacts, after upgrade)"


def test_verdict_names_each_orphan_left_in_the_cluster():
    orphans = [{"subject": "ConfigMap kubeflow/ml-pipeline-driver-agent", "kind": "ConfigMap", "exists": True,
                "origin": "render", "cleanup": "kubectl delete configmap ml-pipeline-driver-agent -n kubeflow"},
               {"subject": "ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin",
                "kind": "ServiceAccount", "exists": True, "origin": "profile-controller"},
               {"subject": "Role kubeflow/gone", "kind": "Role", "exists": False},
               {"subject": "Role kubeflow/unknown", "kind": "Role", "exists": None, "error": "403 forbidden"}]
    found = verdict(_record(orphans=orphans))
    left = [f for f in found if f.id == "migration.orphan" and f.severity.value == "warning"]
    assert [f.subject for f in left] == [o["subject"] for o in orphans[:2]]
    assert left[0].evidence["cleanup"].startswith("kubectl delete configmap")
    assert [f.subject for f in found if f.id == "migration.orphan-absent"] == ["Role kubeflow/gone"]
    unknown = next(f for f in found if f.subject == "Role kubeflow/unknown")
    assert unknown.message == "not verified: 403 forbidden" and unknown.evidence["status"] == "skipped"


def test_verdict_never_passes_what_was_not_checked():
    record = _record(after={}, in_flight={}, new_runs=[], status="partial")
    record["reason"] = "interrupted"
    found = verdict(record)
    assert ("migration.incomplete", "error") in _by_id(found)
    skipped = [f for f in found if f.evidence.get("status") == "skipped"]
    assert {f.id for f in skipped} == {"migration.old-run-preserved", "migration.in-flight-run", "migration.new-run"}
    assert all(f.message.startswith("not verified") for f in skipped)


def test_new_record_matches_the_schema(inputs):
    record = new_record(_plan(inputs, "standalone"))
    validate_record(record)
    assert [m["name"] for m in record["moves"]] == ["upgrade", "rollback"]
    broken = json.loads(json.dumps(record))
    broken["moves"][0]["name"] = "sideways"
    with pytest.raises(HarnessError, match="moves/0/name"):
        validate_record(broken)
