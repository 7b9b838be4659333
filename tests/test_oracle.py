"""The local oracle: every oracle-supported scenario runs offline with kfp.local and matches its declarations.

These run the real kfp.local SubprocessRunner (one Python process per task, no venv, no pip, no network).
The whole catalogue takes about a minute on 2 cores, run two scenarios at a time.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from harness.catalogue import oracle
from harness.catalogue import scenarios as catalogue
from harness.cli import main

SPECS = {spec.name: spec for spec in catalogue.discover()}
SUPPORTED = sorted(name for name, spec in SPECS.items() if spec.oracle_supported)
DECLARED = sorted(name for name, spec in SPECS.items() if not spec.oracle_supported)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, oracle.OracleCheck]:
    out = tmp_path_factory.mktemp("oracle")
    return {check.scenario: check for check in oracle.check_catalogue(SPECS.values(), out, jobs=2)}


@pytest.mark.parametrize("name", SUPPORTED)
def test_oracle_run_offline_equals_declared_expectations(name: str, checks: dict[str, oracle.OracleCheck]) -> None:
    check = checks[name]
    assert check.status == "passed", "\n".join(check.mismatches)
    spec, result = SPECS[name], check.result
    assert result is not None and result.state == spec.expected_state
    assert result.data["kfp_version"] == "2.17.3"
    for path in spec.expected_outputs:
        assert result.tasks[path]["state"] == "SUCCEEDED"
    written = json.loads(result.path.read_text())
    assert written == result.data and written["scenario"] == name


@pytest.mark.parametrize("name", DECLARED)
def test_declared_only_scenarios_are_skipped_with_their_reason(name: str, checks: dict[str, oracle.OracleCheck]) -> None:
    check = checks[name]
    assert check.status == "skipped" and check.reason == SPECS[name].oracle_reason and check.result is None


def test_oracle_records_loop_iterations_nested_dags_and_failed_tasks(checks: dict[str, oracle.OracleCheck]) -> None:
    loops = checks["loops"].result.tasks
    assert sorted(p for p in loops if p.endswith("/square-2")) == [
        "root/for-loop-3[0]/square-2", "root/for-loop-3[1]/square-2", "root/for-loop-3[2]/square-2"]
    exit_handler = checks["exit-handler"].result
    assert exit_handler.tasks["root/exit-handler-1/fail-after"] == {"state": "FAILED", "outputs": {}}
    assert exit_handler.tasks["root/exit-handler-1"]["state"] == "FAILED"
    assert "fail-after" in exit_handler.data["error"]
    artifacts = checks["artifacts"].result.tasks["root/make-dataset"]["outputs"]["dataset"]
    assert artifacts["digest"] == catalogue.text_digest("x,y\n1,2\n3,4\n5,6\n")


def test_oracle_reports_a_wrong_declaration(checks: dict[str, oracle.OracleCheck]) -> None:
    """The same recorded run, checked against wrong declarations: every kind of mismatch is named."""
    result = checks["failing-task"].result
    wrong = replace(SPECS["failing-task"], expected_state="SUCCEEDED", failing_tasks=("root/produce",),
                    expected_outputs={"root/produce": {"Output": 41, "extra": 1}, "root/never-runs": {"Output": 1}})
    problems = oracle.check(wrong, result)
    assert any(p.startswith("run state FAILED, expected SUCCEEDED") for p in problems)
    assert "root/produce: state SUCCEEDED, expected FAILED" in problems
    assert "root/produce.Output: expected 41, oracle recorded 42" in problems
    assert any(p.startswith("root/produce: output 'extra' missing") for p in problems)
    assert any(p.startswith("root/never-runs: task did not run") for p in problems)


def test_artifact_expectations_compare_only_declared_keys() -> None:
    observed = {"type": "system.Model", "metadata": {"a": 1}, "digest": "sha256:00"}
    assert oracle.matches(catalogue.artifact("system.Model", metadata={"a": 1}), observed)
    assert not oracle.matches(catalogue.artifact("system.Model", metadata={"a": 2}), observed)
    assert not oracle.matches(catalogue.artifact("system.Dataset"), observed)
    assert oracle.matches([catalogue.artifact("system.Model")], [observed])


def test_bundle_oracle_objects_match_the_bundle_schema(checks: dict[str, oracle.OracleCheck]) -> None:
    schema = json.loads((REPO / "harness" / "schemas" / "bundle.schema.json").read_text())
    oracle_schema = schema["properties"]["oracle"] if "oracle" in schema.get("properties", {}) else schema["$defs"]["oracle"]
    available = oracle.bundle_oracle(SPECS["parameter-chain"], checks["parameter-chain"].result)
    jsonschema.validate(available, oracle_schema)
    assert available["outputs"]["root/add-2"] == {"Output": 17}
    missing = oracle.bundle_oracle(SPECS["pvc"], None)
    jsonschema.validate(missing, oracle_schema)
    assert missing == {"available": False, "reason": SPECS["pvc"].oracle_reason}


def test_scenarios_command_runs_the_oracle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scenarios", "--only", "single-component", "--only", "pvc", "--oracle", str(tmp_path),
                 "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = {r["name"]: r for r in json.loads(captured.out)["scenarios"]}
    assert rows["single-component"]["oracle_status"] == "passed"
    assert rows["pvc"]["oracle_status"] == "skipped"  # declared values: never reported as passed
    assert "1/1 scenario(s) match their declarations, 1 declared only" in captured.err
    assert oracle.load_result(tmp_path, "single-component").tasks["root/say-hello"]["outputs"] == {
        "Output": "Hello, conformance!"}
