"""The static-tier adapters over real renders of the shared trees (sidecar-plugin -> central-driver)."""

from __future__ import annotations

import json

import pytest

from harness.config import load_config
from harness.render.kustomize import Renderer
from harness.selection import Selection
from harness.static.context import Pair, StaticContext
from harness.static.install_checks import CHECKS

VARIANTS = ("sidecar-plugin", "central-driver")


@pytest.fixture(scope="module")
def context(install_render, kfp_trees, remote_bases, tmp_path_factory):
    config = load_config()
    cache = tmp_path_factory.mktemp("install-checks")
    selection = Selection(config, [config.variant(v) for v in VARIANTS], list(config.modes.values()), {},
                          Renderer(mirror=remote_bases, cache_dir=cache), cache / "out", cache)
    ctx = StaticContext(selection)
    for variant in VARIANTS:
        for mode in config.modes:
            ctx.renders[(variant, mode, "ci")] = install_render(variant, mode)
    return ctx


def run(context, name, mode):
    config = context.selection.config
    pairs = [Pair(config.variant(VARIANTS[0]), config.variant(VARIANTS[1]))]
    findings, data = CHECKS[name](context, pairs, config.mode(mode))
    json.dumps(data)
    return {(f.id, f.subject) for f in findings}, findings


def test_inventory_and_orphans_adapters(context):
    ids, findings = run(context, "inventory", "standalone")
    assert ("inventory.added", "Service kubeflow/ml-pipeline-driver") in ids
    assert all(f.evidence["overlay"] == "ci" for f in findings)
    ids, _ = run(context, "orphans", "multi-user")
    assert ("migration.orphan", "ServiceAccount kubeflow-user-example-com/ml-pipeline-driver-agent-executor-plugin") in ids
    assert ("migration.orphan", "Deployment kubeflow/ml-pipeline-driver") in ids  # the rollback direction


def test_crosscheck_and_validate_adapters(context):
    ids, _ = run(context, "crosscheck", "tls")
    assert ("tls.driver-ca-missing", "Deployment kubeflow/ml-pipeline-driver, Service kubeflow/ml-pipeline-driver") in ids
    assert ("network.unprotected-service", "Service kubeflow/ml-pipeline-driver") in ids
    ids, findings = run(context, "validate", "tls")
    assert {i for i, _ in ids} == {"validate.no-schema"}
    assert {f.subject for f in findings} == {"Certificate (cert-manager.io/v1)", "Issuer (cert-manager.io/v1)"}
