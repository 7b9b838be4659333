"""Comparison over bundles built from the real shapes (kfp-variants.md §3.4, §5, §6): each kind of real
difference is detected, and benign noise (ids, timestamps, ordering, pod names) gives no difference."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.config import load_config
from harness.errors import ConfigError
from harness.evidence.bundle import Bundle, bundle_dir, read_bundle, write_bundle
from harness.judge.compare import compare_rbac, compare_scenario, driver_identities
from harness.judge.policy import Policy, load_policy
from harness.judge.verdict import Status
from harness.models import Finding
from tests.factory import VARIANT_DRIVER, Run, bundle_data, condition_shapes

SCENARIO = "pipeline-with-condition"
VARIANTS = list(VARIANT_DRIVER)
BASELINE = "sidecar-plugin"


@pytest.fixture(scope="module")
def shapes(kfp_trees: Path):
    return condition_shapes(kfp_trees)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def make(tmp_path: Path, shapes):
    """make(variant, seed=0, mutate=None, **bundle_data kwargs) -> a Bundle written and read from disk."""
    def build(variant: str, seed: int = 0, mutate=None, **kwargs) -> Bundle:
        data, files = bundle_data(shapes[variant], Run(variant, seed=seed), **kwargs)
        if mutate:
            mutate(data, files)
        target = bundle_dir(tmp_path / f"seed{seed}", SCENARIO, variant, "standalone")
        write_bundle(target, data, files)
        return read_bundle(target)
    return build


def compare(bundles: dict[str, Bundle], policy: Policy, variants=VARIANTS):
    return compare_scenario(SCENARIO, "standalone", bundles, variants=variants, baseline=BASELINE, policy=policy)


def findings(comparison, variant: str) -> list[Finding]:
    return [f for cell in comparison.cells if cell.variant == variant for f in cell.findings]


def blocking(comparison, variant: str) -> list[Finding]:
    return [f for f in findings(comparison, variant) if f.blocking]


def cell_status(comparison, variant: str) -> Status:
    return next(c.status for c in comparison.cells if c.variant == variant)


def test_two_runs_of_one_variant_differ_only_in_noise(make, policy) -> None:
    for variant in VARIANTS:
        def shuffle(data, files):
            random.Random(7).shuffle(data["tasks"])
            random.Random(7).shuffle(data["driver_nodes"])
            random.Random(7).shuffle(data["pods"])
        one, two = make(variant, seed=1), make(variant, seed=2, mutate=shuffle)
        assert one.data["run"]["id"] != two.data["run"]["id"]
        assert one.data["pods"][0] != two.data["pods"][0]
        assert one.data["tasks"][0]["started_at"] != two.data["tasks"][0]["started_at"]
        result = compare_scenario(SCENARIO, "standalone", {"a": one, "b": two}, variants=["a", "b"],
                                  baseline="a", policy=Policy())
        assert [f.message for f in findings(result, "b")] == []
        assert cell_status(result, "b") is Status.PASS


def test_central_and_pod_drivers_match_the_plugin_except_for_declared_differences(make, policy) -> None:
    result = compare({v: make(v) for v in VARIANTS}, policy)
    for variant in VARIANTS:
        assert blocking(result, variant) == [], variant
        assert cell_status(result, variant) is Status.PASS
    declared = {f.evidence["declared_by"] for f in findings(result, "central-driver")}
    # the plugin's reply is kept verbatim (Argo taskset.go): execution-id on CONTAINER drivers is common to
    # plugin and HTTP; the plugin's pod-spec-patch "" on DAG drivers is what the central driver omits
    assert declared == {"central-driver.condition-nil-omitted", "central-driver.dag-iteration-count-omitted",
                        "central-driver.empty-pod-spec-patch-omitted", "driver.transport"}
    assert {f.evidence["declared_by"] for f in findings(result, "driver-pod")} == {
        "sidecar-plugin.container-execution-id-verbatim", "sidecar-plugin.dag-empty-pod-spec-patch-verbatim",
        "driver.transport"}
    # The HTTP `result` JSON was parsed: the DAG condition "true" matches the plugin's parameter.
    assert not [f for f in findings(result, "central-driver") if f.evidence.get("field") == "condition"
                and f.id == "driver.output-differs"]


def test_declared_differences_fail_without_the_policy(make) -> None:
    result = compare({v: make(v) for v in VARIANTS}, Policy())
    ids = {f.id for f in blocking(result, "central-driver")}
    assert {"driver.output-missing", "driver.transport-differs"} <= ids
    assert cell_status(result, "central-driver") is Status.FAIL
    assert {"driver.output-missing"} <= {f.id for f in blocking(result, "driver-pod")}  # plugin keys kept verbatim


def _task(data, path):
    return next(t for t in data["tasks"] if t["path"] == path)


def test_changed_output_value_is_detected(make, policy) -> None:
    def tails(data, files):
        _task(data, "root/flip-coin-op")["outputs"]["parameters"]["Output"] = "tails"
    result = compare({"sidecar-plugin": make("sidecar-plugin"), "central-driver": make("central-driver",
                                                                                          mutate=tails)},
                     policy, variants=["sidecar-plugin", "central-driver"])
    [finding] = blocking(result, "central-driver")
    assert (finding.id, finding.subject) == ("output.parameter-differs", "task root/flip-coin-op")
    assert (finding.evidence["baseline"], finding.evidence["actual"]) == ("heads", "tails")


def test_missing_node_is_detected(make, policy) -> None:
    def drop(data, files):
        data["tasks"] = [t for t in data["tasks"] if t["path"] != "root/condition-1/print-op-2"]
    result = compare({"sidecar-plugin": make("sidecar-plugin"), "driver-pod": make("driver-pod", mutate=drop)},
                     policy, variants=["sidecar-plugin", "driver-pod"])
    assert [(f.id, f.subject) for f in blocking(result, "driver-pod")] == [
        ("dag.task-missing", "task root/condition-1/print-op-2")]


def test_different_failure_node_is_detected(make, policy) -> None:
    result = compare({"sidecar-plugin": make("sidecar-plugin", fail_at="root/print-op"),
                      "central-driver": make("central-driver", fail_at="root/condition-1/print-op-2")},
                     policy, variants=["sidecar-plugin", "central-driver"])
    ids = {f.id for f in blocking(result, "central-driver")}
    assert "failure.location-differs" in ids
    assert "task.state-differs" in ids
    location = next(f for f in blocking(result, "central-driver") if f.id == "failure.location-differs")
    assert location.evidence["baseline"] == ["root/print-op"]
    assert location.evidence["actual"] == ["root/condition-1/print-op-2"]


def test_failed_driver_node_is_a_failure_location(make, policy) -> None:
    result = compare({"sidecar-plugin": make("sidecar-plugin"),
                      "central-driver": make("central-driver", fail_at="root/condition-1")},
                     policy, variants=["sidecar-plugin", "central-driver"])
    location = next(f for f in blocking(result, "central-driver") if f.id == "failure.location-differs")
    assert location.evidence["actual"] == ["driver:root/condition-1"]
    assert any(f.id == "driver.phase-differs" for f in blocking(result, "central-driver"))


def test_missing_driver_log_is_detected(make, policy) -> None:
    def no_logs(data, files):
        promised = data["driver_logs"]["files"][0]
        del files[promised]
        data["driver_logs"] = {**data["driver_logs"], "found": False, "files": []}
    result = compare({"sidecar-plugin": make("sidecar-plugin"),
                      "central-driver": make("central-driver", mutate=no_logs)},
                     policy, variants=["sidecar-plugin", "central-driver"])
    [finding] = blocking(result, "central-driver")
    assert finding.id == "logs.driver-missing"
    assert "deployment:kubeflow/ml-pipeline-driver" in finding.subject


def test_leaked_token_in_a_log_is_detected_without_the_value(make, policy) -> None:
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZWZsb3cifQ.c2lnbmF0dXJlLXZhbHVl"

    def leak(data, files):
        name = data["driver_logs"]["files"][0]
        files[name] += f"I0501 12:00:00.000000 1 client.go:1] calling apiserver with Authorization: Bearer {token}\n"
    result = compare({"sidecar-plugin": make("sidecar-plugin"), "central-driver": make("central-driver",
                                                                                          mutate=leak)},
                     policy, variants=["sidecar-plugin", "central-driver"])
    leaks = [f for f in blocking(result, "central-driver") if f.id == "security.secret-leak"]
    assert leaks and all(f.evidence["fingerprint"].startswith("sha256:") for f in leaks)
    assert token not in repr([f.to_dict() for f in findings(result, "central-driver")])


def test_env_style_secret_is_detected(make, policy) -> None:
    def leak(data, files):
        files["logs/env.log"] = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n"
    result = compare({"sidecar-plugin": make("sidecar-plugin", mutate=leak)}, policy, variants=["sidecar-plugin"])
    assert [f.evidence["pattern"] for f in blocking(result, "sidecar-plugin")] == ["env-credential"]


def test_new_error_class_in_logs_is_detected_but_ids_in_messages_are_not(make, policy) -> None:
    def error(data, files):
        files["logs/extra.log"] = 'time="2026-05-01T12:00:00Z" level=error msg="failed to open bucket minio://x"\n'

    def same_class(seed):
        def add(data, files):
            files["logs/w.log"] = f"W0501 12:00:0{seed}.000 1 a.go:{seed}] retrying pod {data['run']['workflow']}-x-{seed}\n"
        return add
    result = compare({"sidecar-plugin": make("sidecar-plugin", mutate=same_class(1)),
                      "central-driver": make("central-driver", mutate=lambda d, f: (same_class(2)(d, f), error(d, f)))},
                     policy, variants=["sidecar-plugin", "central-driver"])
    classes = [f for f in findings(result, "central-driver") if f.category == "logs"]
    assert [(f.id, f.blocking) for f in classes] == [("logs.error-class-differs", True)]
    assert classes[0].evidence["actual"] == 'error: failed to open bucket minio://x'


def test_missing_baseline_bundle_makes_cross_checks_not_verified(make, policy) -> None:
    result = compare({"central-driver": make("central-driver")}, policy)
    assert cell_status(result, "sidecar-plugin") is Status.NOT_VERIFIED
    central = next(c for c in result.cells if c.variant == "central-driver")
    assert {c.name for c in central.checks if c.status is Status.NOT_VERIFIED} == {
        "dag", "task-states", "outputs", "failure", "driver-outputs", "log-classes"}
    assert central.status is Status.NOT_VERIFIED


def test_oracle_expectations_need_an_oracle_and_must_match(make, policy) -> None:
    def expect(oracle):
        def mutate(data, files):
            data["scenario"]["expected_outputs"] = {"root/flip-coin-op": {"Output": "oracle"}}
            if oracle is not None:
                data["oracle"] = {"available": True, "state": "SUCCEEDED",
                                  "outputs": {"root/flip-coin-op": {"Output": oracle}}}
        return mutate
    no_oracle = compare({"sidecar-plugin": make("sidecar-plugin", mutate=expect(None))}, policy,
                        variants=["sidecar-plugin"])
    check = next(c for c in no_oracle.cells[0].checks if c.name == "expectations")
    assert check.status is Status.NOT_VERIFIED and "oracle" in check.reason
    wrong = compare({"sidecar-plugin": make("sidecar-plugin", seed=3, mutate=expect("tails"))}, policy,
                    variants=["sidecar-plugin"])
    assert [f.id for f in blocking(wrong, "sidecar-plugin")] == ["oracle.output-mismatch"]
    right = compare({"sidecar-plugin": make("sidecar-plugin", seed=4, mutate=expect("heads"))}, policy,
                    variants=["sidecar-plugin"])
    assert right.cells[0].status is Status.PASS


def test_partial_bundle_is_not_verified(make, policy) -> None:
    def partial(data, files):
        data["status"], data["reason"] = "partial", "run timed out after 900 s"
    result = compare({"sidecar-plugin": make("sidecar-plugin", mutate=partial)}, policy, variants=["sidecar-plugin"])
    assert result.cells[0].status is Status.NOT_VERIFIED
    assert "run timed out" in result.cells[0].checks[0].reason


def _rbac(make, policy, mutate=None, mode="standalone"):
    bundles = {v: make(v, mutate=mutate if v == "central-driver" else None) for v in VARIANTS}
    return compare_rbac(mode, bundles, variants=VARIANTS, baseline=BASELINE, policy=policy,
                        driver_identities={v: ids[mode] for v, ids in driver_identities(load_config()).items()})


def test_rbac_declared_deltas_pass_and_the_undeclared_pvc_loss_fails(make, policy) -> None:
    result = _rbac(make, policy)
    by_variant = {c.variant: c for c in result.cells}
    assert by_variant["driver-pod"].status is Status.PASS
    [lost] = [f for f in by_variant["central-driver"].findings if f.blocking]
    assert lost.id == "rbac.permission-lost"
    assert lost.subject == "ServiceAccount kubeflow/ml-pipeline-driver"
    assert lost.evidence["field"] == "create persistentvolumeclaims in kubeflow"
    gained = sorted(f.evidence["field"] for f in by_variant["central-driver"].findings if f.expected)
    assert gained == ["get configmaps in kubeflow", "get secrets in kubeflow", "list secrets in kubeflow"]


def test_rbac_extra_permission_is_detected(make, policy) -> None:
    def exec_pods(data, files):
        data["rbac"].append({"identity": "kubeflow/ml-pipeline-driver", "verb": "create", "group": "",
                             "resource": "pods", "subresource": "exec", "namespace": "kubeflow", "name": "",
                             "allowed": True})
    result = _rbac(make, policy, mutate=exec_pods)
    central = next(c for c in result.cells if c.variant == "central-driver")
    gained = [f for f in central.findings if f.blocking and f.id == "rbac.permission-gained"]
    assert [f.evidence["field"] for f in gained] == ["create pods/exec in kubeflow"]
    assert gained[0].evidence["answers"]["baseline"] == "not asked"


def test_rbac_without_a_matrix_is_not_verified(make, policy) -> None:
    def drop(data, files):
        del data["rbac"]
    result = _rbac(make, policy, mutate=drop)
    central = next(c for c in result.cells if c.variant == "central-driver")
    assert central.status is Status.NOT_VERIFIED


def test_policy_file_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: kfp-conformance/v1\nkind: ExpectedDifferences\n"
                                       "differences:\n  - id: x\n    description: too short\n")
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path)
    assert "bad.yaml" in info.value.line() and "\n" not in info.value.line()


def test_shipped_policy_rules_cite_the_variants_brief(policy) -> None:
    assert len(policy.rules) >= 8
    assert all("kfp-variants.md §" in rule.reference for rule in policy.rules)


def _bench_module():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_data_is_valid_and_differences_in_it_are_found(tmp_path: Path, policy) -> None:
    """Correctness of the benchmark's generated workload (its timing goals live in benchmarks/)."""
    bench = _bench_module()
    bundles, _ = bench.build(tmp_path, 60)
    assert len(bundles["central-driver"].tasks) == 58
    assert bundles["central-driver"].tasks[7]["path"] == "root/for-loop-2[7]/print-op"
    result = compare_scenario("bench-loop", "standalone", bundles, variants=["sidecar-plugin", "central-driver"],
                              baseline="sidecar-plugin", policy=policy)
    assert blocking(result, "central-driver") == []
    changed = dict(bundles["central-driver"].data)
    changed["tasks"] = [dict(t) for t in changed["tasks"]]
    changed["tasks"][37]["state"] = "FAILED"
    bundles["central-driver"] = Bundle(bundles["central-driver"].path, changed)
    result = compare_scenario("bench-loop", "standalone", bundles, variants=["sidecar-plugin", "central-driver"],
                              baseline="sidecar-plugin", policy=policy)
    assert {f.subject for f in blocking(result, "central-driver") if f.id == "task.state-differs"} == {
        "task root/for-loop-2[37]/print-op"}


def test_rbac_static_and_live_side_by_side_flags_disagreements(make, policy) -> None:
    """Each live SubjectAccessReview row carries the static evaluator's prediction; only disagreements fail."""
    def with_static(data, files):
        for row in data["rbac"]:
            row["static_allowed"] = row["allowed"]
        data["rbac"][0]["static_allowed"] = not data["rbac"][0]["allowed"]

    result = _rbac(make, policy, mutate=with_static)
    central = next(c for c in result.cells if c.variant == "central-driver")
    mismatches = [f for f in central.findings if f.id == "rbac.static-live-mismatch"]
    assert len(mismatches) == 1 and mismatches[0].blocking
    assert mismatches[0].evidence["live"] is not mismatches[0].evidence["static"]
    baseline = next(c for c in result.cells if c.variant == BASELINE)
    assert not [f for f in baseline.findings if f.id == "rbac.static-live-mismatch"]


def _expect_cache(hit: bool):
    """Mutator: the scenario expects a cache hit on the first container task; the driver reports `hit`."""
    def mutate(data, files):
        node = next(n for n in data["driver_nodes"] if n["driver_type"] == "CONTAINER")
        data["scenario"]["expected_cache"] = {node["task_path"]: True}
        outputs = node["outputs"]
        if "result" in outputs:  # central-driver: JSON body, cached-decision omitted when nil
            body = json.loads(outputs["result"])
            body.pop("cached-decision", None)
            if hit:
                body["cached-decision"] = "true"
            outputs["result"] = json.dumps(body, sort_keys=True)
        else:
            outputs["parameters"]["cached-decision"] = "true" if hit else "false"
    return mutate


@pytest.mark.parametrize("variant", VARIANTS)
def test_expected_cache_hit_is_read_from_each_transports_cached_decision(make, policy, variant) -> None:
    missed = compare({variant: make(variant, mutate=_expect_cache(hit=False))}, policy, variants=[variant])
    assert [f.id for f in blocking(missed, variant)] == ["oracle.cache-mismatch"]
    served = compare({variant: make(variant, seed=1, mutate=_expect_cache(hit=True))}, policy, variants=[variant])
    assert not [f for f in findings(served, variant) if f.id == "oracle.cache-mismatch"]
    assert next(c for c in served.cells[0].checks if c.name == "expectations").status is Status.PASS
