"""Helpers for the live-tier tests: fake kind/kubectl/docker on PATH (harness.testing.fakebin) and a
selection over the shared trees. Only the process boundary is faked."""

from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.boundary.proc import Runner
from harness.cli.common import resolve_selection
from harness.selection import Selection
from harness.testing.fakebin import fake_env, read_calls, read_state, write_fake_bins

DRIVER_IMAGES = {"sidecar-plugin": "kind-registry:5000/driver:ci", "central-driver": "kind-registry:5000/driver:latest"}


@dataclass
class Fakes:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def log(self) -> Path:
        return self.root / "calls.jsonl"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    def env(self, **knobs: str) -> dict[str, str]:
        return fake_env(self.bin, self.log, self.state, **knobs)

    def runner(self, **knobs: str) -> Runner:
        return Runner(env=self.env(**knobs))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        return [c["argv"] for c in read_calls(self.log) if tool is None or c["tool"] == tool]

    def tool_calls(self) -> list[tuple[str, list[str]]]:
        return [(c["tool"], c["argv"]) for c in read_calls(self.log)]

    def state_data(self) -> dict[str, Any]:
        return read_state(self.state)


def make_fakes(root: Path) -> Fakes:
    fakes = Fakes(root)
    write_fake_bins(fakes.bin)
    return fakes


def selection_for(kfp_trees: Path, remote_bases: Path, out: Path, cache: Path, variants: list[str],
                  modes: list[str]) -> Selection:
    args = argparse.Namespace(config=None, variant=variants, sources=str(kfp_trees), mode=modes,
                              remote_bases=str(remote_bases), cache_dir=str(cache), out=str(out))
    return resolve_selection(args)


def shared_cache() -> Path:
    """Renders are content-addressed, so tests share one cache (KFPC_CACHE_DIR or the user's)."""
    from harness.cli.common import default_cache_dir

    return Path(os.environ.get("KFPC_TEST_CACHE") or default_cache_dir())


def quick_calm_config(directory: Path) -> Path:
    """The project's catalogue with the readiness "calm" polls 1 s apart instead of 10 s (same number of
    polls), for tests of the pytest layer that need a whole fake install but assert nothing about readiness
    timing (harness.config.live readiness_calm; its own tests use the real default)."""
    import yaml

    from harness.config import config_path

    raw = yaml.safe_load(config_path().read_text())
    raw.setdefault("live", {})["readiness_calm"] = {"interval": 1}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "variants.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def gone(child: subprocess.Popen) -> bool:
    """Ended and reaped: no process, not even a zombie, holds its pid (a worker process the harness started)."""
    if child.returncode is None:
        return False
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        return True
    return False
