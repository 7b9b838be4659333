"""Image builds from a variant's tree: the docker CLI is faked by an executable on PATH that records argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.plan.images import build_commands, load_image_builds

FAKE_DOCKER = """#!{python}
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@pytest.fixture
def fake_docker(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_DOCKER_LOG": str(log)}
    return env, log


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "kfp"
    (tree / "manifests" / "kustomize").mkdir(parents=True)
    for build in load_image_builds():
        (tree / build.dockerfile).parent.mkdir(parents=True, exist_ok=True)
        (tree / build.dockerfile).write_text("FROM scratch\n")
    return tree


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env)


def test_image_list_matches_kfp_ci_builds() -> None:
    names = [b.name for b in load_image_builds()]
    assert "driver" in names and "launcher" in names and len(names) == 12
    driver = next(b for b in load_image_builds() if b.name == "driver")
    assert (driver.dockerfile, driver.reference) == ("backend/Dockerfile.driver", "kind-registry:5000/driver:latest")


def test_build_fake_docker_builds_and_saves_driver_from_tree(tmp_path: Path, fake_docker) -> None:
    env, log = fake_docker
    tree = _tree(tmp_path)
    result = _cli(["images", "build", "--variant", f"central-driver={tree}", "--only", "driver", "--tag", "ci",
                   "--archive-dir", str(tmp_path / "archives")], env)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        ["info", "--format", "{{.ServerVersion}}"],  # the daemon is checked before any build (exit 2 without one)
        ["build", "-f", str(tree / "backend/Dockerfile.driver"), "-t", "kind-registry:5000/driver:ci", str(tree / ".")],
        ["save", "-o", str(tmp_path / "archives" / "driver.tar"), "kind-registry:5000/driver:ci"],
    ]


def test_build_from_tree_without_dockerfiles_is_one_line_exit_2(tmp_path: Path, fake_docker) -> None:
    env, log = fake_docker
    tree = tmp_path / "manifests-only"  # like ../shared/kfp-trees: manifests, no Dockerfiles
    (tree / "manifests" / "kustomize").mkdir(parents=True)
    result = _cli(["images", "build", "--variant", f"driver-pod={tree}", "--only", "driver"], env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "backend/Dockerfile.driver" in result.stderr
    assert "Traceback" not in result.stderr and not log.exists()


def test_plan_prints_commands_without_running_docker(tmp_path: Path, fake_docker) -> None:
    env, log = fake_docker
    tree = _tree(tmp_path)
    result = _cli(["images", "build", "--variant", f"sidecar-plugin={tree}", "--plan"], env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 12 and not log.exists()
    # tagged per variant by default: the tag `run` expects (harness.plan.build.DEFAULT_LOCAL_TAG)
    assert result.stdout.splitlines() == [" ".join(argv) for argv in build_commands(
        tree, load_image_builds(tag="sidecar-plugin"))]
    assert "kind-registry:5000/driver:sidecar-plugin" in result.stdout
    assert build_commands(tree, load_image_builds(only=["driver"]))[0][:2] == ["docker", "build"]


def test_unknown_image_name_is_refused(tmp_path: Path) -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown image"):
        load_image_builds(only=["nope"])
