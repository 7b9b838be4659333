"""pytest plugin: the `--kfpc-*` option group, markers and session fixtures over the harness library."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kfpc", "kfp-conformance")
    group.addoption("--kfpc-config", default=None, help="variants/modes catalogue (env KFPC_CONFIG)")


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("static: static tier (no cluster)", "live: needs a cluster (kind or existing)",
                   "variant(name): the variant under test", "mode(name): the install mode under test"):
        config.addinivalue_line("markers", marker)
