"""The pytest layer under pytest-xdist: `-n 2` workers share one cluster per (variant, mode).

pytester runs a real pytest with two xdist workers; fake `kind`, `kubectl` and `docker` on PATH keep the
cluster state. Exactly one `kind create cluster` and one delete may be recorded, and no cluster is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.livefakes import DRIVER_IMAGES, make_fakes, quick_calm_config, shared_cache

TESTS = """
import time
import pytest

@pytest.mark.parametrize("kfpc_cluster", ["central-driver.standalone"], indirect=True)
@pytest.mark.parametrize("n", range(4))
def test_uses_the_shared_cluster(kfpc_cluster, n):
    time.sleep(0.3)  # overlap the workers' tests
    assert kfpc_cluster.name.startswith("kfpc-")
"""


def test_xdist_two_workers_fake_kind_create_one_cluster(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path, kfp_trees: Path, remote_bases: Path) -> None:
    fakes = make_fakes(tmp_path / "fakes")
    for key, value in fakes.env(KFPC_FAKE_CREATE_SLEEP="0.5", KFPC_STATE_DIR=str(tmp_path / "state")).items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile(test_shared=TESTS)
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--kfpc-config", str(quick_calm_config(tmp_path / "config")), "--kfpc-sources", str(kfp_trees), "--kfpc-remote-bases", str(remote_bases),
        "--kfpc-cache-dir", str(shared_cache()), "--kfpc-variant", "central-driver", "--kfpc-mode", "standalone",
        "--kfpc-driver-image", f"central-driver={DRIVER_IMAGES['central-driver']}", "--kfpc-out", str(tmp_path / "out"),
        timeout=600)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers*"])  # really two xdist worker processes
    kind_calls = fakes.calls("kind")
    creates = [c for c in kind_calls if c[:2] == ["create", "cluster"]]
    deletes = [c for c in kind_calls if c[:2] == ["delete", "cluster"]]
    assert len(creates) == 1, kind_calls
    assert len(deletes) == 1 and deletes[0][-1] == creates[0][creates[0].index("--name") + 1]
    assert fakes.state_data()["clusters"] == {}
