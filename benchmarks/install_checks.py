"""Time the static install checks over the shared trees (goal: each check < 1 s per render).

Usage: .venv/bin/python benchmarks/install_checks.py [--trees DIR] [--mirror DIR]
Rendering (kustomize) is cached and not counted; the numbers printed are the checks alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import Config, load_config
from harness.models import Mode
from harness.render.kustomize import Renderer
from harness.static.crosscheck import (
    collect_images,
    driver_ca_wiring,
    image_findings,
    network_findings,
    tls_findings,
)
from harness.static.inventory import diff_inventories
from harness.static.orphans import static_orphans
from harness.static.validate import SchemaValidator

GOAL_SECONDS = 1.0


def seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def time_mode(config: Config, mode: Mode, renders: dict[str, list[dict]], validator: SchemaValidator) -> Counter:
    timings: Counter = Counter()
    base = config.variant(config.baseline)
    variants = list(config.variants.values())
    for v in variants:
        timings["validate"] += seconds(validator.validate, renders[v.name])
        timings["images"] += seconds(lambda m: image_findings(collect_images(m), mode=mode.name, variants=()),
                                     renders[v.name])
        timings["tls"] += seconds(driver_ca_wiring, renders[v.name], v, mode)
        timings["inventory"] += seconds(diff_inventories, renders[base.name], renders[v.name])
        timings["network"] += seconds(network_findings, renders[base.name], renders[v.name], mode=mode.name,
                                      variants=(base.name, v.name))
        timings["orphans"] += seconds(static_orphans, renders[base.name], renders[v.name],
                                      old_profile=config.profile_objects(base, mode),
                                      new_profile=config.profile_objects(v, mode), mode=mode.name,
                                      variants=(base.name, v.name))
    timings["tls"] += seconds(tls_findings, [], mode=mode)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", default=os.environ.get("KFPC_SOURCES", "../shared/kfp-trees"))
    parser.add_argument("--mirror", default=os.environ.get("KFPC_REMOTE_BASES", "../shared/remote-bases"))
    args = parser.parse_args()
    config = load_config()
    renderer = Renderer(mirror=Path(args.mirror), cache_dir=Path(tempfile.mkdtemp(prefix="kfpc-bench-")))
    validator = SchemaValidator()
    for mode in config.modes.values():
        renders = {v: renderer.render_install(Path(args.trees) / v, mode).manifests for v in config.variants}
        for name, total in time_mode(config, mode, renders, validator).items():
            per_render = total / len(renders)
            print(f"{mode.name:11} {name:10} {per_render:6.3f} s/render  "
                  f"{'ok' if per_render < GOAL_SECONDS else 'SLOW'}")


if __name__ == "__main__":
    main()
