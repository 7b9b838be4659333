"""The static tier end to end over the three real KFP trees, all modes, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def static_run(kfp_trees: Path, remote_bases: Path, shared_renderer, tmp_path_factory) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("static")
    code = main(["static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
                 "--cache-dir", str(shared_renderer.cache_dir), "--out", str(out)])
    return code, json.loads((out / "static.json").read_text()), out


def _find(doc: dict, fid: str, **match: str) -> list[dict]:
    return [f for f in doc["findings"] if f["id"] == fid and all(m in f[k] for k, m in match.items())]


def test_static_over_three_trees_exits_1_with_blocking_findings(static_run) -> None:
    code, doc, out = static_run
    assert code == 1 and doc["summary"]["verdict"] == "fail" and doc["summary"]["blocking"] > 0
    assert doc["modes"] == ["standalone", "multi-user", "tls"]
    assert doc["pairs"] == ["driver-pod..sidecar-plugin", "driver-pod..central-driver",
                            "sidecar-plugin..central-driver"]
    assert "**Verdict: FAIL**" in (out / "static.md").read_text()


def test_every_source_commit_is_recorded(static_run) -> None:
    _, doc, out = static_run
    commits = {name: src["commit"] for name, src in doc["sources"].items()}
    assert commits == {"driver-pod": "81fc181b12e4194eeb5ebf88737e46481f07a96b",
                       "sidecar-plugin": "8c4d9c5022a95a9cfe5baf72ffda25cc3d7f833b",
                       "central-driver": "7a10d17ae29e4a68f39774e39d2d53f0845a2618"}
    assert all(c[:12] in (out / "static.md").read_text() for c in commits.values())
    assert doc["tool"]["kustomize"].startswith("v5.") and doc["tool"]["pinned"] == "true"
    assert len(doc["renders"]) == 3 * 3 * 2  # variants x modes x (ci, product)


def test_driver_identity_rbac_differences_name_the_service_account(static_run) -> None:
    _, doc, _ = static_run
    broadened = _find(doc, "rbac.permission-broadened", subject="ServiceAccount kubeflow/ml-pipeline-driver",
                      message="secrets (any name)")
    assert broadened and all(f["mode"] in ("standalone", "tls", "multi-user") for f in broadened)
    lost = _find(doc, "rbac.permission-lost", mode="multi-user", message="kubeflow-user-example-com")
    assert any("central-driver" in f["variants"] for f in lost)


def test_cluster_scoped_grant_of_namespaced_install_is_found(static_run) -> None:
    _, doc, _ = static_run
    grants = _find(doc, "rbac.cluster-scoped-grant", mode="standalone")
    assert {tuple(f["variants"]) for f in grants} == {("driver-pod", "sidecar-plugin"), ("driver-pod", "central-driver")}
    assert all(f["subject"] == "ClusterRoleBinding argo-workflowtaskset-status-binding" for f in grants)


def test_tls_ca_wiring_difference_names_the_driver_deployment(static_run) -> None:
    _, doc, _ = static_run
    missing = _find(doc, "tls.driver-ca-missing", mode="tls")
    # one per overlay: the CI render and the product render users install
    assert sorted((tuple(f["variants"]), f["evidence"]["overlay"]) for f in missing) == [
        (("central-driver",), "ci"), (("central-driver",), "product")]
    assert "Deployment kubeflow/ml-pipeline-driver" in missing[0]["subject"]


def test_unprotected_new_service_is_the_central_driver(static_run) -> None:
    _, doc, _ = static_run
    exposed = _find(doc, "network.unprotected-service")
    assert {f["subject"] for f in exposed} == {"Service kubeflow/ml-pipeline-driver"}
    assert {f["mode"] for f in exposed} == {"standalone", "multi-user", "tls"}


def test_placeholder_image_in_configmap_string(static_run) -> None:
    _, doc, _ = static_run
    placeholder = _find(doc, "image.placeholder")
    assert placeholder and all(f["subject"] == "ConfigMap kubeflow/ml-pipeline-driver-agent" for f in placeholder)
    assert all("kfp-driver:dummy" in f["message"] for f in placeholder)


def test_golden_files_missing_from_central_tree(static_run) -> None:
    _, doc, _ = static_run
    missing = {f["subject"] for f in _find(doc, "workflow.golden-missing", mode="all")}
    assert {"compiled-workflows/parallel_for_secret.yaml", "compiled-workflows/parallel_for_mount_pvc.yaml",
            "compiled-workflows/nested_parallel_for_secret.yaml",
            "compiled-workflows/pipeline_with_parallelfor_pipeline_param.yaml"} <= missing


def test_pod_metadata_change_applies_to_every_workflow_pod(static_run) -> None:
    _, doc, _ = static_run
    pod_meta = [f for f in _find(doc, "workflow.unexpected-difference") if "podMetadata" in f["message"]]
    assert pod_meta and all(f["severity"] == "error" for f in pod_meta)
    assert any("every" in f["message"] and "sidecar.istio.io/inject" in f["message"] for f in pod_meta)


def test_tree_compared_with_itself_has_no_unexpected_finding(kfp_trees, remote_bases, shared_renderer, tmp_path) -> None:
    code = main(["static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--self-check",
                 "--cache-dir", str(shared_renderer.cache_dir), "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "static.json").read_text())
    assert code == 0
    assert [f for f in doc["findings"] if not f["expected"]] == []
    assert doc["summary"]["self_check"] is True


@pytest.mark.parametrize(("args", "needle"), [
    (["--variant", "nope"], "unknown variant 'nope'"),
    (["--mode", "proxy"], "unknown mode 'proxy'"),
    (["--variant", "driver-pod=/no/such/tree"], "does not exist"),
    (["--sources", "/no/such/dir"], "--sources /no/such/dir is not a directory"),
    (["--remote-bases", "/no/such/mirror"], "remote-base mirror /no/such/mirror does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, needle, kfp_trees, remote_bases, tmp_path) -> None:
    base = ["--sources", str(kfp_trees), "--remote-bases", str(remote_bases)]
    result = subprocess.run([sys.executable, "-m", "harness.cli", "static", *base, *args, "--out", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and needle in result.stderr
    assert not (tmp_path / "o").exists()


def test_broken_overlay_in_config_names_the_file(kfp_trees, remote_bases, tmp_path) -> None:
    import yaml

    raw = yaml.safe_load((REPO / "fixtures" / "variants.yaml").read_text())
    raw["modes"]["standalone"]["ci_overlay"] = ".github/resources/manifests/standalone/missing"
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "harness.cli", "static", "--config", str(tmp_path / "v.yaml"),
                             "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--mode", "standalone",
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 2 and "standalone/missing has no kustomization.yaml" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o" / "static.json").exists()


def test_main_job_static_only_fake_docker_down_runs_static_and_touches_no_cluster(kfp_trees, remote_bases,
                                                                                   shared_renderer, tmp_path) -> None:
    """The README's main command on a machine without a Docker engine (docker is faked, daemon down)."""
    from tests.livefakes import make_fakes

    fakes = make_fakes(tmp_path / "fakes")
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--static-only", "--sources", str(kfp_trees),
                             "--remote-bases", str(remote_bases), "--cache-dir", str(shared_renderer.cache_dir),
                             "--run-id", "r1", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, env=fakes.env(KFPC_FAKE_DOCKER_DAEMON="0"))
    assert result.returncode == 1, result.stderr  # the real trees have blocking findings
    doc = json.loads((tmp_path / "out" / "r1" / "static.json").read_text())
    assert doc["summary"]["blocking"] > 0 and (tmp_path / "out" / "r1" / "static.md").is_file()
    assert fakes.calls() == []  # no docker, kind or kubectl call


def test_render_all_runs_each_distinct_render_once_and_a_modes_checks_once_its_installs_exist(
        kfp_trees: Path, remote_bases: Path, tmp_path: Path) -> None:
    """Real kustomize on an empty cache, two trees x two modes: kustomize runs once per distinct overlay, each
    install's cluster-scoped part is read from the cache as before (static.json's `cached`), and a mode's
    checks start only when every install of that mode exists, in mode order."""
    from harness.config import load_config
    from harness.models import Source
    from harness.render.kustomize import Renderer
    from harness.selection import Selection
    from harness.static.context import StaticContext, render_all

    config = load_config()
    variants = [config.variant("driver-pod"), config.variant("central-driver")]
    modes = [config.mode("standalone"), config.mode("tls")]
    renderer = Renderer(mirror=remote_bases, cache_dir=tmp_path / "cache")
    sources = {v.name: Source(v.name, str(kfp_trees / v.name), "test", "unknown") for v in variants}
    ctx = StaticContext(Selection(config, tuple(variants), tuple(modes), sources, renderer, tmp_path / "out",
                                  tmp_path / "cache"))
    events: list[tuple[str, object]] = []
    render_all(ctx, ("ci",), then=lambda install: events.append(("then", (install.mode, install.which))),
               mode_done=lambda mode: events.append(("mode", (mode.name, sorted(ctx.renders)))))

    kustomize = [c.argv[-1] for c in renderer.runner.log if "kustomize" in c.argv]
    assert len(kustomize) == len(set(kustomize)) == 2 + 4  # one cluster-scoped per tree, one overlay per install
    assert [e for e in events if e[0] == "mode"] == [
        ("mode", ("standalone", [(v.name, "standalone", "ci") for v in sorted(variants, key=lambda v: v.name)])),
        ("mode", ("tls", sorted((v.name, m.name, "ci") for v in variants for m in modes)))]
    assert [e[1] for e in events if e[0] == "then"] == [("standalone", "ci")] * 2 + [("tls", "ci")] * 2
    assert all(r.cluster_scoped.cached and not r.overlay.cached for r in ctx.renders.values())
