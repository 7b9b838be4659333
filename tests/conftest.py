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
def shared_renderer(remote_bases: Path):
    """One Renderer for the whole test session: renders are cached by content hash, so tests share them.

    Its cache is the one the CLI runs of the tests get (tests.livefakes.shared_cache: KFPC_CACHE_DIR, which
    `.ci/run` sets), so an in-process render and a CLI subprocess never render the same overlay twice; xdist
    workers share it too (the render cache takes file locks).
    """
    from harness.render.kustomize import Renderer
    from tests.livefakes import shared_cache

    return Renderer(mirror=remote_bases, cache_dir=shared_cache())


@pytest.fixture(autouse=True)
def _no_retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries at the API boundaries still happen (same attempts, same outcome) but without their backoff
    sleeps: KFPC_RETRY_SCALE=0 is harness.boundary.retry's knob for tests; no test asserts on retry timing. A test
    that sets the variable itself keeps its value."""
    if "KFPC_RETRY_SCALE" not in os.environ:
        monkeypatch.setenv("KFPC_RETRY_SCALE", "0")
