"""Fixtures for the harness's own tests: where the real KFP trees and the remote-base mirror are.

The data lives in ../shared (never copied into the project); `.ci/run` exports KFPC_SOURCES and
KFPC_REMOTE_BASES. A missing tree fails the test with the fix, rather than skipping it silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")


def _shared_path(env: str, default: Path) -> Path:
    path = Path(os.environ.get(env) or default)
    if not path.is_dir():
        pytest.fail(f"{env}={path} is not a directory (export {env}, or run `bash .ci/run`)")
    return path


@pytest.fixture(scope="session")
def kfp_trees() -> Path:
    """The directory holding one KFP tree per variant (../shared/kfp-trees)."""
    return _shared_path("KFPC_SOURCES", REPO.parent / "shared" / "kfp-trees")


@pytest.fixture(scope="session")
def remote_bases() -> Path:
    """The offline mirror of kustomize remote bases (../shared/remote-bases)."""
    return _shared_path("KFPC_REMOTE_BASES", REPO.parent / "shared" / "remote-bases")


@pytest.fixture(scope="session")
def install_render(kfp_trees: Path, shared_renderer):
    """`install_render(variant, mode, which="ci")` -> harness.render.kustomize.InstallRender of a shared tree,
    rendered once per session with the real pinned kustomize and the offline mirror."""
    from harness.config import load_config

    config = load_config()
    renderer = shared_renderer
    done: dict[tuple[str, str, str], object] = {}

    def render(variant: str, mode: str, which: str = "ci"):
        key = (variant, mode, which)
        if key not in done:
            done[key] = renderer.render_install(kfp_trees / variant, config.mode(mode), which)
        return done[key]

    return render


@pytest.fixture(scope="session")
def shared_renderer(remote_bases: Path, tmp_path_factory: pytest.TempPathFactory):
    """One Renderer for the whole test session: renders are cached by content hash, so tests share them.

    The cache lives in KFPC_CACHE_DIR when set (`.ci/run` sets it), else in a session temp dir.
    """
    from harness.render.kustomize import Renderer

    cache = Path(os.environ["KFPC_CACHE_DIR"]) / "tests" if os.environ.get("KFPC_CACHE_DIR") \
        else tmp_path_factory.mktemp("render-cache")
    return Renderer(mirror=remote_bases, cache_dir=cache)
