"""The migration plan (sidecar-plugin -> central-driver and the rollback) over the shared trees, against golden
files, and the migration verdict on hand-built before/after records.

No fakes: the plan runs nothing and the verdict is pure. Regenerate the golden files with KFPC_UPDATE_GOLDEN=1
(review the diff: a change means a migration would run different commands or apply different manifests).
"""

from __future__ import annotations

import copy
import json

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.live.session import pair_inputs
from harness.models import Scenario
from harness.plan.build import PlanOptions
from harness.plan.migration import (
    DELETED_BY_SYNC,
    IN_FLIGHT_SCENARIO,
    KEPT,
    RESYNC_ANNOTATION,
    build_migration_plan,
    new_record,
    run_record,
    validate_record,
    verdict,
)
from tests.golden_files import check_golden
from tests.livefakes import DRIVER_IMAGES, selection_for, shared_cache

SCENARIOS = [Scenario(name, "catalogue", f"pipelines/{name}.yaml") for name in ("single-component", "artifacts")]


@pytest.fixture(scope="module")
def inputs(kfp_trees, remote_bases, tmp_path_factory):
    out = tmp_path_factory.mktemp("migration-plan")
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), ["sidecar-plugin", "central-driver"],
                              ["standalone", "multi-user"])
    pairs = {(p.variant.name, p.mode.name): p for p in pair_inputs(selection)}
    return selection, pairs


@pytest.fixture(scope="module")
def plans(inputs):
    """mode -> the default migration plan, built once for the tests that only read it (plans are never changed
    by a test; the golden test builds its own second copy to prove the build deterministic)."""
    return {mode: _plan(inputs, mode) for mode in ("standalone", "multi-user")}


def _plan(inputs, mode: str, *, rollback: bool = True, run_id: str = "golden", scenarios=SCENARIOS, **options):
    selection, pairs = inputs
    return build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", mode)],
                                new=pairs[("central-driver", mode)], scenarios=scenarios,
                                options=PlanOptions(run_id=run_id, **{"driver_images": DRIVER_IMAGES, **options}),
                                rollback=rollback)




@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
def test_migration_plan_sidecar_to_central_and_back_matches_golden(inputs, plans, mode, kfp_trees):
    plan = plans[mode]
    text = plan.to_json()
    assert _plan(inputs, mode).to_json() == text  # deterministic: a second build writes the same plan
    assert "/tmp/" not in text and str(kfp_trees) not in text
    check_golden(f"migration-sidecar-plugin-to-central-driver.{mode}.json", text)
    check_golden(f"migration-sidecar-plugin-to-central-driver.{mode}.txt", plan.to_text())


def test_migration_plan_orders_record_move_then_verify(plans):
    plan = plans["standalone"]
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


def test_migration_plan_gives_each_variant_its_own_local_builds_by_default(plans):
    """Defect 8: both variants push to one registry; by default each gets its own tag, so the upgrade really
    swaps the apiserver (which compiles every run) and the driver."""
    plan = plans["standalone"]
    install_pushes = {s.argv[-1] for s in plan.install.pairs[0].steps if s.argv[:2] == ("docker", "push")}
    upgrade_pushes = {s.argv[-1] for s in plan.steps if s.phase == "upgrade:images" and s.argv[:2] == ("docker", "push")}
    assert "localhost:5001/apiserver:sidecar-plugin" in install_pushes
    assert "localhost:5001/apiserver:central-driver" in upgrade_pushes
    assert not install_pushes & upgrade_pushes
    # the install's preflight checks the new variant's builds exist too, before any cluster is created
    preflight = plan.install.preflight[0]
    assert "kind-registry:5000/apiserver:central-driver" in preflight.argv
    assert "kind-registry:5000/apiserver:sidecar-plugin" in preflight.argv


def test_migration_plan_refuses_a_move_between_two_identical_builds(inputs):
    """Defect 8: one tag for both variants serves both the same build: the move would change nothing."""
    with pytest.raises(HarnessError, match="would both run the same local build.*apiserver:ci") as caught:
        _plan(inputs, "standalone", local_tag="ci")
    assert "--local-tag '{variant}'" in caught.value.line()
    with pytest.raises(HarnessError, match="driver:same"):
        _plan(inputs, "standalone", local_tag="{variant}",
              driver_images={"sidecar-plugin": "kind-registry:5000/driver:same",
                             "central-driver": "kind-registry:5000/driver:same"})


def test_migrate_cli_plan_takes_local_tag_like_run(kfp_trees, remote_bases, shared_renderer, capsys):
    """Defect 8: `migrate` has the same per-variant image option as `run`."""
    code = main(["migrate", "--plan", "--plan-format", "json", "--sources", str(kfp_trees), "--remote-bases",
                 str(remote_bases), "--cache-dir", str(shared_renderer.cache_dir), "--mode", "standalone",
                 "--driver-image", "sidecar-plugin=kind-registry:5000/driver:sp",
                 "--driver-image", "central-driver=kind-registry:5000/driver:cd", "--local-tag", "build-{variant}"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    upgrade = [s["argv"][-1] for s in plan["steps"] if s["phase"] == "upgrade:images" and s["argv"][1] == "push"]
    assert "localhost:5001/apiserver:build-central-driver" in upgrade
    assert "localhost:5001/driver:cd" in upgrade


def test_migration_plan_proves_the_target_driver_mode_after_each_move(plans):
    """Defect 8: after each move a step reads the new runs' Workflows and expects the target's transport."""
    plan = plans["standalone"]
    checks = [s for s in plan.steps if s.condition.get("name") == "driver-mode"]
    assert [(s.condition["move"], s.condition["template"], s.condition["node_type"]) for s in checks] == [
        ("upgrade", "http", "HTTP"), ("rollback", "plugin", "Plugin")]
    names = [s.condition.get("name") for s in plan.steps]
    for check in checks:  # right after the new runs of the same move
        index = plan.steps.index(check)
        assert names[index - 1] == "run-scenarios" and plan.steps[index - 1].condition["move"] == check.condition["move"]
    assert [m.transport for m in plan.moves] == [{"template": "http", "node_type": "HTTP"},
                                                 {"template": "plugin", "node_type": "Plugin"}]
    record = new_record(plan)
    assert record["moves"][0]["driver_mode"] == {"expected": {"template": "http", "node_type": "HTTP"}, "runs": []}


def test_multi_user_migration_resyncs_the_profile_namespace_before_waiting_for_the_sync(inputs, plans):
    """Defect 9: both renders carry the same DecoratorController (resync every 3600 s), so re-applying it
    triggers nothing: the move annotates the parent Namespace once the new profile controller is rolled out."""
    selection, pairs = inputs
    controllers = []
    for variant in ("sidecar-plugin", "central-driver"):
        pair = pairs[(variant, "multi-user")]
        controllers += [o for o in pair.cluster_scoped + pair.overlay if o.get("kind") == "DecoratorController"]
    assert len(controllers) == 2 and controllers[0]["spec"] == controllers[1]["spec"]
    assert controllers[0]["spec"]["resyncPeriodSeconds"] == 3600
    assert controllers[0]["spec"]["resources"][0]["resource"] == "namespaces"
    plan = plans["multi-user"]
    values = []
    for move in ("upgrade", "rollback"):
        steps = [s for s in plan.steps if s.phase.startswith(f"{move}:")]
        annotate = [i for i, s in enumerate(steps) if "annotate" in s.argv]
        assert len(annotate) == 1, move
        step = steps[annotate[0]]
        assert step.argv[5:8] == ("annotate", "namespace", "kubeflow-user-example-com") and step.argv[-1] == "--overwrite"
        key, _, value = step.argv[8].partition("=")
        assert key == RESYNC_ANNOTATION and value
        values.append(value)
        rollout = max(i for i, s in enumerate(steps) if "deployment/kubeflow-pipelines-profile-controller" in s.argv)
        waits = [i for i, s in enumerate(steps) if s.condition.get("name") == "object-exists"
                 and s.phase == f"{move}:profile-sync"]
        assert waits and rollout < annotate[0] < min(waits), move
    assert len(set(values)) == 2  # each move changes the annotation, so each is an update metacontroller sees
    assert not any("annotate" in s.argv for s in plans["standalone"].steps)


def test_multi_user_migration_applies_the_new_trees_test_profile_files(plans):
    """Defect 13: the test scaffolding of test_data/kubernetes belongs to the variant under test. central-driver's
    kubeflow-edit ClusterRole lets default-editor (the agent's identity) use workflowtasksets, which its HTTP
    templates need; a move that kept sidecar-plugin's would fail the new runs for a reason the harness made."""
    plan = plans["multi-user"]
    for move, variant in (("upgrade", "central-driver"), ("rollback", "sidecar-plugin")):
        applied = [s.manifest for s in plan.steps if s.phase == f"{move}:profile" and s.action == "apply"]
        assert f"rendered/{variant}.multi-user/test_data/kubernetes/seaweedfs/kubeflow-edit-clusterrole.yaml" in applied
        phases = [s.phase for s in plan.steps if s.phase.startswith(f"{move}:")]
        assert phases.index(f"{move}:readiness") < phases.index(f"{move}:profile") < phases.index(f"{move}:profile-sync")
    role = plan.files["rendered/central-driver.multi-user/test_data/kubernetes/seaweedfs/kubeflow-edit-clusterrole.yaml"]
    assert "workflowtasksets" in role


def test_migration_orphans_say_which_the_profile_sync_deletes(plans):
    """Defect 13: kubectl apply never deletes what the old render applied, but metacontroller deletes the old
    sync.py's attachments at the next sync, when the new DecoratorController still lists their kinds."""
    upgrade, rollback = plans["multi-user"].moves
    fates = {o["subject"]: o["fate"] for o in upgrade.orphans + rollback.orphans}
    assert fates["ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin"] == DELETED_BY_SYNC
    assert fates["Role kubeflow-user-example-com/configmap-reader"] == DELETED_BY_SYNC
    assert fates["ServiceAccount kubeflow/ml-pipeline-driver-agent-executor-plugin"] == KEPT
    assert fates["Deployment kubeflow/ml-pipeline-driver"] == KEPT
    assert all(o["fate"] == KEPT for o in plans["standalone"].moves[0].orphans)


def test_static_orphans_of_the_upgrade_name_the_leftover_objects(plans):
    plan = plans["multi-user"]
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
                             new=pairs[("central-driver", "multi-user")], scenarios=SCENARIOS,
                             options=PlanOptions(run_id="x", driver_images=DRIVER_IMAGES))
    with pytest.raises(HarnessError, match="not supported"):
        build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", "standalone")],
                             new=pairs[("sidecar-plugin", "standalone")], scenarios=SCENARIOS,
                             options=PlanOptions(run_id="x", driver_images=DRIVER_IMAGES))


# --- verdict on hand-built records -----------------------------------------------------------------------
RUN = {"run_id": "r1", "state": "SUCCEEDED", "finished_at": "2026-05-01T10:00:00Z",
       "run_details": {"task_details": [
           {"task_id": "n1", "display_name": "say-hello", "state": "SUCCEEDED",
            "outputs": {"Output": {"artifact_ids": ["7"]}}},
           {"task_id": "n0", "display_name": "root", "state": "SUCCEEDED"}]}}
NODES = {"root/say-hello": {"parameters": {"Output": "Hello, conformance!"}}}


DRIVER_RUNS = [{"run_id": "r2", "scenario": "single-component", "workflow": "hello-x",
                "templates": {"system-container-driver": "http", "system-dag-driver": "http"}, "node_types": ["HTTP"]}]


def _record(*, after=None, in_flight=None, new_runs=None, orphans=None, status="complete", driver_runs=None):
    before = {"r1": run_record(RUN, NODES, scenario="single-component")}
    move = {"name": "upgrade", "from": "sidecar-plugin", "to": "central-driver", "before": before,
            "after": copy.deepcopy(before) if after is None else after,
            "in_flight": in_flight if in_flight is not None else
            {"run_id": "r9", "scenario": IN_FLIGHT_SCENARIO, "state_before": "RUNNING", "state": "SUCCEEDED"},
            "new_runs": new_runs if new_runs is not None else
            [{"scenario": "single-component", "run_id": "r2", "state": "SUCCEEDED", "expected_state": "SUCCEEDED"}],
            "orphans": orphans or [],
            "driver_mode": {"expected": {"template": "http", "node_type": "HTTP"},
                            "runs": DRIVER_RUNS if driver_runs is None else driver_runs}}
    record = {"schema_version": "1.1", "run_id": "t", "mode": "standalone",
              "variants": ["sidecar-plugin", "central-driver"], "rollback": False, "status": status, "reason": "",
              "runs": [], "moves": [move]}
    validate_record(record)
    return record


def _by_id(findings):
    return {(f.id, f.severity.value): f for f in findings}


def test_verdict_unchanged_runs_pass():
    found = verdict(_record())
    assert sorted((f.id, f.severity.value) for f in found) == [
        ("migration.driver-mode", "info"), ("migration.in-flight-run", "info"), ("migration.new-run", "info"),
        ("migration.old-run-preserved", "info")]
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
    record = _record(after={}, in_flight={}, new_runs=[], status="partial", driver_runs=[])
    record["reason"] = "interrupted"
    found = verdict(record)
    assert ("migration.incomplete", "error") in _by_id(found)
    skipped = [f for f in found if f.evidence.get("status") == "skipped"]
    assert {f.id for f in skipped} == {"migration.old-run-preserved", "migration.in-flight-run", "migration.new-run",
                                       "migration.driver-mode"}
    assert all(f.message.startswith("not verified") for f in skipped)


def test_new_record_matches_the_schema(plans):
    record = new_record(plans["standalone"])
    validate_record(record)
    assert [m["name"] for m in record["moves"]] == ["upgrade", "rollback"]
    broken = json.loads(json.dumps(record))
    broken["moves"][0]["name"] = "sideways"
    with pytest.raises(HarnessError, match="moves/0/name"):
        validate_record(broken)


def test_verdict_new_run_on_the_old_transport_fails_the_migration():
    """Defect 8: a new run still compiled to plugin templates after the upgrade to central-driver is an error
    naming what it found, and so is a new run whose Workflow could not be read (not proven is not passed)."""
    old_mode = [{"run_id": "r2", "scenario": "single-component", "workflow": "hello-x",
                 "templates": {"system-container-driver": "plugin", "system-dag-driver": "plugin"},
                 "node_types": ["Plugin"]}]
    finding = _by_id(verdict(_record(driver_runs=old_mode)))[("migration.driver-mode", "error")]
    assert "system-container-driver: plugin" in finding.message and "not `http:`" in finding.message
    mixed = [{**DRIVER_RUNS[0], "node_types": ["Plugin"]}]
    assert "ran as Plugin, not HTTP" in _by_id(verdict(_record(driver_runs=mixed)))[("migration.driver-mode", "error")].message
    gone = [{"run_id": "r2", "scenario": "single-component", "error": "no Workflow labelled pipeline/runid=r2"}]
    assert "could not be read" in _by_id(verdict(_record(driver_runs=gone)))[("migration.driver-mode", "error")].message
    unread = _by_id(verdict(_record(driver_runs=[])))[("migration.driver-mode", "error")]
    assert "not proven" in unread.message


def test_verdict_profile_orphans_removed_by_the_sync_pass_and_left_ones_warn():
    """Defect 13: a profile attachment the sync deletes is info when gone and a warning naming why when not."""
    subject = "ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin"
    gone = [{"subject": subject, "kind": "ServiceAccount", "exists": False, "origin": "profile-controller",
             "fate": DELETED_BY_SYNC}]
    removed = _by_id(verdict(_record(orphans=gone)))[("migration.orphan-removed", "info")]
    assert removed.subject == subject
    left = [{**gone[0], "exists": True}]
    warning = _by_id(verdict(_record(orphans=left)))[("migration.orphan", "warning")]
    assert "profile sync did not run" in warning.message
