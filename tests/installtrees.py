"""Inputs for install tests that the shared data cannot give as they are (no pytest import needed).

- `runnable_sources`: the shared trees carry a placeholder `sync.py` (the plan refuses a multi-user install from
  it); a copy of one tree with a sync.py that has code stands for a full checkout. The test double exits with a
  message; the fake kubectl never runs it.
- `mirror_with_cert_manager`: the shared mirror has no cert-manager release asset; this mirror links the
  shared one and places kubeflow/manifests' copy of cert-manager's manifest (common/cert-manager/base/upstream,
  cert-manager v1.19.4) where the release URL of live.cert_manager_url maps, so a TLS install is offline too.
  The version differs from KFP CI's v1.16.2; the tests only need real cert-manager objects.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.cluster.prerequisites import mirror_location
from harness.config.live import LiveSettings

SYNC_PY = "manifests/kustomize/base/installs/multi-user/pipelines-profile-controller/sync.py"
TEST_DOUBLE = "raise SystemExit('kfp-conformance test double of sync.py: not the Kubeflow Pipelines profile hook')\n"


def runnable_sources(kfp_trees: Path, dest: Path, variants: list[str], *, drop: tuple[str, ...] = ()) -> Path:
    """`dest/<variant>` copies of the shared trees with a sync.py that has code; paths in `drop` are removed."""
    for variant in variants:
        tree = dest / variant
        if not tree.exists():
            shutil.copytree(kfp_trees / variant, tree)
            sync = tree / SYNC_PY
            sync.chmod(0o644)
            sync.write_text(TEST_DOUBLE)
        for path in drop:
            target = tree / path
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return dest


def mirror_with_cert_manager(remote_bases: Path, dest: Path) -> Path:
    """A mirror = the shared one (linked) + cert-manager's manifest at the mirror path of the release URL."""
    github = dest / "github.com"
    github.mkdir(parents=True, exist_ok=True)
    for org in (remote_bases / "github.com").iterdir():
        if not (github / org.name).exists():
            (github / org.name).symlink_to(org.resolve())
    target = dest / mirror_location(LiveSettings().cert_manager_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        source = remote_bases / "github.com/kubeflow/manifests/master/common/cert-manager/base/upstream/cert-manager.yaml"
        target.symlink_to(source.resolve())
    return dest
