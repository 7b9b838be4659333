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
