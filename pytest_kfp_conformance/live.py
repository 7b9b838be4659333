"""Live-tier options and session fixtures: a thin layer over `harness.live.session` (the lead registers this module).

- `kfpc_live`: one `LiveSession` per pytest run (plan over the selected variants x modes), or a skip with
  the reason "no Docker engine / no cluster provider" when neither kind+Docker nor an existing kubeconfig
  is usable. Skipped is reported as skipped, never as passed.
- `kfpc_cluster`: session-scoped and indirectly parametrised with `<variant>.<mode>`; xdist-safe through the
  ledger (first worker creates and installs, the others wait and reuse; `--kfpc-max-clusters` is enforced
  host-wide). pytest finishes a parametrised session fixture before it sets up the next parameter, so a
  worker holds one cluster at a time; the cluster is deleted when its last holder releases it, unless kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cli.common import default_kubeconfig
from harness.cluster.base import ClusterHandle, new_run_id, shared_run_id
from harness.errors import HarnessError
from harness.plan.build import KEEP_CHOICES

LIVE_KEY = pytest.StashKey[Any]()
RUN_ID_KEY = pytest.StashKey[str]()
FAILED_PAIRS_KEY = pytest.StashKey[set[str]]()  # "<variant>.<mode>" of clusters a failed test used
NO_PROVIDER = "no Docker engine / no cluster provider"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kfpc", "kfp-conformance")
    group.addoption("--kfpc-provider", choices=("kind", "existing"), default=os.environ.get("KFPC_PROVIDER", "kind"),
                    help="where live clusters come from (env KFPC_PROVIDER)")
    group.addoption("--kfpc-kubeconfig", default=None, help="--kfpc-provider existing: kubeconfig file")
    group.addoption("--kfpc-context", default=None, help="--kfpc-provider existing: context")
    group.addoption("--kfpc-keep-clusters", choices=KEEP_CHOICES, default="never",
                    help="keep clusters after the session: never, on-failure, always")
    group.addoption("--kfpc-reuse-clusters", action="store_true",
                    help="reuse a ready cluster kept by an earlier run for the same variant and mode")
    group.addoption("--kfpc-max-clusters", type=int, default=2, help="clusters alive at once on this host (default 2)")
    group.addoption("--kfpc-driver-image", action="append", default=[], metavar="VARIANT=REF",
                    help="driver image built from VARIANT's branch; repeatable")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--kfpc-max-clusters") < 1:
        raise pytest.UsageError("--kfpc-max-clusters must be at least 1 (kind is unstable beyond 3 per host)")
    if config.getoption("--kfpc-provider") == "existing" and not (
            config.getoption("--kfpc-kubeconfig") or default_kubeconfig()):
        raise pytest.UsageError("--kfpc-provider existing needs --kfpc-kubeconfig PATH (or KUBECONFIG)")
    # One run id for the controller and every xdist worker (PYTEST_XDIST_TESTRUNUID), so they share clusters.
    config.stash[RUN_ID_KEY] = shared_run_id(os.environ.get("KFPC_RUN_ID"),
                                             os.environ.get("PYTEST_XDIST_TESTRUNUID")) or new_run_id()


def provider_unavailable(config: pytest.Config) -> str:
    """Why no cluster can be had here, or "" (kind needs the kind binary and a Docker engine that answers)."""
    from harness.boundary.proc import Runner

    if config.getoption("--kfpc-provider") == "existing":
        return ""
    runner = Runner()
    try:
        runner.which("kind")
        runner.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except HarnessError as exc:
        return f"{NO_PROVIDER} ({exc.problem})"
    return ""


def live_session(config: pytest.Config) -> Any:
    """Build the session once per process: plan over every selected pair; scenarios are run per test."""
    if LIVE_KEY not in config.stash:
        from harness.cli.common import parse_driver_images
        from harness.live.session import LiveOptions, LiveSession, existing_handle, make_plan
        from pytest_kfp_conformance.plugin import kfpc_selection_for

        selection = kfpc_selection_for(config)
        run_id = config.stash[RUN_ID_KEY]
        selection = selection.with_out_dir(selection.out_dir / run_id)
        options = LiveOptions(
            run_id=run_id, provider=config.getoption("--kfpc-provider"), keep=config.getoption("--kfpc-keep-clusters"),
            reuse=config.getoption("--kfpc-reuse-clusters"), max_clusters=config.getoption("--kfpc-max-clusters"),
            kubeconfig=config.getoption("--kfpc-kubeconfig") or default_kubeconfig(),
            context=config.getoption("--kfpc-context"), state_dir=os.environ.get("KFPC_STATE_DIR") or None,
            driver_images=parse_driver_images(config.getoption("--kfpc-driver-image"), [v.name for v in selection.variants]))
        _provider, existing = existing_handle(options)
        plan = make_plan(selection, [], options, existing)
        session = LiveSession(selection, plan, options)
        session.prepare()
        config.stash[LIVE_KEY] = session
    return config.stash[LIVE_KEY]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember which cluster a failed test used, so its teardown knows the outcome (as e2e-framework's
    teardown sees `t.Failed()`): `--kfpc-keep-clusters on-failure` keeps it and its logs are exported."""
    report = yield
    callspec = getattr(item, "callspec", None)
    key = callspec.params.get("kfpc_cluster") if callspec else None
    if report.failed and key:
        item.config.stash.setdefault(FAILED_PAIRS_KEY, set()).add(key)
    return report


@pytest.fixture(scope="session")
def kfpc_live(request: pytest.FixtureRequest) -> Any:
    reason = provider_unavailable(request.config)
    if reason:
        pytest.skip(reason)
    try:
        return live_session(request.config)
    except HarnessError as exc:
        pytest.fail(exc.line(), pytrace=False)


@pytest.fixture(scope="session")
def kfpc_cluster(request: pytest.FixtureRequest, kfpc_live: Any) -> Iterator[ClusterHandle]:
    """A ready, installed cluster for `request.param` = "<variant>.<mode>" (parametrise indirectly)."""
    key = request.param
    if key not in kfpc_live.pairs:
        pytest.skip(f"{key} is not in the selected variants x modes")
    from harness.live.session import PairResult

    result = PairResult(key, kfpc_live.pairs[key].cluster.name)
    try:
        with kfpc_live.cluster(key, result) as handle:
            yield handle
            # session fixtures are torn down after the last test that used them reported its outcome
            if key in request.config.stash.get(FAILED_PAIRS_KEY, set()):
                result.status, result.error = "failed", "a test on this cluster failed"
    except HarnessError as exc:
        pytest.fail(exc.line(), pytrace=False)
