"""The live migration steps that read the cluster after a move, against the fake Kubernetes API
(harness.testing.fakeapi, real HTTP) and the official kubernetes client: the proof that the new driver mode is
live (defect 8 of issue 12) and the orphan lookup with each orphan's predicted fate (defect 13).

Faked: the API server and the Workflows in it. Each Workflow's `status.nodes` is the fake's simulation of a
run of that driver kind (harness.testing.fakerun); its `spec` is the real compiled workflow of the variant's
own tree (`test_data/compiled-workflows/pipeline_with_loops.yaml`, written by that branch's KFP compiler),
so the transport under test is what each apiserver really compiles.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from harness.boundary.kube import Kube
from harness.cluster.base import ClusterHandle
from harness.live.migration import MigrationRun
from harness.live.session import LiveOptions, pair_inputs
from harness.models import Scenario
from harness.plan.build import PlanOptions
from harness.plan.migration import DELETED_BY_SYNC, build_migration_plan, plural, validate_record, verdict
from harness.testing.fakeapi import FakeCluster, rfc3339
from harness.testing.fakerun import simulate
from tests.livefakes import DRIVER_IMAGES, selection_for, shared_cache

COMPILED = "test_data/compiled-workflows/pipeline_with_loops.yaml"
KIND = {"sidecar-plugin": "executor-plugin", "central-driver": "central-service"}


@pytest.fixture(scope="module")
def plans(kfp_trees, remote_bases, tmp_path_factory):
    out = tmp_path_factory.mktemp("migration-live")
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), ["sidecar-plugin", "central-driver"],
                              ["standalone", "multi-user"])
    pairs = {(p.variant.name, p.mode.name): p for p in pair_inputs(selection)}
    kept = [Scenario("single-component", "catalogue", "pipelines/single-component.yaml")]
    built = {mode: build_migration_plan(config=selection.config, old=pairs[("sidecar-plugin", mode)],
                                        new=pairs[("central-driver", mode)], scenarios=kept, rollback=True,
                                        options=PlanOptions(run_id="t", driver_images=DRIVER_IMAGES))
             for mode in ("standalone", "multi-user")}
    return selection, built


def _migration(plans, mode: str) -> MigrationRun:
    selection, built = plans
    return MigrationRun(selection, built[mode], LiveOptions(run_id="t"), {})


def _cluster(tmp_path: Path, fake: FakeCluster) -> tuple[ClusterHandle, Kube]:
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    return ClusterHandle("kfpc-test", "existing", str(kubeconfig), "fake"), Kube(str(kubeconfig), "fake")


def _run_of(fake: FakeCluster, kfp_trees: Path, compiled_by: str, run_id: str, namespace: str = "kubeflow") -> None:
    """A finished run's Workflow as the API holds it: nodes as `compiled_by`'s driver runs them, spec as its
    apiserver compiles it."""
    simulate(KIND[compiled_by])(fake, {"run_id": run_id, "namespace": namespace,
                                       "created_at": rfc3339(datetime.now(timezone.utc))})
    workflow = next(w for w in fake.objects_of("argoproj.io/v1alpha1", "workflows", namespace)
                    if w["metadata"]["labels"]["pipeline/runid"] == run_id)
    workflow["spec"] = yaml.safe_load((kfp_trees / compiled_by / COMPILED).read_text())["spec"]


def _step(plan, name: str, move: str):
    return next(s for s in plan.steps if s.condition.get("name") == name and s.condition.get("move") == move)


def test_migration_fake_api_driver_mode_fails_a_new_run_still_compiled_by_the_old_apiserver(plans, kfp_trees,
                                                                                            tmp_path):
    migration = _migration(plans, "standalone")
    upgrade = migration.record["moves"][0]
    upgrade["new_runs"] = [{"scenario": "single-component", "run_id": "run-central", "state": "SUCCEEDED"},
                           {"scenario": "artifacts", "run_id": "run-stale", "state": "SUCCEEDED"},
                           {"scenario": "artifacts", "run_id": "run-gone", "state": "SUCCEEDED"}]
    with FakeCluster() as fake:
        _run_of(fake, kfp_trees, "central-driver", "run-central")
        _run_of(fake, kfp_trees, "sidecar-plugin", "run-stale")  # the old apiserver answered: nothing moved
        handle, kube = _cluster(tmp_path, fake)
        migration._migration_step(_step(migration.plan, "driver-mode", "upgrade"), handle, kube)
        selectors = [r.query.get("labelSelector") for r in fake.requests if r.path.endswith("/workflows")]
    assert selectors == [["pipeline/runid=run-central"], ["pipeline/runid=run-stale"], ["pipeline/runid=run-gone"]]
    runs = {r["run_id"]: r for r in upgrade["driver_mode"]["runs"]}
    assert set(runs["run-central"]["templates"].values()) == {"http"} and runs["run-central"]["node_types"] == ["HTTP"]
    assert set(runs["run-stale"]["templates"].values()) == {"plugin"} and runs["run-stale"]["node_types"] == ["Plugin"]
    assert "no Workflow labelled pipeline/runid=run-gone" in runs["run-gone"]["error"]
    validate_record(migration.record)
    found = {f.subject: f for f in verdict(migration.record) if f.id == "migration.driver-mode"}
    ok = found["KFP run run-central (single-component, after upgrade)"]
    assert ok.severity.value == "info" and not ok.blocking
    stale = found["KFP run run-stale (artifacts, after upgrade)"]
    assert stale.blocking and "system-dag-driver: plugin" in stale.message and "not `http:`" in stale.message
    assert found["KFP run run-gone (artifacts, after upgrade)"].blocking


def test_migration_fake_api_driver_mode_of_the_rollback_expects_plugin_in_the_profile_namespace(plans, kfp_trees,
                                                                                                tmp_path):
    migration = _migration(plans, "multi-user")
    rollback = migration.record["moves"][1]
    rollback["new_runs"] = [{"scenario": "single-component", "run_id": "run-back", "state": "SUCCEEDED"}]
    with FakeCluster(multi_user=True) as fake:
        _run_of(fake, kfp_trees, "sidecar-plugin", "run-back", namespace="kubeflow-user-example-com")
        handle, kube = _cluster(tmp_path, fake)
        migration._migration_step(_step(migration.plan, "driver-mode", "rollback"), handle, kube)
    [run] = rollback["driver_mode"]["runs"]
    assert run["workflow"] and run["node_types"] == ["Plugin"]
    [finding] = [f for f in verdict(migration.record) if f.id == "migration.driver-mode" and "rollback" in f.subject]
    assert finding.severity.value == "info" and "`plugin:` driver templates ran as Plugin nodes" in finding.message


def test_migration_fake_api_orphan_lookup_reports_what_the_profile_sync_removed(plans, tmp_path):
    """Defect 13: after the upgrade, the old render's objects stay (kubectl apply never deletes) while the old
    sync.py's attachments are gone once metacontroller synced the Namespace."""
    migration = _migration(plans, "multi-user")
    upgrade = migration.plan.moves[0]
    kept = [o for o in upgrade.orphans if o["fate"] != DELETED_BY_SYNC]
    synced = [o for o in upgrade.orphans if o["fate"] == DELETED_BY_SYNC]
    assert kept and synced
    with FakeCluster(multi_user=True) as fake:
        for orphan in kept:  # still there, as the render applied them
            fake.add({"apiVersion": orphan["api_version"], "kind": orphan["kind"],
                      "metadata": {"name": orphan["name"], **({"namespace": orphan["namespace"]}
                                                              if orphan["namespace"] else {})}})
        handle, kube = _cluster(tmp_path, fake)
        migration._migration_step(_step(migration.plan, "orphans", "upgrade"), handle, kube)
    looked_up = {o["subject"]: o for o in migration.record["moves"][0]["orphans"]}
    assert all(looked_up[o["subject"]]["exists"] is True for o in kept)
    assert all(looked_up[o["subject"]]["exists"] is False for o in synced)
    validate_record(migration.record)
    findings = [f for f in verdict(migration.record) if f.id.startswith("migration.orphan")]
    removed = {f.subject for f in findings if f.id == "migration.orphan-removed"}
    assert removed == {o["subject"] for o in synced}
    left = {f.subject for f in findings if f.id == "migration.orphan" and f.severity.value == "warning"}
    assert left >= {o["subject"] for o in kept}


def test_the_fake_api_stores_each_kind_under_the_resource_name_apimachinery_guesses() -> None:
    """`plural` is apimachinery's UnsafeGuessKindToResource (restmapper.go): -s -> -ses, -y -> -ies, `endpoints`
    unchanged; the fake API keys objects by it, so the live tier's orphan lookups find what was added."""
    guesses = {"ConfigMap": "configmaps", "NetworkPolicy": "networkpolicies", "Ingress": "ingresses",
               "Endpoints": "endpoints", "EndpointSlice": "endpointslices", "Role": "roles", "Workflow": "workflows"}
    assert {kind: plural(kind) for kind in guesses} == guesses
    fake = FakeCluster()
    fake.add({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ml-pipeline", "namespace": "kubeflow"}})
    assert [o["metadata"]["name"] for o in fake.objects_of("v1", "endpoints", "kubeflow")] == ["ml-pipeline"]
