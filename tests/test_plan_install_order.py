"""`run --plan` installs like KFP CI (deploy-kfp.sh@81fc181b1), over the real shared trees and mirror (no fakes).

Order: cluster-scoped resources (which create Namespace `kubeflow`) before any prerequisite; the tree's own
test_data/kubernetes files after readiness; prerequisites from the offline mirror; readiness like
wait_for_pods.py; per-variant local images; the placeholder sync.py refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.cluster.prerequisites import mirror_location
from harness.config.live import LiveSettings
from harness.live.session import LiveOptions, make_plan
from tests.installtrees import mirror_with_cert_manager, runnable_sources
from tests.livefakes import DRIVER_IMAGES, selection_for, shared_cache

VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")
CI_FILES = ["test_data/kubernetes/seaweedfs/test-profiles.yaml",
            "test_data/kubernetes/seaweedfs/kubeflow-edit-clusterrole.yaml",
            "test_data/kubernetes/seaweedfs/allow-user-namespace-access.yaml",
            "test_data/kubernetes/seaweedfs/shared-pipeline-rbac.yaml"]


def _plan(capsys, sources: Path, mirror: Path, *args: str) -> dict:
    selected = [args[i + 1] for i, a in enumerate(args) if a == "--variant"]
    drivers = [arg for variant, ref in DRIVER_IMAGES.items() if variant in selected
               for arg in ("--driver-image", f"{variant}={ref}")]
    code = main(["run", "--plan", "--plan-format", "json", "--sources", str(sources), "--remote-bases", str(mirror),
                 "--cache-dir", str(shared_cache()), "--scenario", "single-component", *drivers, *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _applied(data: dict, step: dict) -> list[dict]:
    """The objects an apply step applies: the plan's own file (digest listed), read back from the written plan."""
    return [d for d in yaml.safe_load_all(data["_files"][step["manifest"]]) if isinstance(d, dict)]


@pytest.fixture(scope="module")
def multi_user(kfp_trees, remote_bases, tmp_path_factory):
    """The multi-user plan of every variant, with the plan's files (as `run` writes them) under `_files`."""
    out = tmp_path_factory.mktemp("plan")
    selection = selection_for(kfp_trees, remote_bases, out, shared_cache(), list(VARIANTS), ["multi-user"])
    plan = make_plan(selection, [], LiveOptions(run_id="order", driver_images=DRIVER_IMAGES))
    data = plan.to_dict()
    data["_files"] = plan.files
    return data


def test_plan_multi_user_applies_cluster_scoped_before_any_prerequisite_needing_namespace_kubeflow(multi_user):
    for pair in multi_user["pairs"]:
        steps = pair["steps"]
        applies = [i for i, s in enumerate(steps) if s["action"] == "apply"]
        cluster_scoped = next(i for i in applies if steps[i]["phase"] == "cluster-scoped")
        # cluster-scoped resources are the first thing applied, and they create Namespace kubeflow
        assert cluster_scoped == applies[0], pair["pair"]
        created = {o["metadata"]["name"] for o in _applied(multi_user, steps[cluster_scoped]) if o["kind"] == "Namespace"}
        assert "kubeflow" in created
        # every prerequisite step (Istio, metacontroller CRD, Profile controller and their waits) comes after
        prerequisites = [i for i, s in enumerate(steps) if s["phase"] == "prerequisites"]
        assert prerequisites and min(prerequisites) > cluster_scoped, pair["pair"]
        # and the Profile controller really needs it: its render has objects in kubeflow and no Namespace of its
        # own (kubeflow/manifests overlays/kubeflow/patches/remove-namespace.yaml)
        controller = next(s for s in steps if s["action"] == "apply" and "Profile controller" in s["description"])
        objects = _applied(multi_user, controller)
        assert not [o for o in objects if o["kind"] == "Namespace"]
        assert {o["metadata"].get("namespace") for o in objects} >= {"kubeflow"}


def test_plan_multi_user_applies_the_trees_own_test_data_kubernetes_files(multi_user, kfp_trees):
    for pair in multi_user["pairs"]:
        tree = kfp_trees / pair["variant"]
        steps = [s for s in pair["steps"] if s["phase"] == "profile"]
        applied = [s for s in steps if s["action"] == "apply"]
        expected = [f for f in CI_FILES if (tree / f).is_file()]
        # the tree's files, in KFP CI's order, verbatim
        assert [s["manifest"] for s in applied] == [f"rendered/{pair['pair']}/{f}" for f in expected], pair["pair"]
        for step, path in zip(applied, expected):
            assert multi_user["_files"][step["manifest"]] == (tree / path).read_text()
        # so default-editor can read the kfp-launcher ConfigMap and the artifact Secret (kubeflow-edit aggregates it)
        role = next(o for s in applied for o in _applied(multi_user, s)
                    if o["metadata"]["name"] == "kubeflow-edit-basic-permissions")
        assert role["metadata"]["labels"]["rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit"] == "true"
        core = next(r for r in role["rules"] if r["apiGroups"] == [""])
        assert {"configmaps", "secrets"} <= set(core["resources"]) and "get" in core["verbs"]
        missing = [f for f in CI_FILES if f not in expected]
        notes = [s["description"] for s in steps if s["action"] == "note"]
        assert all(any(m in n for n in notes) for m in missing)  # central-driver: no shared-pipeline-rbac.yaml
        assert not any("multi-user-test-profile" in s["description"] for s in steps)
        assert steps[-1]["condition"]["object"] == "mlpipeline-minio-artifact"


def test_plan_tree_without_test_data_kubernetes_falls_back_to_the_template_and_says_so(kfp_trees, remote_bases,
                                                                                       tmp_path, capsys):
    sources = runnable_sources(kfp_trees, tmp_path / "src", ["driver-pod"], drop=("test_data/kubernetes",))
    data = _plan(capsys, sources, remote_bases, "--variant", "driver-pod", "--mode", "multi-user")
    [apply] = [s for s in data["pairs"][0]["steps"] if s["phase"] == "profile" and s["action"] == "apply"]
    assert apply["description"].startswith("apply FALLBACK harness/data/multi-user-test-profile.yaml.j2: the "
                                           "driver-pod tree has none of test_data/kubernetes/seaweedfs/")
    assert apply["objects"] == 5  # Profile, kubeflow-edit, its basic permissions, NetworkPolicy, shared-pipeline RBAC


def test_plan_multi_user_prerequisites_come_from_the_offline_mirror(multi_user):
    settings = LiveSettings()
    for pair in multi_user["pairs"]:
        prereq = [s for s in pair["steps"] if s["phase"] == "prerequisites" and s["action"] == "apply"]
        assert all("https://" not in " ".join(s["argv"]) for s in prereq), pair["pair"]
        mirrored = [s["description"].split("offline mirror ")[1].split(")")[0] for s in prereq if "offline mirror" in s["description"]]
        assert mirrored == [mirror_location(settings.url(t)) for t in settings.istio_kustomizations] + \
            [mirror_location(settings.url(settings.profile_controller_kustomization))]


def test_plan_tls_cert_manager_release_file_comes_from_the_mirror(kfp_trees, remote_bases, tmp_path, capsys):
    assert mirror_location("https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml") \
        == "github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml"
    assert mirror_location("https://github.com/kubeflow/manifests/common/istio/istio-crds/base?ref=master") \
        == "github.com/kubeflow/manifests/master/common/istio/istio-crds/base"
    online = _plan(capsys, kfp_trees, remote_bases, "--variant", "driver-pod", "--mode", "tls")
    [step] = [s for s in online["pairs"][0]["steps"] if "cert-manager" in s["description"] and s["action"] == "apply"]
    assert step["description"] == "apply cert-manager (online)" and step["argv"][-1].startswith("https://")
    mirror = mirror_with_cert_manager(remote_bases, tmp_path / "mirror")
    offline = _plan(capsys, kfp_trees, mirror, "--variant", "driver-pod", "--mode", "tls")
    steps = offline["pairs"][0]["steps"]
    [step] = [s for s in steps if "cert-manager" in s["description"] and s["action"] == "apply"]
    assert step["argv"][-1] == "rendered/driver-pod.tls/cert-manager.yaml" and step["objects"] > 40
    names = [s["description"] for s in steps]
    # the webhook race: cert-manager's pods Ready before the overlay (backend/Makefile install-cert-manager), and
    # the overlay apply tried twice (KFP CI's retried deploy)
    ready = next(i for i, n in enumerate(names) if "app.kubernetes.io/instance=cert-manager" in n)
    overlay = next(i for i, s in enumerate(steps) if s["phase"] == "overlay" and s["action"] == "apply")
    assert ready < overlay and steps[overlay]["attempts"] == 2 and steps[overlay]["pause"] == 10


def test_plan_readiness_is_wait_for_pods_calm_and_ci_waits_for_istio_and_profile_controller(multi_user):
    for pair in multi_user["pairs"]:
        conditions = [s["condition"] for s in pair["steps"] if s["action"] == "condition"]
        assert {"name": "pods-ready", "namespace": "istio-system", "selector": ""} in conditions
        assert {"name": "pods-ready", "namespace": "kubeflow",
                "selector": "app.kubernetes.io/name=profile-controller"} in conditions
        calm = next(c for c in conditions if c["name"] == "pods-calm")
        assert calm == {"name": "pods-calm", "namespace": "kubeflow", "skip": ["*system*", "*-agent"], "polls": 5,
                        "interval": 10}
        assert all(s.get("attempts") == 2 for s in pair["steps"] if s["action"] == "apply")


def test_plan_local_images_are_per_variant_by_default(kfp_trees, remote_bases, capsys):
    data = _plan(capsys, kfp_trees, remote_bases, "--variant", "driver-pod", "--variant", "central-driver",
                 "--mode", "standalone")
    pushed = {p["variant"]: [s["argv"][-1] for s in p["steps"] if s.get("argv", [])[:2] == ["docker", "push"]]
              for p in data["pairs"]}
    assert "localhost:5001/apiserver:driver-pod" in pushed["driver-pod"]
    assert "localhost:5001/apiserver:central-driver" in pushed["central-driver"]
    assert not set(pushed["driver-pod"]) & set(pushed["central-driver"])  # no build is shared
    shared = _plan(capsys, kfp_trees, remote_bases, "--variant", "driver-pod", "--mode", "standalone",
                   "--local-tag", "latest")
    assert "localhost:5001/apiserver:latest" in [s["argv"][-1] for s in shared["pairs"][0]["steps"]
                                                 if s.get("argv", [])[:2] == ["docker", "push"]]


def test_plan_preloads_the_runtime_images_kfp_ci_loads(kfp_trees, remote_bases, capsys):
    data = _plan(capsys, kfp_trees, remote_bases, "--variant", "driver-pod", "--mode", "standalone")
    loaded = [s["argv"][3] for s in data["pairs"][0]["steps"] if s.get("argv", [])[:3] == ["kind", "load", "docker-image"]]
    assert {"python:3.11", "registry.access.redhat.com/ubi9/python-311:latest"} <= set(loaded)


def test_plan_placeholder_sync_py_is_refused_in_preflight_with_the_fix(kfp_trees, remote_bases, tmp_path, capsys):
    data = _plan(capsys, kfp_trees, remote_bases, "--variant", "driver-pod", "--mode", "multi-user")
    [refuse] = [s for s in data["preflight"] if s["action"] == "refuse"]
    assert "key sync.py in the multi-user overlay is a placeholder without code" in refuse["description"]
    assert "--variant driver-pod=PATH" in refuse["condition"]["fix"]
    sources = runnable_sources(kfp_trees, tmp_path / "src", ["driver-pod"])
    data = _plan(capsys, sources, remote_bases, "--variant", "driver-pod", "--mode", "multi-user")
    assert not [s for s in data["preflight"] if s["action"] == "refuse"]
