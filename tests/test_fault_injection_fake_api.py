"""Fault injection through the fake API (harness.testing.fakeapi one-shot `faults`): every kind of request a
whole run makes to the Kubernetes API and the KFP API (connect, submit, wait, follow, SubjectAccessReviews,
collection) fails once in turn, with a 503 and with a dropped connection. The run must still give complete
evidence (the retry policy absorbed the fault) or a partial bundle whose reason names the fault: never an
exception, never evidence lost; and a later scenario in the same session must still run.

Request kinds are (method, path with names and ids as `{name}`), taken from what the fake served during a
clean run (`FakeCluster.requests`); `test_fault_injection_fake_api_kinds_are_every_request_of_a_run` fails
when a run makes a request kind missing from `KINDS`, so a new API call cannot go untested. `/_fake/...`
requests are the fake kubectl's own bookkeeping (port-forward), not API calls of the harness.
ML Metadata (gRPC) is not served by this fake and is not covered here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.boundary.retry import default_policy
from harness.config import load_config
from harness.evidence.bundle import Bundle, read_bundle
from harness.live.runs import RunContext, run_scenario
from harness.models import Scenario
from harness.rbac.live import checks_from_identities
from harness.testing.fakeapi import FakeCluster
from harness.testing.fakemlmd import FakeMlmd
from harness.testing.fakerun import simulate
from tests.fakeapi_session import fake_session, seed

CONFIG = load_config()
PIPELINE = "test_data/sdk_compiled_pipelines/valid/pipeline_with_loops_and_conditions.yaml"
ARGUMENTS = {"loop_parameter": ["a", "b"], "msg": "m"}
USER_NS = "/api/v1/namespaces/kubeflow-user-example-com"
KFP = "/apis/v2beta1"
# central-driver multi-user makes the most kinds of request (profile objects, the shared driver Deployment);
# sidecar-plugin follows the agent pod's log while the run is in flight.
KINDS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("central-driver", "multi-user"): [
        ("GET", f"{USER_NS}/events"),
        ("GET", f"{USER_NS}/pods"),
        ("GET", f"{USER_NS}/pods/{{name}}/log"),
        ("GET", f"{USER_NS}/secrets"),
        ("GET", f"{USER_NS}/serviceaccounts"),
        ("GET", "/api/v1/namespaces/kubeflow/pods"),
        ("GET", "/api/v1/namespaces/kubeflow/pods/{name}/log"),
        ("GET", "/apis/apps/v1/namespaces/kubeflow/deployments/ml-pipeline-driver"),
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/kubeflow-user-example-com/workflows"),
        ("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflow-user-example-com/rolebindings"),
        ("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflow-user-example-com/roles"),
        ("GET", f"{KFP}/experiments"),
        ("GET", f"{KFP}/healthz"),
        ("GET", f"{KFP}/runs/{{name}}"),
        ("POST", f"{USER_NS}/serviceaccounts/default-editor/token"),
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"),
        ("POST", f"{KFP}/experiments"),
        ("POST", f"{KFP}/runs"),
    ],
    ("sidecar-plugin", "standalone"): [
        ("GET", "/api/v1/namespaces/kubeflow/events"),
        ("GET", "/api/v1/namespaces/kubeflow/pods"),
        ("GET", "/api/v1/namespaces/kubeflow/pods/{name}/log"),
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows"),
        ("GET", f"{KFP}/experiments"),
        ("GET", f"{KFP}/healthz"),
        ("GET", f"{KFP}/runs/{{name}}"),
        ("POST", "/api/v1/namespaces/kubeflow/serviceaccounts/pipeline-runner/token"),
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"),
        ("POST", f"{KFP}/experiments"),
        ("POST", f"{KFP}/runs"),
    ],
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FAULTS = {"503": 503, "dropped": 0}  # 0: the connection closes without a status line


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFPC_RETRY_SCALE", "0")  # harness.boundary.retry.default_policy: no backoff sleeps


def kind_of(method: str, path: str) -> tuple[str, str]:
    path = re.sub(r"/(runs|pods)/[^/]+", r"/\1/{name}", path)
    return method, path


def pattern(template: str) -> str:
    return "^" + re.escape(template).replace(re.escape("{name}"), "[^/]+") + "$"


def scenario(kfp_trees: Path, name: str) -> Scenario:
    return Scenario(name=name, origin="catalogue", pipeline_file=str(kfp_trees / "sidecar-plugin" / PIPELINE),
                    arguments=ARGUMENTS)


def with_rbac(ctx: RunContext) -> RunContext:
    """The run's identity checked in its namespace: SubjectAccessReviews are an evidence step too."""
    identity = f"{ctx.mode.user_namespace}/{ctx.mode.workflow_service_account}"
    return dataclasses.replace(ctx, rbac_checks=checks_from_identities([identity], [ctx.mode.user_namespace]))


def evidence(bundle: Bundle) -> dict[str, Any]:
    """What a bundle holds, with the random names taken out: workflow, KFP run id, node hashes in pod names
    (fnv32a of the node name, which holds the workflow name), artifact UUIDs."""
    workflow, run_id = bundle.data["run"].get("workflow") or "-", bundle.data["run"]["id"]

    def plain(text: str) -> str:
        text = UUID.sub("UUID", text.replace(workflow, "WF").replace(run_id, "RUN"))
        return re.sub(r"(WF-[a-z-]+)-\d+", r"\1-N", text)

    return {
        "state": bundle.data["run"]["state"],
        "files": sorted(plain(f) for f in bundle.files if f != "collection-errors.json"),
        "tasks": sorted((t["path"], t["state"], plain(json.dumps(t.get("outputs"), sort_keys=True)))
                        for t in bundle.tasks),
        "driver_nodes": sorted((d["task_path"], d["driver_type"], d["node_type"]) for d in bundle.driver_nodes),
        "pods": sorted(plain(p) for p in bundle.data["pods"]),
        "rbac": bundle.data.get("rbac"),
        "task_outputs_read": bundle.data["task_outputs"]["read"],
        "driver_logs": (bundle.data["driver_logs"]["found"], sorted(plain(f) for f in bundle.data["driver_logs"]["files"])),
    }


def run_twice(tmp_path: Path, kfp_trees: Path, variant: str, mode: str,
              faults: list[tuple[str, str, int]]) -> tuple[FakeCluster, Bundle, Bundle]:
    """A session with `faults` armed before it connects: the scenario, then a later one in the same session."""
    kind = CONFIG.variant(variant).driver.kind
    with FakeMlmd() as mlmd, FakeCluster(on_run=simulate(kind, mlmd=mlmd), multi_user=mode == "multi-user",
                                         polls_until_done=1) as fake:
        seed(fake)
        fake.faults.extend(faults)
        with fake_session(tmp_path, variant, mode, fake, mlmd=mlmd) as (ctx, _bin):
            ctx = with_rbac(ctx)
            first = run_scenario(ctx, scenario(kfp_trees, "loops"), tmp_path / "out")
            left = list(fake.faults)
            later = run_scenario(ctx, scenario(kfp_trees, "loops-later"), tmp_path / "out")
    assert left == [], f"the fault {left} was never hit: the request kind is not made by a run"
    return fake, read_bundle(first), read_bundle(later)  # read_bundle checks the schema and every file hash


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, kfp_trees: Path) -> dict[tuple[str, str], tuple[set, dict]]:
    """Per configuration: the request kinds a clean run makes, and the evidence of its bundle."""
    found = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KFPC_RETRY_SCALE", "0")
        for variant, mode in KINDS:
            fake, bundle, _later = run_twice(tmp_path_factory.mktemp("clean"), kfp_trees, variant, mode, [])
            kinds = {kind_of(r.method, r.path) for r in fake.requests if not r.path.startswith("/_fake/")}
            assert bundle.complete
            found[(variant, mode)] = (kinds, evidence(bundle))
    return found


@pytest.mark.parametrize(("variant", "mode"), list(KINDS))
def test_fault_injection_fake_api_kinds_are_every_request_of_a_run(clean: dict, variant: str, mode: str) -> None:
    assert clean[(variant, mode)][0] == set(KINDS[(variant, mode)])


def _fault_name(status: int, text: str) -> bool:
    """Does `text` name the injected fault: the status for a 5xx, an unreachable API for a dropped connection?"""
    if status:
        return str(status) in text
    return any(word in text.lower() for word in ("unreachable", "connection", "failed: 0", "reach"))


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize(("variant", "mode", "method", "path"),
                         [(v, m, method, path) for (v, m), kinds in KINDS.items() for method, path in kinds])
def test_fault_injection_fake_api_one_fault_per_request_kind(tmp_path: Path, kfp_trees: Path, clean: dict,
                                                            variant: str, mode: str, method: str, path: str,
                                                            fault: str) -> None:
    status = FAULTS[fault]
    fake, bundle, later = run_twice(tmp_path, kfp_trees, variant, mode, [(method, pattern(path), status)])
    expected = clean[(variant, mode)][1]
    assert len(fake.runs) == 2, "a scenario was submitted twice, or not at all"
    if bundle.complete:  # the retry policy absorbed the fault: nothing may be missing
        assert evidence(bundle) == expected
    else:
        assert bundle.data["status"] == "partial"
        errors = json.loads(bundle.read_text("collection-errors.json")) if "collection-errors.json" in bundle.files \
            else []
        assert _fault_name(status, bundle.data["reason"]), bundle.data["reason"]
        got = evidence(bundle)
        assert errors and set(got["files"]) <= set(expected["files"])
        assert got["tasks"] == expected["tasks"] and got["driver_nodes"] == expected["driver_nodes"]
    # the later scenario in the same session runs and gives complete evidence
    assert later.complete and evidence(later) == expected


EVIDENCE_KINDS = [(method, path) for method, path in KINDS[("central-driver", "multi-user")]
                  if method == "GET" and not path.startswith(KFP) and not path.endswith("/workflows")
                  or path.endswith("/subjectaccessreviews")]


@pytest.mark.parametrize(("method", "path"), EVIDENCE_KINDS)
def test_fault_injection_fake_api_evidence_step_outlasting_retries_gives_partial_bundle(
        tmp_path: Path, kfp_trees: Path, clean: dict, method: str, path: str) -> None:
    """A fault that outlasts the retry policy in one evidence step (SubjectAccessReviews included) costs that
    step only: a partial bundle whose reason names it, the rest of the evidence kept, the next scenario run.
    Before harness.live.runs passed the SubjectAccessReviews into collection, a failing one raised out of
    run_scenario and no bundle was written."""
    attempts = default_policy().attempts
    _fake, bundle, later = run_twice(tmp_path, kfp_trees, "central-driver", "multi-user",
                                     [(method, pattern(path), 503)] * attempts)
    expected = clean[("central-driver", "multi-user")][1]
    assert bundle.data["status"] == "partial" and "503" in bundle.data["reason"], bundle.data["reason"]
    errors = json.loads(bundle.read_text("collection-errors.json"))
    assert [e for e in errors if "503" in e["error"]]
    got = evidence(bundle)
    assert "run.json" in got["files"] and set(got["files"]) <= set(expected["files"])
    assert got["tasks"] == expected["tasks"] and got["driver_nodes"] == expected["driver_nodes"]
    assert later.complete and evidence(later) == expected


def test_fault_injection_fake_api_submission_outlasting_retries_gives_partial_bundle_and_the_session_goes_on(
        tmp_path: Path, kfp_trees: Path) -> None:
    """A run create that fails through every retry costs that scenario only: a partial bundle naming the fault
    (no run to collect), and the next scenario of the session runs complete."""
    attempts = default_policy().attempts
    _fake, bundle, later = run_twice(tmp_path, kfp_trees, "central-driver", "multi-user",
                                     [("POST", pattern(f"{KFP}/runs"), 503)] * attempts)
    assert bundle.data["status"] == "partial" and "could not be submitted" in bundle.data["reason"]
    assert "503" in bundle.data["reason"] and bundle.data["run"]["id"] == ""
    assert later.complete
