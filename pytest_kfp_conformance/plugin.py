"""pytest plugin: the `--kfpc-*` option group, markers and the static-tier fixtures.

A thin layer over the harness library: options become the same `Selection` the CLI builds, and the
static checks in `scenarios/test_static.py` call the same check functions as `kfp-conformance static`.
Option problems are raised as `pytest.UsageError` from `pytest_configure`, one sentence each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError

SELECTION_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kfpc", "kfp-conformance")
    group.addoption("--kfpc-config", default=os.environ.get("KFPC_CONFIG"), help="variants/modes catalogue (env KFPC_CONFIG)")
    group.addoption("--kfpc-variant", action="append", default=[], metavar="NAME[:LABEL][=SOURCE]",
                    help="variant to include, optionally with its source; NAME:LABEL is another build of the "
                         "config entry NAME (central-driver:pr=../checkout); repeatable (default: all)")
    group.addoption("--kfpc-sources", default=os.environ.get("KFPC_SOURCES"), metavar="DIR",
                    help="directory with one KFP tree per variant (env KFPC_SOURCES)")
    group.addoption("--kfpc-mode", action="append", default=[], help="install mode; repeatable (default: all)")
    group.addoption("--kfpc-remote-bases", default=os.environ.get("KFPC_REMOTE_BASES"), metavar="DIR",
                    help="offline mirror of kustomize remote bases (env KFPC_REMOTE_BASES)")
    group.addoption("--kfpc-cache-dir", default=None, metavar="DIR", help="clones and renders cache")
    group.addoption("--kfpc-out", default="out", metavar="DIR", help="output directory for evidence")
    group.addoption("--kfpc-baseline-pairs", action="store_true",
                    help="compare only the baseline against each other variant (default: every pair)")
    group.addoption("--kfpc-self-check", action="store_true", help="compare each variant's tree with itself")
    group.addoption("--kfpc-bundles", action="append", default=[], metavar="DIR",
                    help="evidence bundle directories to compare (scenarios/test_compare.py); repeatable")
    group.addoption("--kfpc-policy", default=None, metavar="DIR", help="declared expected differences (fixtures/policy)")
    group.addoption("--kfpc-static", default=None, metavar="STATIC_JSON",
                    help="the static tier's static.json for scenarios/test_compare.py (as `report --static`)")
    group.addoption("--kfpc-known-findings", default=None, metavar="FILE",
                    help="accepted findings for scenarios/test_compare.py (as `report --known-findings`)")


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("static: static tier (no cluster)", "live: needs a cluster (kind or existing)",
                   "kfpc_live(what): expand over the selection: scenarios, security or migration",
                   "variant(name): the variant under test", "mode(name): the install mode under test"):
        config.addinivalue_line("markers", marker)
    if config.getoption("--kfpc-baseline-pairs") and config.getoption("--kfpc-self-check"):
        raise pytest.UsageError("--kfpc-baseline-pairs and --kfpc-self-check exclude each other: pick one")
    validate_options(config)


def validate_options(config: pytest.Config) -> None:
    """Cheap checks of the selection options before collection (sources are resolved lazily)."""
    from pathlib import Path

    from harness.config import load_config
    from harness.selection import parse_variant_args

    try:
        catalogue = load_config(config.getoption("--kfpc-config"))
        parse_variant_args(config.getoption("--kfpc-variant"), catalogue)
        for mode in config.getoption("--kfpc-mode"):
            catalogue.mode(mode)
    except HarnessError as exc:
        raise pytest.UsageError(exc.line()) from None
    for option in ("--kfpc-sources", "--kfpc-remote-bases"):
        value = config.getoption(option)
        if value and not Path(value).is_dir():
            raise pytest.UsageError(f"{option} {value} is not a directory (point it at an existing directory)")


def selection_request(config: pytest.Config) -> Any:
    """The pytest options (with their environment defaults) as the library's selection request."""
    from harness.cli.common import default_cache_dir
    from harness.selection import SelectionRequest

    def path(option: str) -> Path | None:
        value = config.getoption(option)
        return Path(value) if value else None

    return SelectionRequest(cache_dir=path("--kfpc-cache-dir") or default_cache_dir(), variants=tuple(config.getoption("--kfpc-variant")),
                            modes=tuple(config.getoption("--kfpc-mode")), config=path("--kfpc-config"),
                            sources=path("--kfpc-sources"), remote_bases=path("--kfpc-remote-bases"),
                            out=Path(config.getoption("--kfpc-out")))


def kfpc_selection_for(config: pytest.Config) -> Any:
    """Resolve the selection once per session (sources and binaries are checked before any test runs)."""
    if SELECTION_KEY not in config.stash:
        from harness.selection import resolve_selection

        problem = ""
        try:
            config.stash[SELECTION_KEY] = resolve_selection(selection_request(config))
        except HarnessError as exc:
            problem = exc.line()
        if problem:  # sources resolve during collection (a clone may be needed): one line, no traceback
            pytest.fail(f"kfp-conformance: {problem}", pytrace=False)
    return config.stash[SELECTION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "static_case" in metafunc.fixturenames:
        _generate_static_cases(metafunc)
    if metafunc.definition.get_closest_marker("kfpc_live"):
        from pytest_kfp_conformance.generate import generate_live

        generate_live(metafunc, kfpc_selection_for(metafunc.config))


def _generate_static_cases(metafunc: pytest.Metafunc) -> None:
    """Expand `static_case` into one test per (check, mode, variant pair) — ids `[check-mode-base..other]`."""
    from harness.static.context import variant_pairs
    from harness.static.registry import MODELESS
    from harness.static.runner import iter_checks

    config = metafunc.config
    selection = kfpc_selection_for(config)
    pairs = variant_pairs(selection, baseline_only=config.getoption("--kfpc-baseline-pairs"),
                          self_check=config.getoption("--kfpc-self-check"))
    cases, ids = [], []
    for name, _check in iter_checks():
        modes = selection.modes[:1] if name in MODELESS else selection.modes
        for mode in modes:
            for pair in pairs:
                cases.append((name, mode.name, pair))
                ids.append(f"{name}-{'all' if name in MODELESS else mode.name}-{pair.label}")
    metafunc.parametrize("static_case", cases, ids=ids)


@pytest.fixture(scope="session")
def kfpc_selection(pytestconfig: pytest.Config) -> Any:
    return kfpc_selection_for(pytestconfig)


@pytest.fixture(scope="session")
def kfpc_static_context(kfpc_selection: Any) -> Any:
    """Every (variant, mode, overlay) rendered once per session."""
    from harness.static.context import StaticContext, render_all

    ctx = StaticContext(kfpc_selection)
    render_all(ctx)
    return ctx
