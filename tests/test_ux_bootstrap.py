"""scripts/bootstrap.sh installs from the lock file, re-installs when it changes, and the CI venv caches key on
files that exist. The venv's Python is faked (a script that records its argv), so no package is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "requirements.lock", tmp_path / "requirements.lock")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _bootstrap(project: Path, *args: str) -> tuple[list[str], str, int]:
    log = project / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["bash", "scripts/bootstrap.sh", *args], cwd=project, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return calls, proc.stderr, proc.returncode


def test_bootstrap_fake_python_installs_from_lock_then_project_without_deps(tmp_path: Path) -> None:
    project = _project(tmp_path)
    calls, stderr, code = _bootstrap(project)
    assert code == 0, stderr
    assert "-m pip install -q -r requirements.lock" in calls
    assert "-m pip install -q --no-deps -e ." in calls
    assert calls.index("-m pip install -q -r requirements.lock") < calls.index("-m pip install -q --no-deps -e .")
    assert not any("[dev]" in c for c in calls), "resolving pyproject's ranges again would bypass the lock"
    assert stderr == "", "progress must be quiet when stderr is not a terminal"


def test_bootstrap_fake_python_reinstalls_only_when_lock_or_pyproject_changes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _bootstrap(project)[0]
    assert _bootstrap(project)[0] == [], "an unchanged lock must not re-install"
    # a checkout (or a restored CI cache) makes every file newer than the stamp: content decides, not mtime
    for name in ("pyproject.toml", "requirements.lock"):
        (project / name).touch()
    assert _bootstrap(project)[0] == []
    with (project / "requirements.lock").open("a") as lock:
        lock.write("six==1.17.0\n")
    assert "-m pip install -q -r requirements.lock" in _bootstrap(project)[0]
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n")
    assert "-m pip install -q --no-deps -e ." in _bootstrap(project)[0]


def test_bootstrap_fake_python_progress_on_request_and_bad_option(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _calls, stderr, code = _bootstrap(project, "--progress")
    assert code == 0
    assert "installing kfp-conformance and its locked dependencies" in stderr
    assert re.search(r"pip install done in \d+s", stderr)
    _calls, stderr, code = _bootstrap(project, "--bogus")
    assert code == 2 and stderr.count("\n") == 1 and "--bogus" in stderr


def test_lock_pins_every_requirement_of_pyproject() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+", lock, re.M)}
    unpinned = [line for line in lock.splitlines() if line and not line.startswith((" ", "#")) and "==" not in line]
    assert unpinned == []
    text = (ROOT / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', text.split("[project.scripts]")[0], re.M)
    names = {d.lower().replace("_", "-") for d in declared} - {"setuptools", "kfp-conformance"}
    assert names and names <= pinned, sorted(names - pinned)


def test_workflow_venv_cache_keys_hash_files_that_exist() -> None:
    checked = 0
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        data = yaml.safe_load(workflow.read_text())
        for job in (data.get("jobs") or {}).values():
            steps = job.get("steps") or []
            # where each job checks the harness out (`path:` of actions/checkout without another repository)
            roots = {s["with"]["path"] for s in steps if "actions/checkout" in str(s.get("uses", ""))
                     and (s.get("with") or {}).get("path") in ("harness", "main")}
            for step in steps:
                key = str(((step.get("with") or {}).get("key")) or "")
                for args in re.findall(r"hashFiles\(([^)]*)\)", key):
                    for pattern in re.findall(r"'([^']+)'", args):
                        first, _, rest = pattern.partition("/")
                        assert first in roots, f"{workflow.name}: {pattern} is outside the harness checkout"
                        assert (ROOT / rest).is_file(), f"{workflow.name}: cache key hashes missing {pattern}"
                        checked += 1
                if ".venv" in str((step.get("with") or {}).get("path", "")):
                    assert "requirements.lock" in key, f"{workflow.name}: venv cache key ignores the lock"
    assert checked >= 5
