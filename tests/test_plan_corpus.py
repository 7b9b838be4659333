"""`run --plan --corpus`: KFP's own E2E corpus joins the live plan, with its skips and reasons (no fakes)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main


def test_plan_includes_corpus_scenarios_with_skip_reasons(kfp_trees: Path, remote_bases: Path, shared_renderer,
                                                          capsys) -> None:
    code = main(["run", "--plan", "--plan-format", "json", "--corpus", "--sources", str(kfp_trees),
                 "--remote-bases", str(remote_bases), "--cache-dir", str(shared_renderer.cache_dir),
                 "--variant", "driver-pod", "--mode", "standalone", "--tag", "failing", "--tag", "modelcar"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    scenarios = plan["options"]["scenarios"]
    # the failing/ folder of the baseline tree, plus the modelcar pipeline from critical/
    assert {"corpus-fail-v2", "corpus-pipeline-with-exit-handler", "corpus-modelcar"} <= set(scenarios)
    assert all(name.startswith("corpus-") or name in ("exit-handler", "failing-task") for name in scenarios)
    steps = plan["pairs"][0]["steps"]
    skips = {s["description"].split(":")[0]: s["description"] for s in steps if s["action"] == "skip"}
    # a pipeline that cannot run is listed as skipped with the exclusion rule's reason, never dropped
    assert "model-car OCI image" in skips["skip corpus-modelcar"] and "[modelcar-oci-image]" in skips["skip corpus-modelcar"]
    runs = [s for s in steps if s["phase"] == "scenario" and s["action"] != "skip"]
    assert any("corpus-fail-v2" in s["description"] for s in runs)
