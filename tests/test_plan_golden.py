"""`kfp-conformance run --plan` over the shared trees, every variant x mode: complete and deterministic.

No fakes: the plan runs nothing. The golden files are regenerated with KFPC_UPDATE_GOLDEN=1 (review the diff:
a change means the live tier would run different commands or apply different manifests).
"""

from __future__ import annotations

import json

from harness.cli import main
from tests.golden_files import check_golden
from tests.livefakes import shared_cache

SCENARIOS = ["single-component", "loops", "exit-handler"]


def _plan(capsys, kfp_trees, remote_bases, fmt, out):
    # --out: the plan's files go to the test's own directory, not ./out of the repo (two workers wrote there at once)
    args = ["run", "--plan", "--plan-format", fmt, "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
            "--cache-dir", str(shared_cache()), "--out", str(out),
            "--driver-image", "sidecar-plugin=kind-registry:5000/driver:ci",
            "--driver-image", "central-driver=kind-registry:5000/driver:latest"]
    for name in SCENARIOS:
        args += ["--scenario", name]
    assert main(args) == 0
    captured = capsys.readouterr()
    return captured.out




def test_plan_json_all_variants_modes_matches_golden(capsys, kfp_trees, remote_bases, tmp_path):
    first = _plan(capsys, kfp_trees, remote_bases, "json", tmp_path / "first")
    data = json.loads(first)
    pairs = [p["pair"] for p in data["pairs"]]
    assert pairs == [f"{v}.{m}" for v in ("driver-pod", "sidecar-plugin", "central-driver")
                     for m in ("standalone", "multi-user", "tls")]
    for pair in data["pairs"]:
        phases = [s["phase"] for s in pair["steps"]]
        assert phases[0] == "cluster" and phases[-1] == "cleanup"
        assert phases.index("cluster-scoped") < phases.index("overlay") < phases.index("readiness") < phases.index("access")
        assert all(s["timeout"] > 0 for s in pair["steps"] if s.get("argv"))
        applies = [s["manifest"] for s in pair["steps"] if s["action"] == "apply" and s.get("manifest")]
        assert all(m in data["files"] for m in applies)  # every applied manifest is listed with a digest
        if pair["mode"] == "tls":
            access = next(s["description"] for s in pair["steps"] if s["phase"] == "access")
            secret = "kfp-api-tls-cert" if pair["variant"] == "driver-pod" else "argo-workflows-agent-ca-certificates"
            assert f"CA from Secret kubeflow/{secret} key ca.crt" in access
    text = json.dumps(data)
    assert "/tmp/" not in text and str(kfp_trees) not in text and str(shared_cache()) not in text
    assert _plan(capsys, kfp_trees, remote_bases, "json", tmp_path / "second") == first  # deterministic
    check_golden("plan-all.json", first)


def test_plan_text_all_variants_modes_matches_golden(capsys, kfp_trees, remote_bases, tmp_path):
    text = _plan(capsys, kfp_trees, remote_bases, "text", tmp_path)
    assert text.count(" on cluster kfpc-plan-") == 9
    check_golden("plan-all.txt", text)
