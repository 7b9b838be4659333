"""No Secret value reaches an output of `run` (fake kind, kubectl and docker on PATH; real trees and renders).

A canary access key is planted in a copy of the sidecar-plugin tree's `mlpipeline-minio-artifact` Secret. The
plan must still apply it (the file the fake kubectl receives holds it: the install would not work otherwise),
but every file under the out dir that a CI job uploads shows only its fingerprint, and the kubeconfigs and
applied files live in a private work dir outside it (mode 0700).
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

from harness.boundary.redact import fingerprint
from harness.live.session import LiveOptions, LiveSession, make_plan
from harness.testing.fakebin import read_calls
from tests.installtrees import runnable_sources
from tests.livefakes import DRIVER_IMAGES, make_fakes, selection_for, shared_cache

CANARY = "kfpc-canary-access-key-0b6d2e"
SECRET = "manifests/kustomize/third-party/seaweedfs/base/seaweedfs/mlpipeline-minio-artifact-secret.yaml"


def _every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_run_fake_kind_secret_canary_in_no_output_file_and_applied_from_a_private_dir(
        tmp_path: Path, kfp_trees: Path, remote_bases: Path) -> None:
    sources = runnable_sources(kfp_trees, tmp_path / "src", ["sidecar-plugin"])
    secret = sources / "sidecar-plugin" / SECRET
    secret.write_text(secret.read_text().replace("accesskey: minio", f"accesskey: {CANARY}"))
    fakes = make_fakes(tmp_path / "fakes")
    cache = tmp_path / "cache"
    selection = selection_for(sources, remote_bases, tmp_path / "out", shared_cache(), ["sidecar-plugin"],
                              ["standalone"])
    selection = dataclasses.replace(selection, cache_dir=cache)
    options = LiveOptions(run_id="canary", driver_images=DRIVER_IMAGES, poll_interval=0.05)
    plan = make_plan(selection, [], options)
    session = LiveSession(selection, plan, options, runner=fakes.runner(), progress=lambda _l: None,
                          state_dir=tmp_path / "state")
    results = session.run([])
    assert [r.status for r in results] == ["ok"], results

    outputs = _every_file(session.out_dir)
    assert outputs, "the run wrote its plan and summary"
    leaked = [str(p) for p, body in outputs.items() if CANARY.encode() in body]
    assert leaked == []
    overlay = (session.out_dir / "rendered" / "sidecar-plugin.standalone" / "overlay.yaml").read_text()
    assert fingerprint(CANARY) in overlay  # the reviewer sees that it is there, not what it is

    work = session.work_dir
    assert not work.is_relative_to(session.out_dir)
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    applied = (work / "rendered" / "sidecar-plugin.standalone" / "overlay.yaml").read_text()
    assert CANARY in applied  # what kubectl applies is the real Secret
    # and kubectl really applied the private files: every apply ran in the work dir, on a relative path there
    applies = [c for c in read_calls(fakes.log) if c["tool"] == "kubectl" and "apply" in c["argv"]]
    assert applies and all(Path(c["cwd"]) == work for c in applies)
    overlay_apply = next(c for c in applies if c["argv"][-1].endswith("overlay.yaml"))
    assert (work / overlay_apply["argv"][-1]).read_text() == applied


def test_run_plan_writes_no_secret_value(tmp_path: Path, kfp_trees: Path, remote_bases: Path) -> None:
    import subprocess
    import sys

    sources = runnable_sources(kfp_trees, tmp_path / "src", ["sidecar-plugin"])
    secret = sources / "sidecar-plugin" / SECRET
    secret.write_text(secret.read_text().replace("accesskey: minio", f"accesskey: {CANARY}"))
    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--plan", "--variant",
                             f"sidecar-plugin={sources / 'sidecar-plugin'}", "--mode", "standalone",
                             "--driver-image", f"sidecar-plugin={DRIVER_IMAGES['sidecar-plugin']}",
                             "--remote-bases", str(remote_bases), "--cache-dir", str(shared_cache()),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr
    written = _every_file(tmp_path / "out")
    assert any(p.name == "overlay.yaml" for p in written)
    assert [str(p) for p, body in written.items() if CANARY.encode() in body] == []
