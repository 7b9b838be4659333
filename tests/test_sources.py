"""Source resolution: local trees, `--sources DIR`, and git URLs cloned for real from a local repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import SourceError
from harness.render.sources import parse_git_spec, resolve_source


def test_sources_dir_tree_records_commit_from_source_yaml(kfp_trees: Path, tmp_path: Path) -> None:
    src = resolve_source("", "central-driver", sources_dir=kfp_trees, cache_dir=tmp_path)
    assert src.commit == "7a10d17ae29e4a68f39774e39d2d53f0845a2618"
    assert src.repository == "droctothorpe/pipelines"
    assert src.origin.startswith("sources-dir:")
    assert Path(src.path) == (kfp_trees / "central-driver").resolve()


def test_missing_path_names_problem_and_fix(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        resolve_source(str(tmp_path / "nope"), "driver-pod", cache_dir=tmp_path)
    assert "does not exist" in err.value.line() and "--variant NAME=PATH" in err.value.line()


def test_directory_that_is_not_a_kfp_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="not a KFP tree"):
        resolve_source(str(tmp_path / "empty"), "driver-pod", cache_dir=tmp_path)


def test_no_source_and_no_sources_dir_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="--sources DIR"):
        resolve_source("", "driver-pod", sources_dir=None, cache_dir=tmp_path)


@pytest.mark.parametrize(("spec", "expected"), [
    ("https://github.com/kubeflow/pipelines@master", ("https://github.com/kubeflow/pipelines", "master")),
    ("https://github.com/ntny/pipelines#central-driver-poc-backup",
     ("https://github.com/ntny/pipelines", "central-driver-poc-backup")),
    ("git@github.com:kubeflow/pipelines.git@feature/x", ("git@github.com:kubeflow/pipelines.git", "feature/x")),
    ("/some/local/path", None),
])
def test_parse_git_spec(spec: str, expected: tuple[str, str] | None) -> None:
    assert parse_git_spec(spec) == expected


def test_git_url_without_ref_is_refused() -> None:
    with pytest.raises(SourceError, match="no ref"):
        parse_git_spec("https://github.com/kubeflow/pipelines")


def _git_repo_from_tree(tree: Path, dest: Path) -> str:
    """A real git repository holding the manifests of a shared tree (no network: file:// URL)."""
    shutil.copytree(tree / "manifests" / "kustomize" / "base", dest / "manifests" / "kustomize" / "base")
    run = lambda *a: subprocess.run(["git", "-C", str(dest), *a], check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("add", ".")
    run("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "tree")
    run("tag", "v1")
    return run("rev-parse", "HEAD").stdout.strip()


def test_git_source_is_cloned_into_cache_with_its_commit(kfp_trees: Path, tmp_path: Path) -> None:
    commit = _git_repo_from_tree(kfp_trees / "driver-pod", tmp_path / "repo")
    src = resolve_source(f"file://{tmp_path / 'repo'}@v1", "driver-pod", cache_dir=tmp_path / "cache")
    assert src.commit == commit
    assert src.origin == f"git:file://{tmp_path / 'repo'}@v1"
    assert Path(src.path).is_relative_to(tmp_path / "cache")
    # a second resolution reuses the cached clone
    again = resolve_source(f"file://{tmp_path / 'repo'}@v1", "driver-pod", cache_dir=tmp_path / "cache")
    assert again.path == src.path


def test_git_unknown_ref_is_one_clear_error(kfp_trees: Path, tmp_path: Path) -> None:
    _git_repo_from_tree(kfp_trees / "driver-pod", tmp_path / "repo")
    with pytest.raises(SourceError) as err:
        resolve_source(f"file://{tmp_path / 'repo'}@no-such-ref", "driver-pod", cache_dir=tmp_path / "cache")
    line = err.value.line()
    assert "no-such-ref" in line and "\n" not in line and "--variant driver-pod=PATH" in line


def test_local_git_checkout_records_commit_and_dirty_flag(kfp_trees: Path, tmp_path: Path) -> None:
    commit = _git_repo_from_tree(kfp_trees / "driver-pod", tmp_path / "repo")
    clean = resolve_source(str(tmp_path / "repo"), "driver-pod", cache_dir=tmp_path)
    assert (clean.commit, clean.dirty, clean.ref) == (commit, False, "main")
    (tmp_path / "repo" / "manifests" / "new.yaml").write_text("x: 1\n")
    assert resolve_source(str(tmp_path / "repo"), "driver-pod", cache_dir=tmp_path).dirty is True
