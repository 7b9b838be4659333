"""Root conftest: the pytest layer lives in the `pytest_kfp_conformance` plugin (pytest11 entry point).

This file only checks that the plugin is installed, so a run from a bare checkout says how to fix it
instead of failing on unknown `--kfpc-*` options.
"""

from __future__ import annotations

import importlib.metadata

import pytest

# pytester drives the plugin's own tests (tests/test_static_pytest_layer.py)
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    if "kfp_conformance" not in names:
        raise pytest.UsageError("the kfp-conformance pytest plugin is not installed (run: bash scripts/bootstrap.sh)")
