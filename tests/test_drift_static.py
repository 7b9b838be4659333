"""Drift attribution over the real PoC trees and their upstream merge-bases (../shared/kfp-bases): each static
finding is `branch`, `upstream-drift` or `both`. Real kustomize and git; nothing faked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.models import Finding, Severity, Source
from harness.static.drift import BOTH, BRANCH, DRIFT, ORIGINS, attribute, merge_base_tree

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kfp_bases(kfp_trees: Path) -> Path:
    path = Path(os.environ.get("KFPC_BASES") or kfp_trees.parent / "kfp-bases")
    if not (path / "central-driver").is_dir():
        pytest.fail(f"{path} has no merge-base trees (export KFPC_BASES=../shared/kfp-bases)")
    return path


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "KFPC_CACHE_DIR": str(cache)})


def _finding(message: str, *, mode: str = "standalone", subject: str = "Service kubeflow/ml-pipeline-driver",
             variants: tuple[str, ...] = ("driver-pod", "central-driver")) -> Finding:
    return Finding("network.unprotected-service", Severity.ERROR, "network", mode, variants, subject, message)


def test_attribute_branch_drift_and_both() -> None:
    base = [_finding("open to every pod"), _finding("old text", subject="Service kubeflow/cache-server")]
    found = attribute([_finding("open to every pod"), _finding("new text", subject="Service kubeflow/cache-server"),
                       _finding("open to every pod", subject="Service kubeflow/new-one"),
                       _finding("open to every pod", mode="tls"),
                       _finding("open to every pod", variants=("sidecar-plugin", "central-driver"))], base)
    assert [f.origin for f in found] == [DRIFT, BOTH, BRANCH, BRANCH, BRANCH]


@pytest.fixture(scope="module")
def drift_runs(kfp_trees: Path, kfp_bases: Path, remote_bases: Path, shared_renderer,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    """static over the three shared trees with the two PoCs' merge-bases, with and without --hide-drift."""
    out = tmp_path_factory.mktemp("drift")
    args = ["static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
            "--base", f"sidecar-plugin={kfp_bases / 'sidecar-plugin'}",
            "--base", f"central-driver={kfp_bases / 'central-driver'}"]
    shown = _cli(*args, "--out", str(out / "shown"), cache=shared_renderer.cache_dir)
    hidden = _cli(*args, "--hide-drift", "--out", str(out / "hidden"), cache=shared_renderer.cache_dir)
    assert shown.returncode == 1 and hidden.returncode == 1, shown.stderr + hidden.stderr
    assert "origins against the merge-bases" in shown.stderr
    return (json.loads((out / "shown" / "static.json").read_text()), (out / "shown" / "static.md").read_text(),
            (out / "hidden" / "static.md").read_text())


def test_every_finding_has_an_origin_and_the_central_drivers_own_changes_are_branch(drift_runs) -> None:
    doc, _md, _hidden = drift_runs
    assert doc["findings"] and all(f["origin"] in ORIGINS for f in doc["findings"])
    assert doc["bases"]["central-driver"]["commit"].startswith("7085e82")
    assert doc["bases"]["sidecar-plugin"]["commit"].startswith("81fc181b")
    assert doc["bases"]["driver-pod"] == doc["sources"]["driver-pod"]  # no --base: its own base
    counts = doc["summary"]["by_origin"]
    assert sum(counts.values()) == len(doc["findings"]) and counts[BRANCH] and counts[DRIFT]

    def origins(check: str, subject: str) -> set[str]:
        return {f["origin"] for f in doc["findings"] if f["id"].startswith(check) and f["subject"] == subject
                and "central-driver" in f["variants"]}

    driver_sa = "ServiceAccount kubeflow/ml-pipeline-driver"
    assert origins("rbac.permission-gained", driver_sa) == {BRANCH}  # its RBAC
    assert origins("rbac.permission-broadened", driver_sa) == {BRANCH}
    assert origins("network.unprotected-service", "Service kubeflow/ml-pipeline-driver") == {BRANCH}  # its Service
    assert origins("tls.driver-ca-missing", "Deployment kubeflow/ml-pipeline-driver, Service kubeflow/"
                   "ml-pipeline-driver") == {BRANCH}  # the TLS CA
    for decision in doc["decisions"]:
        assert decision["origins"] and set(decision["origins"]) <= set(ORIGINS)


def test_static_md_groups_by_origin_and_hide_drift_leaves_only_drift_out(drift_runs) -> None:
    doc, md, hidden = drift_runs
    assert "## Findings by origin" in md and "| upstream-drift |" in md
    drift_only = [f for f in doc["findings"] if f["origin"] == DRIFT and f["severity"] == "warning"
                  and not f["expected"]]
    assert drift_only, "the shared trees have warnings that only upstream drift explains"
    subjects_elsewhere = {f["subject"] for f in doc["findings"] if f["origin"] != DRIFT}
    subject = next(f["subject"] for f in drift_only if f["subject"] not in subjects_elsewhere)
    assert f"**{subject}**" in md
    assert f"**{subject}**" not in hidden
    assert "only from upstream drift hidden (--hide-drift)" in hidden
    # what blocks is the same in both (drift never hides a branch's decision)
    blocks = md.split("## What blocks", 1)[1].split("\n## ", 1)[0]
    assert blocks in hidden


def test_hide_drift_without_base_is_one_line_exit_2(tmp_path: Path, kfp_trees: Path) -> None:
    result = _cli("static", "--sources", str(kfp_trees), "--hide-drift", "--out", str(tmp_path / "o"),
                  cache=tmp_path / "c")
    assert result.returncode == 2 and "--hide-drift needs --base" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o" / "static.json").exists()


def test_merge_base_of_a_git_checkout_is_exported_without_touching_it(tmp_path: Path, kfp_bases: Path) -> None:
    """A checkout whose branch forked `upstream`: merge-base:upstream gives the fork point's tree."""
    repo = tmp_path / "checkout"
    shutil.copytree(kfp_bases / "sidecar-plugin" / "manifests", repo / "manifests")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "upstream", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "upstream"], check=True)
    fork = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([*git, "checkout", "-qb", "feature"], check=True)
    marker = repo / "manifests" / "kustomize" / "BRANCH-ONLY"
    marker.write_text("branch change\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "branch"], check=True)
    source = Source("sidecar-plugin", str(repo), f"path:{repo}", "x")
    tree = merge_base_tree(source, "upstream", tmp_path / "cache")
    assert (tree / "manifests" / "kustomize").is_dir() and not (tree / "manifests" / "kustomize" / "BRANCH-ONLY").exists()
    assert f"commit: {fork}" in (tree / "SOURCE.yaml").read_text()
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    assert status == "" and marker.exists()
