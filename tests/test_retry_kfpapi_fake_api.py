"""The retry policy at the KFP API boundary (harness.boundary.kfpapi) against the fake KFP API with one-shot faults:
submission is idempotent (a run whose answer was lost is found by its name, never submitted twice) and run
reads survive a 5xx or a dropped connection. The kfp SDK, requests and the port-forward run for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boundary.kfpapi import KfpApiError
from harness.testing.fakeapi import FakeCluster
from tests.fakeapi_session import fake_session, seed

PIPELINE = "test_data/sdk_compiled_pipelines/valid/pipeline_with_loops_and_conditions.yaml"
ARGUMENTS = {"loop_parameter": ["a", "b"], "msg": "m"}
RUNS = r"^/apis/v2beta1/runs$"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFPC_RETRY_SCALE", "0")


def _created(fake: FakeCluster) -> int:
    return len([r for r in fake.requests if r.method == "POST" and r.path == "/apis/v2beta1/runs"])


@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
@pytest.mark.parametrize("fault", [-1, 0, 503, 429], ids=["created-answer-lost", "dropped", "503", "429"])
def test_kfpapi_fake_api_submit_survives_one_fault_and_creates_one_run(tmp_path: Path, kfp_trees: Path,
                                                                       mode: str, fault: int) -> None:
    with FakeCluster(multi_user=mode == "multi-user") as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", mode, fake) as (ctx, _bin):
            fake.faults.append(("POST", RUNS, fault))
            submitted = ctx.kfp.submit(str(kfp_trees / "driver-pod" / PIPELINE), ARGUMENTS,
                                       run_name="loops-driver-pod", experiment="kfpc-r1")
        assert fake.faults == []
        assert len(fake.runs) == 1, "the run was submitted twice"
        assert submitted["run_id"] == next(iter(fake.runs))
        assert _created(fake) == (1 if fault == -1 else 2)


def test_kfpapi_fake_api_get_run_survives_5xx_and_dropped_connection(tmp_path: Path, kfp_trees: Path) -> None:
    with FakeCluster() as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", "standalone", fake) as (ctx, _bin):
            run_id = ctx.kfp.submit(str(kfp_trees / "driver-pod" / PIPELINE), ARGUMENTS, run_name="r",
                                    experiment="kfpc-r1")["run_id"]
            fake.faults.extend([("GET", f"/runs/{run_id}$", 503), ("GET", f"/runs/{run_id}$", 0)])
            assert ctx.kfp.get_run(run_id)["run_id"] == run_id
            assert fake.faults == []


def test_kfpapi_fake_api_get_run_gives_up_with_one_line(tmp_path: Path, kfp_trees: Path) -> None:
    with FakeCluster() as fake:
        seed(fake)
        with fake_session(tmp_path, "driver-pod", "standalone", fake) as (ctx, _bin):
            fake.faults.extend([("GET", "/runs/nope$", 0)] * 10)
            with pytest.raises(KfpApiError) as caught:
                ctx.kfp.get_run("nope")
    assert "\n" not in caught.value.line() and "unreachable" in caught.value.line()
