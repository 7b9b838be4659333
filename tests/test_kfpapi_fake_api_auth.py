"""KFP API authentication against the FAKE Kubernetes + KFP API (harness.testing.fakeapi) and a fake `kubectl`
on PATH: the fake authenticates as multi-user KFP does (TokenReview for audience pipelines.kubeflow.org,
unexpired tokens, then a SubjectAccessReview; standalone checks nothing), and the harness's session keeps
working when its token expires. The kfp SDK, requests and the kubernetes client run for real."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests

from harness.boundary.kfpapi import REFRESH_FRACTION, TOKEN_SECONDS, KfpApiError, TokenSource
from harness.boundary.kube import Kube, KubeApiError
from harness.models import Identity
from harness.testing.fakeapi import FakeCluster
from tests.fakeapi_session import fake_session, seed

PIPELINE = "test_data/sdk_compiled_pipelines/valid/pipeline_with_loops_and_conditions.yaml"
TENANT = "kubeflow-user-example-com"
EDITOR = Identity(TENANT, "default-editor")


def _kube(fake: FakeCluster, tmp_path: Path) -> Kube:
    return Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")


def _runs(fake: FakeCluster, namespace: str, token: str = "") -> requests.Response:
    return requests.get(f"{fake.kfp_url}/apis/v2beta1/runs", params={"namespace": namespace}, timeout=10,
                        headers={"Authorization": f"Bearer {token}"} if token else {})


def test_kfpapi_fake_api_multi_user_authenticates_like_the_apiserver(tmp_path: Path) -> None:
    with FakeCluster(multi_user=True) as fake:
        seed(fake)
        kube = _kube(fake, tmp_path)
        with_audience = kube.request_token(EDITOR, audiences=["pipelines.kubeflow.org"])
        without = kube.request_token(EDITOR)
        assert _runs(fake, TENANT, with_audience).json() == {}  # EmitUnpopulated false: no runs is `{}`
        for token in ("", without, "not-a-token"):
            answer = _runs(fake, TENANT, token)
            body = answer.json()
            # grpc-gateway v2 status body of a KFP UserError (common/util/error.go GRPCStatus)
            assert (answer.status_code, body["code"]) == (401, 16)
            assert body["details"] == [{"@type": "type.googleapis.com/google.rpc.Status", "code": 16,
                                        "message": "Failed to check authorization. User identity is empty in "
                                                   "the request header"}]
        denied = _runs(fake, "kfpc-tenant-b", with_audience)
        assert (denied.status_code, denied.json()["code"]) == (403, 7)
        # the run is read before the access review: an unknown run is 404 whatever the token
        assert requests.get(f"{fake.kfp_url}/apis/v2beta1/runs/nope", timeout=10).status_code == 404
        fake.clock_offset = timedelta(seconds=TOKEN_SECONDS)  # the token's hour is over
        assert _runs(fake, TENANT, with_audience).status_code == 401
        with pytest.raises(KubeApiError) as short:
            kube.request_token(EDITOR, expiration_seconds=599)  # TokenRequest minimum is 10 minutes
        assert short.value.status == 422


def test_kfpapi_fake_api_standalone_checks_no_token(tmp_path: Path) -> None:
    with FakeCluster() as fake:  # IsAuthorized returns nil outside multi-user mode
        assert _runs(fake, "kubeflow").status_code == 200


def test_kfpapi_fake_api_session_survives_token_expiry(tmp_path: Path, kfp_trees: Path) -> None:
    """The multi-user token (3600 s) expires during a pair; the session requests a new one on 401 for both
    its own reads and the kfp SDK's calls."""
    with FakeCluster(multi_user=True) as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", "multi-user", fake) as (ctx, _bin):
            first = ctx.kfp.submit(str(kfp_trees / "driver-pod" / PIPELINE), {"loop_parameter": [1], "msg": "m"},
                                   run_name="before", experiment="kfpc-r1")
            fake.clock_offset += timedelta(seconds=TOKEN_SECONDS + 1)
            assert ctx.kfp.get_run(first["run_id"])["run_id"] == first["run_id"]
            fake.clock_offset += timedelta(seconds=TOKEN_SECONDS + 1)  # expired again: now the SDK meets the 401
            second = ctx.kfp.submit(str(kfp_trees / "driver-pod" / PIPELINE), {"loop_parameter": [1], "msg": "m"},
                                    run_name="after", experiment="kfpc-r1")
        issued = [t for t in fake.tokens if t["identity"] == f"{TENANT}/default-editor"]
    assert second["run_id"] != first["run_id"]
    assert len(issued) == 3 and all(t["audiences"] == ["pipelines.kubeflow.org"] for t in issued)
    unauthenticated = [r for r in fake.requests if r.path.startswith("/apis/v2beta1/") and not r.authorization
                       and not r.path.endswith("healthz")]
    assert unauthenticated == []


@pytest.mark.parametrize("rejections", [1, 2], ids=["renewed", "still-rejected"])
def test_kfpapi_fake_api_a_401_renews_the_token_once_for_reads_and_sdk_calls(tmp_path: Path, kfp_trees: Path,
                                                                             rejections: int) -> None:
    """One mechanism (KfpSession._refreshing) for the session's own reads and the kfp SDK's creates: a 401
    costs exactly one new token and one more try; a second 401 is reported as one line naming the status."""
    pipeline = str(kfp_trees / "driver-pod" / PIPELINE)
    with FakeCluster(multi_user=True) as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", "multi-user", fake) as (ctx, _bin):
            run_id = ctx.kfp.submit(pipeline, {"loop_parameter": [1], "msg": "m"}, run_name="first",
                                    experiment="kfpc-r1")["run_id"]

            def issued() -> int:
                return len([t for t in fake.tokens if t["identity"] == f"{TENANT}/default-editor"])

            before = issued()
            fake.faults.extend([("GET", f"/runs/{run_id}$", 401)] * rejections)
            if rejections == 1:
                assert ctx.kfp.get_run(run_id)["run_id"] == run_id
            else:
                with pytest.raises(KfpApiError, match=f"answered 401 for run {run_id}"):
                    ctx.kfp.get_run(run_id)
            assert (issued(), fake.faults) == (before + 1, [])
            fake.faults.extend([("POST", r"^/apis/v2beta1/runs$", 401)] * rejections)
            if rejections == 1:
                assert ctx.kfp.submit(pipeline, {"loop_parameter": [1], "msg": "m"}, run_name="second",
                                      experiment="kfpc-r1")["run_id"] != run_id
            else:
                with pytest.raises(KfpApiError, match="refused the run second: 401"):
                    ctx.kfp.submit(pipeline, {"loop_parameter": [1], "msg": "m"}, run_name="second",
                                   experiment="kfpc-r1")
            assert (issued(), fake.faults) == (before + 2, [])


def test_kfpapi_fake_api_token_source_renews_at_80_percent_of_its_life(tmp_path: Path) -> None:
    now = [1000.0]
    with FakeCluster(multi_user=True) as fake:
        seed(fake)
        tokens = TokenSource(_kube(fake, tmp_path), EDITOR, ["pipelines.kubeflow.org"], clock=lambda: now[0])
        first = tokens.current()
        now[0] += TOKEN_SECONDS * REFRESH_FRACTION - 1
        assert tokens.current() == first
        now[0] += 1
        second = tokens.current()
        assert second != first and len(fake.tokens) == 2
        assert fake.tokens[-1]["audiences"] == ["pipelines.kubeflow.org"]
        assert tokens.refresh(rejected=first) == second  # another caller already replaced the rejected one
    assert first not in repr(tokens) and second not in repr(tokens)
