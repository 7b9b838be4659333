"""Time the local control plane (harness.cluster.controlplane): the build script's cold build (read from its
stamp) and warm check, cold and warm start to ready (apiserver /readyz, controller manager, kwok node), and
the install tier per variant x mode on a fresh control plane (the plan's steps, offline prerequisites).

Usage: .venv/bin/python benchmarks/controlplane.py [--variant NAME]... [--mode MODE]... [--starts N]
Needs the binaries (bash scripts/controlplane-build.sh), KFPC_SOURCES and KFPC_REMOTE_BASES.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.boundary.proc import Runner  # noqa: E402
from harness.cli.common import add_selection_args, resolve_selection  # noqa: E402
from harness.cluster.controlplane import ControlPlaneProvider, binary_dir  # noqa: E402
from harness.live.controlplane_install import install_on_controlplane  # noqa: E402
from harness.live.install import Installer  # noqa: E402
from harness.live.session import LiveOptions, make_plan, write_plan  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_selection_args(parser)
    parser.add_argument("--starts", type=int, default=3, help="warm starts to time (default 3)")
    args = parser.parse_args()
    args.out = tempfile.mkdtemp(prefix="kfpc-cp-bench-")
    stamp = binary_dir(dict(os.environ)) / ".kfpc-built"
    if stamp.is_file():
        print(f"build (cold, from the stamp): {stamp.read_text().split('seconds=')[-1].strip()} s  "
              f"[{stamp.read_text().splitlines()[0]}]")
    began = time.perf_counter()
    subprocess.run(["bash", str(REPO / "scripts" / "controlplane-build.sh")], check=True, capture_output=True)
    print(f"build (warm, stamp reused): {time.perf_counter() - began:.2f} s")
    provider = ControlPlaneProvider(env=dict(os.environ))
    for number in range(args.starts + 1):
        began = time.perf_counter()
        with provider.cluster(f"kfpc-cp-bench-start{number}") as plane:
            ready = time.perf_counter() - began
            apiserver = plane.timings["apiserver-ready"]
        stopped = time.perf_counter() - began - ready
        print(f"start {'cold' if number == 0 else 'warm'} #{number}: ready {ready:.1f} s "
              f"(apiserver /readyz {apiserver:.1f} s), stop {stopped:.1f} s")
    selection = resolve_selection(args)
    for variant in selection.variants:
        for mode in selection.modes:
            out = Path(args.out) / f"{variant.name}.{mode.name}"
            began = time.perf_counter()
            with provider.cluster(f"kfpc-cp-bench-{variant.name[:8]}-{mode.name[:5]}") as plane:
                started = time.perf_counter() - began
                one = type(selection)(**{**selection.__dict__, "variants": [variant], "modes": [mode], "out_dir": out})
                options = LiveOptions(run_id="bench", provider="existing",
                                      driver_images={variant.name: f"kind-registry:5000/driver:{variant.name}"})
                plan = make_plan(one, [], options, plane.handle())
                write_plan(plan, out)
                report = install_on_controlplane(plan.pairs[0], Installer(Runner(), out), selection.renderer.mirror)
            print(f"install {variant.name} x {mode.name}: start {started:.1f} s + install {report.seconds:.1f} s "
                  f"({len(report.applied)} applies, {len(report.webhooks)} webhook configs neutralised)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
