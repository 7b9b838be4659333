"""harness.boundary.kube against a fake Kubernetes API served over HTTP on 127.0.0.1 (harness.testing.fakeapi)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.boundary.kube import ARGO_WORKFLOWS, CORE, Kube, KubeApiError
from harness.boundary.redact import PLACEHOLDER
from harness.errors import ClusterError
from harness.models import Identity
from harness.testing.fakeapi import FakeCluster, rfc3339


@pytest.fixture()
def fake(tmp_path: Path):
    with FakeCluster() as cluster:
        cluster.add({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "pipeline-runner", "namespace": "kubeflow"}})
        yield cluster


@pytest.fixture()
def kube(fake: FakeCluster, tmp_path: Path) -> Kube:
    return Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")


def _pod(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kubeflow", "labels": labels},
            "spec": {"containers": [{"name": "main"}, {"name": "wait"}]}}


def test_kube_version_list_get_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.add(_pod("a", {"workflows.argoproj.io/workflow": "wf-1"}))
    fake.add(_pod("b", {"workflows.argoproj.io/workflow": "wf-2"}))
    fake.add({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
              "metadata": {"name": "wf-1", "namespace": "kubeflow", "labels": {"pipeline/runid": "r1"}},
              "status": {"nodes": {"wf-1": {"displayName": "wf-1"}}}})

    assert kube.version()["gitVersion"] == "v1.34.0-fake"
    pods = kube.pods("kubeflow", "workflows.argoproj.io/workflow=wf-1")
    assert [p["metadata"]["name"] for p in pods] == ["a"]
    assert pods[0]["kind"] == "Pod" and pods[0]["apiVersion"] == "v1"
    workflows = kube.list(*ARGO_WORKFLOWS, "kubeflow", label_selector="pipeline/runid=r1")
    assert [w["metadata"]["name"] for w in workflows] == ["wf-1"]
    assert kube.get(*ARGO_WORKFLOWS, "wf-1", "kubeflow")["status"]["nodes"]["wf-1"]["displayName"] == "wf-1"
    assert any(r.path == "/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows" and
               r.query.get("labelSelector") == ["pipeline/runid=r1"] for r in fake.requests)


def test_kube_pod_log_container_and_since_time_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.add(_pod("a", {}))
    now = datetime.now(timezone.utc)
    fake.add_log("kubeflow", "a", "main", ["old line"], now - timedelta(hours=1))
    fake.add_log("kubeflow", "a", "main", ["new line"], now)
    fake.add_log("kubeflow", "a", "wait", ["wait line"], now)

    assert kube.pod_log("kubeflow", "a", "main") == "old line\nnew line\n"
    recent = kube.pod_log("kubeflow", "a", "main", since_time=rfc3339(now - timedelta(minutes=5)), timestamps=True)
    assert recent.endswith(" new line\n") and "old line" not in recent
    assert kube.pod_log("kubeflow", "a", "wait") == "wait line\n"
    with pytest.raises(KubeApiError) as error:  # two containers and none named: the API refuses
        kube.pod_log("kubeflow", "a")
    assert error.value.status == 400


def test_kube_pod_log_redacts_credential_shapes_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.add(_pod("a", {}))
    fake.add_log("kubeflow", "a", "main", ["AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
                                          "Authorization: Bearer abcdefghijklmnop123"])
    text = kube.pod_log("kubeflow", "a", "main")
    assert "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" not in text and "abcdefghijklmnop123" not in text
    assert text.count(PLACEHOLDER) == 2 and text.startswith("AWS_SECRET_ACCESS_KEY=")


def test_kube_missing_object_is_404_and_find_is_none_fake_api(kube: Kube) -> None:
    with pytest.raises(KubeApiError) as error:
        kube.get(CORE, "pods", "nope", "kubeflow")
    assert error.value.status == 404
    assert "pods kubeflow/nope" in error.value.line() and "\n" not in error.value.line()
    assert kube.find(CORE, "pods", "nope", "kubeflow") is None


def test_kube_token_request_remembered_and_redacted_from_errors_fake_api(fake: FakeCluster, kube: Kube) -> None:
    canary = "canary-kube-token-4f1e2d3c"
    fake.token_factory = lambda ref, audiences: canary
    token = kube.request_token(Identity("kubeflow", "pipeline-runner"), audiences=["pipelines.kubeflow.org"])
    assert token == canary and canary in kube.secrets
    assert fake.tokens[-1]["audiences"] == ["pipelines.kubeflow.org"]
    fake.errors[r"/pods/boom$"] = (500, f"internal error while handling token {canary}")
    with pytest.raises(KubeApiError) as error:
        kube.get(CORE, "pods", "boom", "kubeflow")
    assert canary not in error.value.line() and PLACEHOLDER in error.value.line()
    with pytest.raises(KubeApiError) as missing:
        kube.request_token(Identity("kubeflow", "no-such-sa"))
    assert missing.value.status == 404


def test_kube_unreachable_server_is_status_0_fake_api(tmp_path: Path) -> None:
    with FakeCluster() as gone:
        config = gone.kubeconfig(tmp_path / "kubeconfig")
    kube = Kube(str(config), "fake", request_timeout=3)
    with pytest.raises(KubeApiError) as error:
        kube.version()
    assert error.value.status == 0 and "kubeconfig" in error.value.fix


def test_kube_watch_streams_events_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.add(_pod("a", {"app": "x"}))
    fake.add(_pod("b", {"app": "y"}))
    events = list(kube.watch(CORE, "pods", "kubeflow", label_selector="app=x", timeout_seconds=2))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_kube_secret_metadata_never_returns_data_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.add({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "mlpipeline-minio-artifact", "namespace": "kubeflow"},
              "data": {"accesskey": "c2VjcmV0LXZhbHVl"}})
    listed = kube.secret_metadata("kubeflow")
    assert listed == [{"name": "mlpipeline-minio-artifact", "type": "Opaque", "annotations": {}}]
    assert "c2VjcmV0LXZhbHVl" not in repr(listed)


def test_kube_subject_access_review_fake_api(fake: FakeCluster, kube: Kube) -> None:
    fake.allow("kubeflow/pipeline-runner", "get", "pods", namespace="kubeflow")
    sa = Identity("kubeflow", "pipeline-runner")
    assert kube.access_review(sa, "get", "pods", namespace="kubeflow")["allowed"] is True
    assert kube.access_review(sa, "delete", "pods", namespace="kubeflow")["allowed"] is False
    sent = [r.body for r in fake.requests if r.path.endswith("subjectaccessreviews")][0]
    assert sent["spec"]["user"] == "system:serviceaccount:kubeflow:pipeline-runner"
    assert "system:serviceaccounts:kubeflow" in sent["spec"]["groups"]


def test_kube_missing_kubeconfig_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError) as error:
        Kube(str(tmp_path / "absent"), "ctx")
    assert "absent" in error.value.line() and "\n" not in error.value.line()
