"""Benchmark: the full static tier over 3 trees x 3 modes, cold (empty render cache) and warm.

Targets (issue 3): <= 30 s cold and <= 5 s warm on 2 cores. Also prints the share of the cold run
spent in kustomize (the `kubectl kustomize` processes, which run two at a time in threads).
Usage: .venv/bin/python benchmarks/bench_static.py [--sources DIR] [--remote-bases DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent


def run_once(sources: str, mirror: str, cache: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    code = main(["static", "--sources", sources, "--remote-bases", mirror, "--cache-dir", str(cache), "--out", str(out)])
    elapsed = time.perf_counter() - started
    if code not in (0, 1):
        sys.exit(f"static tier failed with exit code {code}")
    return elapsed, json.loads((out / "static.json").read_text())["timings"]


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", default=os.environ.get("KFPC_SOURCES", str(REPO.parent / "shared" / "kfp-trees")))
    parser.add_argument("--remote-bases",
                        default=os.environ.get("KFPC_REMOTE_BASES", str(REPO.parent / "shared" / "remote-bases")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    colds, warms, shares = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache", Path(tmp) / "out"
            cold, timings = run_once(args.sources, args.remote_bases, cache, out)
            colds.append(cold)
            # wall time of the render phase (kustomize runs inside it) as a share of the cold run
            shares.append(timings["render"] / cold)
            warm, _ = run_once(args.sources, args.remote_bases, cache, out)
            warms.append(warm)
    cold, warm = statistics.median(colds), statistics.median(warms)
    print(f"static tier, 3 trees x 3 modes x 2 overlays, median of {args.repeat}:")
    print(f"  cold {cold:6.2f} s  (target <= 30 s)  {'OK' if cold <= 30 else 'MISSED'}")
    print(f"  warm {warm:6.2f} s  (target <=  5 s)  {'OK' if warm <= 5 else 'MISSED'}")
    print(f"  kustomize (render phase) share of the cold run: {statistics.median(shares):.0%}")


if __name__ == "__main__":
    main_bench()
