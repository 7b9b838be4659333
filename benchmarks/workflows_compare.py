"""Time the compiled-workflow comparison over the three shared KFP trees (goal: a few seconds in all).

Usage: .venv/bin/python benchmarks/workflows_compare.py [SOURCES_DIR]   (default: $KFPC_SOURCES or ../shared/kfp-trees)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from harness.static.workflows import compare_compiled_workflows

VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")


def main() -> int:
    default = os.environ.get("KFPC_SOURCES") or Path(__file__).resolve().parents[2] / "shared" / "kfp-trees"
    sources = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    started = time.perf_counter()
    pairs = [(a, b) for i, a in enumerate(VARIANTS) for b in VARIANTS[i + 1:]]
    for base, other in pairs:
        t = time.perf_counter()
        result = compare_compiled_workflows(sources / base, sources / other, base_variant=base, other_variant=other)
        summary = result.summary()
        print(f"{base}..{other}: {summary['files_compared']} files, {summary['differences']}, "
              f"{len(result.findings())} findings in {time.perf_counter() - t:.2f}s")
    print(f"all pairs: {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
