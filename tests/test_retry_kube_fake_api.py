"""The one retry policy (harness.boundary.retry) at the Kubernetes boundary, against the fake API with one-shot faults
(harness.testing.fakeapi `faults`): every call that is safe to repeat survives one 5xx, 429 or dropped
connection; a create that is not safe to repeat is not repeated; nothing escapes as a raw urllib3 error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boundary.kube import ARGO_WORKFLOWS, CORE, Kube, KubeApiError
from harness.boundary.retry import RetryPolicy, transient_status
from harness.models import Identity
from harness.testing.fakeapi import FakeCluster

FAST = RetryPolicy(attempts=4, initial=0, max_wait=0)
RUNNER = Identity("kubeflow", "pipeline-runner")


@pytest.fixture()
def fake():
    with FakeCluster() as cluster:
        cluster.add({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "pipeline-runner", "namespace": "kubeflow"}})
        cluster.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kubeflow"}})
        cluster.add({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                     "metadata": {"name": "wf", "namespace": "kubeflow"}})
        cluster.add_log("kubeflow", "p", "main", ["hello"])
        cluster.allow("kubeflow/pipeline-runner", "get", "pods")
        yield cluster


@pytest.fixture()
def kube(fake: FakeCluster, tmp_path: Path) -> Kube:
    return Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake", retry_policy=FAST)


CALLS = {
    "version": ("GET", r"^/version$", lambda k: k.version()["gitVersion"]),
    "get": ("GET", r"/workflows/wf$", lambda k: k.get(*ARGO_WORKFLOWS, "wf", "kubeflow")["metadata"]["name"]),
    "list": ("GET", r"/namespaces/kubeflow/pods$", lambda k: [p["metadata"]["name"] for p in k.pods("kubeflow")]),
    "logs": ("GET", r"/pods/p/log$", lambda k: k.pod_log("kubeflow", "p", "main").strip()),
    "watch": ("GET", r"/workflows$", lambda k: [e["object"]["metadata"]["name"]
                                                for e in k.watch(*ARGO_WORKFLOWS, "kubeflow", timeout_seconds=1)]),
    "token-request": ("POST", r"/serviceaccounts/pipeline-runner/token$",
                      lambda k: bool(k.request_token(RUNNER))),
    "subject-access-review": ("POST", r"subjectaccessreviews$",
                              lambda k: k.access_review(RUNNER, "get", "pods", namespace="kubeflow")["allowed"]),
}


@pytest.mark.parametrize("status", [503, 500, 429, 0], ids=["503", "500", "429", "dropped"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_kube_fake_api_safe_call_survives_one_fault(fake: FakeCluster, kube: Kube, call: str, status: int) -> None:
    method, pattern, do = CALLS[call]
    expected = do(kube)  # the answer without a fault
    before = len(fake.requests)
    fake.faults.append((method, pattern, status))
    assert do(kube) == expected
    assert fake.faults == []  # the fault was hit ...
    assert len(fake.requests) - before >= 2  # ... and the call repeated


def test_kube_fake_api_retries_give_up_with_one_line(fake: FakeCluster, kube: Kube) -> None:
    fake.faults.extend([("GET", r"/workflows/wf$", 503)] * FAST.attempts)
    with pytest.raises(KubeApiError) as caught:
        kube.get(*ARGO_WORKFLOWS, "wf", "kubeflow")
    assert caught.value.status == 503 and "\n" not in caught.value.line()
    assert len([r for r in fake.requests if r.path.endswith("/workflows/wf")]) == FAST.attempts


def test_kube_fake_api_dropped_connections_are_typed_errors(fake: FakeCluster, kube: Kube) -> None:
    fake.faults.extend([("GET", r"/pods/p/log$", 0)] * FAST.attempts)
    with pytest.raises(KubeApiError) as caught:  # never urllib3.exceptions.ProtocolError
        kube.pod_log("kubeflow", "p", "main")
    assert caught.value.status == 0 and "check that the cluster is running" in caught.value.line()


def test_kube_fake_api_create_is_not_repeated(fake: FakeCluster, kube: Kube) -> None:
    fake.faults.append(("POST", r"/namespaces/kubeflow/configmaps$", 503))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    with pytest.raises(KubeApiError) as caught:
        kube.create(CORE, "configmaps", "kubeflow", body)
    assert caught.value.status == 503
    assert len([r for r in fake.requests if r.method == "POST" and r.path.endswith("/configmaps")]) == 1


def test_kube_fake_api_not_found_is_not_retried(fake: FakeCluster, kube: Kube) -> None:
    assert kube.find(CORE, "pods", "missing", "kubeflow") is None
    assert len([r for r in fake.requests if r.path.endswith("/pods/missing")]) == 1


@pytest.mark.parametrize(("status", "transient"), [(0, True), (None, True), (429, True), (500, True), (502, True),
                                                   (503, True), (504, True), (501, False), (400, False),
                                                   (401, False), (403, False), (404, False), (409, False),
                                                   (410, False), (422, False)])
def test_retry_transient_statuses(status: int | None, transient: bool) -> None:
    assert transient_status(status) is transient
