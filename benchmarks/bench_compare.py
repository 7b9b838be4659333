"""Benchmark: comparing two bundles of N-node workflows (goal: 10 000 nodes <= 2 s; 10x nodes <= 12x time), and
the whole `kfp-conformance report` command over the LARGE bundles in a child process (goal, issue 13:
<= 10 s wall and <= 500 MB peak RSS for 100 000 nodes; the child's peak RSS from getrusage(RUSAGE_CHILDREN)).

A plain script, not a test: `.venv/bin/python benchmarks/bench_compare.py [--sizes 10000 100000]`.
Bundles are generated in the real shapes of tests/factory.py (plugin parameters vs HTTP `result` JSON) for a
loop pipeline `root/for-loop-2[i]/print-op`, written to disk and read back (schema + hash checks); the timed
part is `compare_scenario` (normalise, align, compare, scan logs) on the two read bundles. Exit 1 if a goal
is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.evidence.bundle import bundle_dir, read_bundle, write_bundle  # noqa: E402
from harness.judge.compare import compare_scenario  # noqa: E402
from harness.judge.policy import load_policy  # noqa: E402
from tests.factory import Run, Shape, ShapeNode, bundle_data  # noqa: E402

PLUGIN_OUTPUTS = ("pod-spec-patch", "cached-decision", "condition")
DAG_OUTPUTS = ("execution-id", "iteration-count", "condition")


def loop_shape(nodes: int) -> Shape:
    """root + one for-loop DAG + (nodes - 2) container tasks, one per iteration."""
    shape = Shape("bench_loop", "bench-loop-pipeline")
    shape.nodes.append(ShapeNode("root", "dag", "ROOT_DAG", DAG_OUTPUTS))
    shape.nodes.append(ShapeNode("root/for-loop-2", "dag", "DAG", DAG_OUTPUTS))
    for i in range(nodes - 2):
        shape.nodes.append(ShapeNode(f"root/for-loop-2[{i}]/print-op", "container", "CONTAINER", PLUGIN_OUTPUTS))
    return shape


def build(root: Path, nodes: int):
    shape = loop_shape(nodes)
    bundles = {}
    for variant in ("sidecar-plugin", "central-driver"):
        data, files = bundle_data(shape, Run(variant), scenario="bench-loop")
        target = bundle_dir(root, "bench-loop", variant, "standalone")
        write_bundle(target, data, files)
        bundles[variant] = target
    started = time.perf_counter()
    read = {v: read_bundle(p) for v, p in bundles.items()}
    return read, time.perf_counter() - started


def measure_report(nodes: int, keep: Path | None = None, code: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of `kfp-conformance report` over two N-node bundles.

    `keep`: build the bundles there once and reuse them on later runs (building 2 x 100k nodes takes minutes);
    report.json is left in `keep/out` so two runs can be diffed. `code`: the source tree whose harness runs
    the report (e.g. an export of an older commit), default this one."""
    with tempfile.TemporaryDirectory() as tmp:
        work = keep or Path(tmp)
        bundles = work / "bundles"
        if not (keep and any(bundles.rglob("bundle.json"))):
            build(bundles, nodes)
        argv = [sys.executable, "-m", "harness.cli", "report", str(bundles), "--out", str(work / "out")]
        env = {**os.environ, "PYTHONPATH": str(code or Path(__file__).resolve().parent.parent)}
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              cwd=str(code) if code else None)
        wall = time.perf_counter() - started
        if done.returncode not in (0, 1):
            sys.exit(f"report failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    # ru_maxrss is in KiB on Linux; only this benchmark's children ran, so the max is the report's
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, done.returncode


def measure(nodes: int, repeat: int) -> tuple[float, float, int]:
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        bundles, read_seconds = build(Path(tmp), nodes)
        best = float("inf")
        findings = 0
        for _ in range(repeat):
            started = time.perf_counter()
            result = compare_scenario("bench-loop", "standalone", bundles,
                                      variants=["sidecar-plugin", "central-driver"], baseline="sidecar-plugin",
                                      policy=policy)
            best = min(best, time.perf_counter() - started)
            findings = sum(len(c.findings) for c in result.cells)
    return best, read_seconds, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=2.0, help="seconds allowed for SMALL (default 2)")
    parser.add_argument("--max-ratio", type=float, default=12.0, help="LARGE/SMALL time ratio allowed")
    parser.add_argument("--skip-report", action="store_true", help="skip the whole-report measurement")
    parser.add_argument("--report-only", action="store_true", help="only the whole-report measurement")
    parser.add_argument("--keep", type=Path, help="build the report's bundles in this directory once and reuse them")
    parser.add_argument("--code", type=Path, help="run the report with the harness of this source tree")
    args = parser.parse_args()
    if args.report_only:
        wall, rss, code = measure_report(args.sizes[1], args.keep, args.code)
        print(f"report command over {args.sizes[1]} nodes: {wall:.2f} s wall (goal <= 10 s), peak RSS {rss:.0f} MB "
              f"(goal <= 500 MB), exit {code}")
        return 0 if wall <= 10 and rss <= 500 else 1
    small, large = args.sizes
    t_small, r_small, f_small = measure(small, args.repeat)
    print(f"{small:>7} nodes: compare {t_small:.3f} s (read+verify {r_small:.3f} s, {f_small} findings)")
    t_large, r_large, f_large = measure(large, max(1, args.repeat - 2))
    print(f"{large:>7} nodes: compare {t_large:.3f} s (read+verify {r_large:.3f} s, {f_large} findings)")
    ratio = t_large / t_small
    print(f"ratio {large // small}x nodes -> {ratio:.2f}x time")
    ok = True
    if t_small > args.limit:
        print(f"FAIL: {small} nodes took {t_small:.3f} s > {args.limit} s")
        ok = False
    if ratio > args.max_ratio:
        print(f"FAIL: {large // small}x nodes cost {ratio:.2f}x > {args.max_ratio}x")
        ok = False
    if not args.skip_report:
        wall, rss, code = measure_report(large, args.keep, args.code)
        print(f"report command over {large} nodes: {wall:.2f} s wall (goal <= 10 s), peak RSS {rss:.0f} MB "
              f"(goal <= 500 MB), exit {code}")
        if wall > 10 or rss > 500:
            print("FAIL: report goal missed")
            ok = False
    print("goals met" if ok else "goals missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
