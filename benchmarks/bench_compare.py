"""Benchmark: comparing two bundles of N-node workflows (goal: 10 000 nodes <= 2 s; 10x nodes <= 12x time), and
the whole `kfp-conformance report` command over the LARGE bundles in a child process (goal, issue 13:
<= 10 s wall and <= 500 MB peak RSS for 100 000 nodes). The report's process tree (the report and the worker
processes that read big bundles) is sampled through /proc: each process's own peak and the largest sum of the
live processes' RSS are printed; CPU time is the report's rusage (os.wait4), which includes its workers'.

A plain script, not a test: `.venv/bin/python benchmarks/bench_compare.py [--sizes 10000 100000]`.
Bundles are generated in the real shapes of tests/factory.py (plugin parameters vs HTTP `result` JSON) for a
loop pipeline `root/for-loop-2[i]/print-op`, written to disk and read back (schema + hash checks); the timed
part is `compare_scenario` (normalise, align, compare, scan logs) on the two read bundles. Exit 1 if a goal
is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

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


def build(root: Path, nodes: int, read_back: bool = True):
    shape = loop_shape(nodes)
    bundles = {}
    for variant in ("sidecar-plugin", "central-driver"):
        data, files = bundle_data(shape, Run(variant), scenario="bench-loop")
        target = bundle_dir(root, "bench-loop", variant, "standalone")
        write_bundle(target, data, files)
        bundles[variant] = target
        del data, files
    if not read_back:
        return None
    started = time.perf_counter()
    read = {v: read_bundle(p) for v, p in bundles.items()}
    return read, time.perf_counter() - started


class ReportRun(NamedTuple):  # (not a dataclass: tests/test_compare.py loads this file without sys.modules)
    """One `kfp-conformance report` run: its process tree's CPU and memory."""

    wall: float  # seconds
    cpu: float  # user + sys seconds of the report and every worker it reaped (os.wait4)
    report_peak: float  # MB: the report process's own high-water mark (VmHWM, last sample)
    worker_peaks: list[float]  # MB: each worker process's own high-water mark (VmHWM, last sample)
    tree_peak: float  # MB: the largest sum of VmRSS over the processes alive at one sample
    returncode: int

    def line(self, nodes: int) -> str:
        workers = ", ".join(f"{p:.0f}" for p in self.worker_peaks) or "none"
        return (f"report command over {nodes} nodes: {self.wall:.2f} s wall (goal <= 10 s), {self.cpu:.2f} s CPU "
                f"(all processes), peak RSS {self.report_peak:.0f} MB (goal <= 500 MB), workers' peaks {workers} MB, "
                f"largest sum of live processes' RSS {self.tree_peak:.0f} MB, exit {self.returncode}")


def _kib(pid: int, fields: tuple[str, ...]) -> dict[str, int]:
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name = line.split(":", 1)[0]
                if name in fields:
                    found[name] = int(line.split()[1])
    except OSError:  # ended between the listing and the read
        pass
    return found


def _tree(pid: int) -> list[int]:
    """pid and its living descendants (/proc/PID/task/TID/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    queue += [int(c) for c in children.read().split()]
        except OSError:
            pass
    return found


class Sampler(threading.Thread):
    """Reads the report's process tree every `interval` s: each process's VmHWM (the kernel's own peak: only
    the last reading before a process ends can be missed) and the sum of the live processes' VmRSS (sampled:
    a spike shorter than `interval` can be missed)."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peaks: dict[int, int] = {}  # pid -> KiB
        self.total = 0  # KiB
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for pid in _tree(self.pid):
                status = _kib(pid, ("VmRSS", "VmHWM"))
                if status:
                    total += status.get("VmRSS", 0)
                    self.peaks[pid] = max(self.peaks.get(pid, 0), status.get("VmHWM", 0))
            self.total = max(self.total, total)
            self.stop.wait(self.interval)


def measure_report(nodes: int, keep: Path | None = None, code: Path | None = None) -> ReportRun:
    """`kfp-conformance report` over two N-node bundles, in a child process, its tree sampled (Sampler).

    `keep`: build the bundles there once and reuse them on later runs (building 2 x 100k nodes takes minutes);
    report.json is left in `keep/out` so two runs can be diffed. `code`: the source tree whose harness runs
    the report (e.g. an export of an older commit), default this one."""
    with tempfile.TemporaryDirectory() as tmp:
        work = keep or Path(tmp)
        bundles = work / "bundles"
        if not (keep and any(bundles.rglob("bundle.json"))):
            # in a child of its own: a report started from a process that holds the built bundles would count
            # that process's pages in its own peak (exec records the old address space's high-water mark)
            subprocess.run([sys.executable, __file__, "--build-only", str(bundles), "--sizes", "1", str(nodes)],
                           check=True)
        report = work / "out" / "report.json"
        report.unlink(missing_ok=True)  # a crash must not pass on the previous run's report
        argv = [sys.executable, "-m", "harness.cli", "report", str(bundles), "--out", str(work / "out")]
        env = {**os.environ, "PYTHONPATH": str(code or Path(__file__).resolve().parent.parent)}
        with tempfile.TemporaryFile("w+") as errors:
            started = time.perf_counter()
            child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors,
                                     cwd=str(code) if code else None)
            sampler = Sampler(child.pid)
            sampler.start()
            # the child's rusage: its CPU includes the workers it reaped; its ru_maxrss is max(own, workers')
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()
            child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            errors.seek(0)
            stderr = errors.read()
        if child.returncode not in (0, 1) or not report.is_file() or "Traceback" in stderr:
            sys.exit(f"report failed ({child.returncode}): {stderr.strip()[-500:]}")
    # KiB on Linux; the report's own peak: the sampled VmHWM, or ru_maxrss if the process ended before a sample
    own = sampler.peaks.get(child.pid) or usage.ru_maxrss
    workers = [kib / 1024 for pid, kib in sampler.peaks.items() if pid != child.pid]
    return ReportRun(wall, usage.ru_utime + usage.ru_stime, own / 1024, workers, sampler.total / 1024,
                     child.returncode)


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
    parser.add_argument("--build-only", type=Path, metavar="DIR", help=argparse.SUPPRESS)  # measure_report's child
    args = parser.parse_args()
    if args.build_only:
        build(args.build_only, args.sizes[1], read_back=False)
        return 0
    if args.report_only:
        run = measure_report(args.sizes[1], args.keep, args.code)
        print(run.line(args.sizes[1]))
        return 0 if run.wall <= 10 and run.report_peak <= 500 else 1
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
        run = measure_report(large, args.keep, args.code)
        print(run.line(large))
        if run.wall > 10 or run.report_peak > 500:
            print("FAIL: report goal missed")
            ok = False
    print("goals met" if ok else "goals missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
