"""`run --plan --local-tag {variant}`: every variant pushes its own local builds to the shared registry."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main


def test_plan_local_tag_gives_each_variant_its_own_registry_images(kfp_trees: Path, remote_bases: Path,
                                                                   shared_renderer, capsys) -> None:
    code = main(["run", "--plan", "--plan-format", "json", "--sources", str(kfp_trees), "--remote-bases",
                 str(remote_bases), "--cache-dir", str(shared_renderer.cache_dir), "--mode", "standalone",
                 "--variant", "sidecar-plugin", "--variant", "central-driver", "--scenario", "single-component",
                 "--driver-image", "sidecar-plugin=kind-registry:5000/driver:sidecar-plugin",
                 "--driver-image", "central-driver=kind-registry:5000/driver:central-driver",
                 "--local-tag", "{variant}"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    for pair in plan["pairs"]:
        pushed = [s["argv"][-1] for s in pair["steps"] if s.get("argv", [])[:2] == ["docker", "push"]]
        assert pushed, pair["pair"]
        assert all(ref.endswith(f":{pair['variant']}") for ref in pushed), pushed
        assert f"localhost:5001/apiserver:{pair['variant']}" in pushed
