"""harness.rbac.live against a fake Kubernetes API (SubjectAccessReview decided from a fake rule table that
mirrors the sidecar-plugin Role `ml-pipeline-executor-plugin-role`, kfp-variants.md §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boundary.kube import Kube
from harness.config import load_config
from harness.evidence.bundle import read_bundle, write_bundle
from harness.models import Identity
from harness.rbac.live import DEFAULT_ACCESS, Check, checks_from_identities, profile_objects, snapshot
from harness.testing.fakeapi import FakeCluster

CONFIG = load_config()
PLUGIN = "kubeflow/ml-pipeline-driver-agent-executor-plugin"


@pytest.fixture()
def fake():
    with FakeCluster() as cluster:
        for verb in ("get", "list", "watch"):
            cluster.allow(PLUGIN, verb, "pods", namespace="kubeflow")
            cluster.allow(PLUGIN, verb, "configmaps", namespace="kubeflow", name="kfp-launcher")
        for verb in ("create", "get", "list", "delete"):
            cluster.allow(PLUGIN, verb, "persistentvolumeclaims", namespace="kubeflow")
        cluster.allow(PLUGIN, "get", "secrets", namespace="kubeflow", name="mlpipeline-minio-artifact")
        yield cluster


def test_checks_from_config_identities_bind_profile_namespace() -> None:
    identities = CONFIG.variant("sidecar-plugin").driver.identities_for("multi-user")
    checks = checks_from_identities(identities, ["kubeflow-user-example-com"])
    assert {c.identity for c in checks} == {"kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin"}
    assert len(checks) == len(DEFAULT_ACCESS)
    assert Check("kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin", "patch", "workflowtasksets",
                 "argoproj.io", "status", "kubeflow-user-example-com", "") in checks
    assert checks == sorted(checks)


def test_snapshot_fake_api_sidecar_role_allows_named_objects_only(fake: FakeCluster, tmp_path: Path) -> None:
    kube = Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")
    checks = checks_from_identities([Identity("kubeflow", "ml-pipeline-driver-agent-executor-plugin")], ["kubeflow"])
    result = snapshot(kube, checks)
    decided = {(r["verb"], r["resource"], r["subresource"], r["name"]): r["allowed"] for r in result}
    assert decided[("get", "configmaps", "", "kfp-launcher")] is True
    assert decided[("get", "configmaps", "", "some-other-configmap")] is False
    assert decided[("get", "secrets", "", "mlpipeline-minio-artifact")] is True
    assert decided[("get", "secrets", "", "some-other-secret")] is False
    assert decided[("list", "secrets", "", "")] is False
    assert decided[("get", "pods", "log", "")] is False
    assert decided[("delete", "persistentvolumeclaims", "", "")] is True
    assert len([r for r in fake.requests if r.path.endswith("subjectaccessreviews")]) == len(result)
    assert snapshot(kube, list(reversed(checks))) == result  # deterministic order
    # the entries are bundle.json `rbac` entries: the schema accepts them
    data = {"status": "complete", "scenario": {"name": "rbac", "origin": "catalogue"}, "variant": "sidecar-plugin",
            "mode": "standalone", "source": {"commit": "abc"}, "run": {"id": "-", "state": "NOT_RUN"},
            "tasks": [], "driver_nodes": [], "pods": [], "rbac": result,
            "driver_logs": {"location": "agent-pod:driver-plugin", "files": [], "found": False}}
    write_bundle(tmp_path / "bundle", data, {"rbac.json": "[]\n"})
    assert read_bundle(tmp_path / "bundle").data["rbac"] == result


def test_snapshot_fake_api_accepts_plain_tuples(fake: FakeCluster, tmp_path: Path) -> None:
    kube = Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")
    result = snapshot(kube, [(PLUGIN, "get", "pods", "", "", "kubeflow", "")])
    assert result == [{"identity": PLUGIN, "verb": "get", "group": "", "resource": "pods", "subresource": "",
                       "namespace": "kubeflow", "name": "", "allowed": True}]


def test_profile_objects_fake_api_lists_secrets_without_data(fake: FakeCluster, tmp_path: Path) -> None:
    ns = "kubeflow-user-example-com"
    for manifest in CONFIG.variant("sidecar-plugin").profile_resources + CONFIG.mode_profile_resources["multi-user"]:
        obj = {**manifest, "metadata": {**manifest["metadata"], "namespace": ns}}
        if obj["kind"] == "Secret":
            obj["data"] = {"token": "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuc2VjcmV0"}
        fake.add(obj)
    kube = Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")
    objects = profile_objects(kube, ns)
    assert {s["name"] for s in objects["serviceaccounts"]} == {"default-editor",
                                                               "ml-pipeline-driver-agent-executor-plugin"}
    assert {b["name"] for b in objects["rolebindings"]} == {"default-editor",
                                                            "ml-pipeline-driver-agent-executor-plugin-binding"}
    assert objects["secrets"] == [
        {"name": "default-editor.service-account-token", "type": "kubernetes.io/service-account-token"},
        {"name": "ml-pipeline-driver-agent-executor-plugin.service-account-token",
         "type": "kubernetes.io/service-account-token"}]
    assert "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuc2VjcmV0" not in repr(objects)


def test_snapshot_fake_api_stores_static_prediction_from_the_real_render(fake: FakeCluster, tmp_path: Path,
                                                                        install_render) -> None:
    """Static and live side by side: each SubjectAccessReview row carries what harness.rbac.evaluator predicts from the
    real sidecar-plugin render; the fake API's rule table models that Role, so the two agree."""
    from harness.rbac.evaluator import index_manifests, predict_access

    kube = Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")
    checks = checks_from_identities([Identity("kubeflow", "ml-pipeline-driver-agent-executor-plugin")], ["kubeflow"])
    index = index_manifests(install_render("sidecar-plugin", "standalone").manifests)
    static = {c: a["allowed"] for c, a in zip(checks, predict_access(index, checks))}
    result = snapshot(kube, checks, static)
    assert all("static_allowed" in row for row in result)
    disagreements = [(r["verb"], r["resource"], r["name"]) for r in result if r["static_allowed"] != r["allowed"]]
    assert disagreements == []
