"""Benchmark: the full static tier over 3 trees x 3 modes, cold (empty render cache) and warm, against the
bare kustomize floor measured in the same run.

The floor is `kubectl kustomize` run bare over exactly the overlays the static tier renders, with the same
parallelism (two at a time), on the pre-staged copies the cold run left in its cache: the least any static
tier that renders with kustomize can cost. Targets (issue 13): cold <= 1.5x the floor, warm <= 2 s wall;
adding a file to the remote-base mirror that no overlay references leaves every render cached.
Usage: .venv/bin/python benchmarks/bench_static.py [--sources DIR] [--remote-bases DIR] [--repeat N]
A plain script that prints figures and ratios, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.cli import main
from harness.render.kustomize import Renderer

REPO = Path(__file__).resolve().parent.parent
WORKERS = 2  # static.render_all's parallelism


def cpu_seconds() -> tuple[float, float]:
    """(this process, its waited-for children) user+sys CPU seconds so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_once(sources: str, mirror: str, cache: Path, out: Path) -> tuple[float, dict, tuple[float, float]]:
    """Wall seconds, static.json, and (this process, its children: kustomize and the compiled-workflow worker)
    CPU seconds of one static run."""
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    code = main(["static", "--sources", sources, "--remote-bases", mirror, "--cache-dir", str(cache), "--out", str(out)])
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds()
    if code not in (0, 1):
        sys.exit(f"static tier failed with exit code {code}")
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
    return elapsed, json.loads((out / "static.json").read_text()), cpu


def floor(document: dict, sources: str, mirror: str, cache: Path) -> tuple[float, float]:
    """Wall time and CPU seconds of bare `kubectl kustomize` over the same overlays (two at a time) on the
    staged copies."""
    renderer = Renderer(mirror=Path(mirror), cache_dir=cache)
    overlays: set[tuple[str, str]] = set()
    for key, entry in document["renders"].items():
        variant = key.split(".")[0]
        for part in ("cluster_scoped", "overlay"):
            overlays.add((variant, entry[part]["overlay"]))
    jobs = [str(renderer._stage(Path(sources) / v).path / overlay) for v, overlay in sorted(overlays)]
    argv = [renderer.kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone"]

    def one(path: str) -> None:
        subprocess.run([*argv, path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    cpu_before = cpu_seconds()[1]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - started, cpu_seconds()[1] - cpu_before


def unrelated_file_keeps_cache(sources: str, mirror: str, tmp: Path) -> bool:
    """A copy of the mirror plus one file no overlay references: a warm run renders nothing anew."""
    copy = tmp / "mirror"
    shutil.copytree(mirror, copy, symlinks=True)
    cache, out = tmp / "cache-mirror", tmp / "out-mirror"
    run_once(sources, str(copy), cache, out)
    (copy / "github.com" / "unrelated-file.txt").write_text("referenced by no overlay\n")
    _, document, _ = run_once(sources, str(copy), cache, out)
    return all(entry[part]["cached"] for entry in document["renders"].values() for part in ("cluster_scoped", "overlay"))


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", default=os.environ.get("KFPC_SOURCES", str(REPO.parent / "shared" / "kfp-trees")))
    parser.add_argument("--remote-bases",
                        default=os.environ.get("KFPC_REMOTE_BASES", str(REPO.parent / "shared" / "remote-bases")))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-mirror-check", action="store_true")
    args = parser.parse_args()
    colds, warms, floors, shares = [], [], [], []
    cold_cpu: list[tuple[float, float]] = []
    floor_cpu: list[float] = []
    renders = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache", Path(tmp) / "out"
            cold, document, cpu = run_once(args.sources, args.remote_bases, cache, out)
            colds.append(cold)
            cold_cpu.append(cpu)
            renders = len({(k.split(".")[0], e[p]["overlay"]) for k, e in document["renders"].items()
                           for p in ("cluster_scoped", "overlay")})
            # wall time of the render phase (kustomize runs inside it) as a share of the cold run
            shares.append(document["timings"]["render"] / cold)
            warm, _, _ = run_once(args.sources, args.remote_bases, cache, out)
            warms.append(warm)
            bare_wall, bare_cpu = floor(document, args.sources, args.remote_bases, cache)
            floors.append(bare_wall)
            floor_cpu.append(bare_cpu)
    cold, warm, bare = statistics.median(colds), statistics.median(warms), statistics.median(floors)
    ratio = cold / bare
    print(f"static tier, 3 trees x 3 modes x 2 overlays ({renders} distinct kustomize renders), median of {args.repeat}:")
    print(f"  bare kustomize floor {bare:6.2f} s  ({WORKERS} at a time, pre-staged copies)")
    print(f"  cold {cold:6.2f} s  = {ratio:.2f}x the floor (target <= 1.5x)  {'OK' if ratio <= 1.5 else 'MISSED'}")
    print(f"  warm {warm:6.2f} s  (target <= 2 s)  {'OK' if warm <= 2 else 'MISSED'}")
    print(f"  render phase share of the cold run: {statistics.median(shares):.0%}")
    python_cpu, kustomize_cpu = (statistics.median(c[i] for c in cold_cpu) for i in (0, 1))
    print(f"  cold CPU (user+sys): Python {python_cpu:.2f} s + children {kustomize_cpu:.2f} s (kustomize and the "
          f"compiled-workflow worker) = {python_cpu + kustomize_cpu:.2f} s; floor kustomize CPU "
          f"{statistics.median(floor_cpu):.2f} s ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print(f"  all runs: cold {[round(c, 2) for c in colds]} warm {[round(w, 2) for w in warms]} "
          f"floor {[round(f, 2) for f in floors]}")
    if not args.skip_mirror_check:
        with tempfile.TemporaryDirectory() as tmp:
            kept = unrelated_file_keeps_cache(args.sources, args.remote_bases, Path(tmp))
        print(f"  unrelated file added to the mirror leaves every render cached: {'OK' if kept else 'MISSED'}")


if __name__ == "__main__":
    main_bench()
