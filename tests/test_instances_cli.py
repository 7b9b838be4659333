"""Two builds of one variant (`--variant NAME:LABEL=SOURCE`): the shared central-driver tree as
`central-driver:base` against a copy with one RBAC change as `central-driver:pr`, through the CLI, the pytest
layer, the CI matrix and the report. Real trees, real kustomize; nothing faked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cluster.base import cluster_name
from harness.config import load_config
from harness.errors import ConfigError
from harness.plan.build import PlanOptions, local_tag

REPO = Path(__file__).resolve().parent.parent
ROLE = "manifests/kustomize/base/pipeline/ml-pipeline-driver-role.yaml"
SCENARIO = str(REPO / "scenarios" / "test_static.py")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.fixture(scope="module")
def pr_tree(kfp_trees: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared central-driver tree with one RBAC change: its driver Role may also delete workflows."""
    tree = tmp_path_factory.mktemp("pr") / "central-driver"
    shutil.copytree(kfp_trees / "central-driver", tree)
    role = tree / ROLE
    role.chmod(0o644)
    text = role.read_text()
    changed = text.replace("  resources: [workflows]\n  verbs: [get, list]", "  resources: [workflows]\n  verbs: [get, list, delete]")
    assert changed != text, "the shared central-driver Role no longer has the rule this test changes"
    role.write_text(changed)
    return tree


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KFPC_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO)


def test_instance_takes_behaviour_from_its_entry_under_its_own_name() -> None:
    config = load_config()
    pr = config.variant("central-driver:pr")
    assert pr.name == "central-driver:pr" and pr.entry == "central-driver"
    assert pr.driver == config.variant("central-driver").driver
    expanded = config.with_instances(["central-driver:pr", "central-driver:base"])
    assert list(expanded.variants) == ["driver-pod", "sidecar-plugin", "central-driver", "central-driver:pr",
                                       "central-driver:base"]
    for bad in ("central-driver:PR", "central-driver:", "central-driver:a:b", "central-driver:-x"):
        with pytest.raises(ConfigError, match="invalid label"):
            config.variant(bad)
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        config.variant("nope:pr")


def test_instance_names_become_dns_labels_and_image_tags() -> None:
    names = {cluster_name(run, f"central-driver:{label}", mode) for run in ("plan", "0a1b2c3d")
             for label in ("base", "pr") for mode in ("standalone", "multi-user", "tls")}
    assert len(names) == 12 and all(DNS_LABEL.match(n) for n in names)
    assert cluster_name("r1", "central-driver:pr", "tls") == "kfpc-r1-central-driver-pr-tls"
    assert local_tag(PlanOptions(run_id="plan"), "central-driver:pr", "tls") == "central-driver-pr"


def test_same_variant_twice_without_a_label_is_refused_with_the_label_fix(tmp_path: Path, kfp_trees: Path) -> None:
    result = _cli("static", "--variant", f"central-driver={kfp_trees / 'central-driver'}", "--variant",
                  f"central-driver={kfp_trees / 'central-driver'}", "--out", str(tmp_path / "out"),
                  cache=tmp_path / "cache")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--variant central-driver:base=SOURCE --variant central-driver:pr=SOURCE" in result.stderr
    assert not (tmp_path / "out" / "static.json").exists()


def test_static_cli_base_against_pr_reports_exactly_the_rbac_change(
        tmp_path: Path, pr_tree: Path, kfp_trees: Path, remote_bases: Path, shared_renderer) -> None:
    out = tmp_path / "out"
    result = _cli("static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--variant",
                  "central-driver:base", "--variant", f"central-driver:pr={pr_tree}", "--out", str(out),
                  cache=shared_renderer.cache_dir)
    assert result.returncode == 1, result.stderr
    doc = json.loads((out / "static.json").read_text())
    assert set(doc["sources"]) == {"central-driver:base", "central-driver:pr"}
    assert doc["sources"]["central-driver:base"]["path"] == str((kfp_trees / "central-driver").resolve())
    compared = [f for f in doc["findings"] if len(f["variants"]) == 2]
    # between the two builds: the Role's changed verb and the permission it gives, in every mode, nothing else
    assert {(f["id"], f["subject"]) for f in compared} == {
        ("inventory.changed", "Role kubeflow/ml-pipeline-driver"),
        ("rbac.permission-gained", "ServiceAccount kubeflow/ml-pipeline-driver")}
    assert {f["mode"] for f in compared} == {"standalone", "multi-user", "tls"}
    assert all("rules[2].verbs[2]" in f["message"] for f in compared if f["id"] == "inventory.changed")
    gained = [f for f in compared if f["id"] == "rbac.permission-gained"]
    assert all(f["variants"] == ["central-driver:base", "central-driver:pr"] and "can delete argoproj.io/workflows"
               in f["message"] for f in gained)
    # everything else is what the unchanged tree gives too: the same run with pr = the shared tree itself
    same = tmp_path / "same"
    again = _cli("static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--variant",
                 "central-driver:base", "--variant", f"central-driver:pr={kfp_trees / 'central-driver'}", "--out",
                 str(same), cache=shared_renderer.cache_dir)
    assert again.returncode in (0, 1), again.stderr

    def keys(document: dict) -> set[tuple[str, str, str, str]]:
        return {(f["id"], f["mode"], f["subject"], f["message"]) for f in document["findings"]}

    new = keys(doc) - keys(json.loads((same / "static.json").read_text()))
    assert {(k[0], k[2]) for k in new} == {(f["id"], f["subject"]) for f in compared}
    blocking = (out / "static.md").read_text().split("## What blocks", 1)[1].split("\n## ", 1)[0]
    assert "central-driver:pr driver can delete argoproj.io/workflows" in blocking


def test_static_pytest_layer_base_against_pr_fails_only_the_rbac_check(
        pytester: pytest.Pytester, pr_tree: Path, kfp_trees: Path, remote_bases: Path, shared_renderer) -> None:
    result = pytester.runpytest(SCENARIO, "-p", "no:cacheprovider", "--kfpc-sources", str(kfp_trees),
                                "--kfpc-remote-bases", str(remote_bases), "--kfpc-cache-dir",
                                str(shared_renderer.cache_dir), "--kfpc-mode", "standalone",
                                "--kfpc-variant", "central-driver:base", "--kfpc-variant",
                                f"central-driver:pr={pr_tree}", "-rA")
    outcomes = {line.split("::")[-1].split(" ")[0]: line.split(" ")[0] for line in result.outlines
                if line.startswith(("PASSED", "FAILED"))}
    failed = {k for k, v in outcomes.items() if v == "FAILED"}
    assert failed == {"test_static_check[rbac-standalone-central-driver:base..central-driver:pr]"}
    assert len(outcomes) == 10  # every check ran for the one pair, none skipped
    result.stdout.fnmatch_lines(["*rbac.permission-gained*can delete argoproj.io/workflows*"])


def test_reusable_workflow_matrix_has_a_job_per_instance_with_the_entrys_driver(tmp_path: Path) -> None:
    """The prepare job's matrix step, run as the workflow runs it, over the variants step's output."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "conformance.yml").read_text())
    step = next(s for s in workflow["jobs"]["prepare"]["steps"] if s.get("id") == "matrix")
    harness = tmp_path / "harness"
    harness.mkdir()
    kfpc = harness / "kfpc"  # ./kfpc is `python -m harness.cli` in the venv
    kfpc.write_text(f"#!/bin/sh\ncd {REPO} && exec {sys.executable} -m harness.cli \"$@\"\n")
    kfpc.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "MODES": "standalone tls", "TAGS": "critical",
           "VARIANTS": "--variant central-driver:pr=https://github.com/someone/pipelines@abc "
                       "--variant central-driver:base=https://github.com/droctothorpe/pipelines@def "
                       "--variant driver-pod=https://github.com/kubeflow/pipelines@master",
           "GITHUB_OUTPUT": str(tmp_path / "out")}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=harness, env=env, check=True)
    line = next(x for x in (tmp_path / "out").read_text().splitlines() if x.startswith("matrix="))
    jobs = json.loads(line.split("=", 1)[1])["include"]
    assert [(j["variant"], j["mode"]) for j in jobs] == [
        ("central-driver:pr", "standalone"), ("central-driver:base", "standalone"), ("driver-pod", "standalone"),
        ("central-driver:pr", "tls"), ("central-driver:base", "tls"), ("driver-pod", "tls")]
    by = {(j["variant"], j["mode"]): j for j in jobs}
    assert by[("central-driver:pr", "tls")]["driver_kind"] == "central-service"
    assert by[("central-driver:pr", "tls")]["key"] == "central-driver-pr"
    assert by[("central-driver:base", "tls")]["prerequisites"] == "cert-manager"


def test_report_compares_two_builds_with_the_base_as_baseline(tmp_path: Path, kfp_trees: Path) -> None:
    """Bundles of `central-driver:base` and `central-driver:pr` (real shapes, generated run noise) and one of
    driver-pod: `report --baseline central-driver:base` names the instances, never the bare entry."""
    from harness.evidence.bundle import bundle_dir, read_bundle, write_bundle
    from tests.factory import Run, bundle_data, condition_shapes

    shapes = condition_shapes(kfp_trees)
    for name, shape in (("central-driver:base", "central-driver"), ("central-driver:pr", "central-driver"),
                        ("driver-pod", "driver-pod")):
        data, files = bundle_data(shapes[shape], Run(shape))
        data["variant"] = name
        target = bundle_dir(tmp_path / "bundles", "pipeline-with-condition", name, "standalone")
        assert ":" not in str(target.relative_to(tmp_path))
        write_bundle(target, data, files)
        assert read_bundle(target).variant == name
    result = _cli("report", str(tmp_path / "bundles"), "--baseline", "central-driver:base", "--out",
                  str(tmp_path / "report"), "--format", "json", cache=tmp_path / "cache")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["baseline"] == "central-driver:base"
    # the bare entry was not run: it is replaced by its two builds (sidecar-plugin, never run, stays not verified)
    assert report["variants"] == ["driver-pod", "sidecar-plugin", "central-driver:base", "central-driver:pr"]
    bad = _cli("report", str(tmp_path / "bundles"), "--baseline", "central-driver:Base", "--out",
               str(tmp_path / "r2"), cache=tmp_path / "cache")
    assert bad.returncode == 2 and "invalid label" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("resource", ["workflows", "workflows.argoproj.io", "argoproj.io/workflows"])
def test_rbac_can_accepts_every_spelling_of_a_custom_resource(
        tmp_path: Path, kfp_trees: Path, remote_bases: Path, shared_renderer, resource: str) -> None:
    result = _cli("rbac", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--variant",
                  "central-driver", "--mode", "standalone", "--can", "list", resource, "kubeflow",
                  cache=shared_renderer.cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "central-driver.standalone kubeflow/ml-pipeline-driver: yes"


def test_rbac_can_refuses_an_unknown_verb(tmp_path: Path, kfp_trees: Path) -> None:
    result = _cli("rbac", "--sources", str(kfp_trees), "--can", "lists", "workflows", cache=tmp_path)
    assert result.returncode == 2 and "'lists' is not a Kubernetes RBAC verb" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_scenarios_corpus_computes_coverage_from_variant_sources_alone(tmp_path: Path, kfp_trees: Path) -> None:
    env_free = {k: v for k, v in os.environ.items() if k != "KFPC_SOURCES"}
    args = [arg for name in ("driver-pod", "sidecar-plugin", "central-driver")
            for arg in ("--variant", f"{name}={kfp_trees / name}")]
    result = subprocess.run([sys.executable, "-m", "harness.cli", "scenarios", "--corpus", *args, "--format", "json"],
                            capture_output=True, text=True, cwd=REPO, env={**env_free, "KFPC_CACHE_DIR": str(tmp_path)})
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["variant"] == "sidecar-plugin"  # the baseline's corpus is listed
    assert report["coverage"]["variants"] == ["driver-pod", "sidecar-plugin", "central-driver"]
