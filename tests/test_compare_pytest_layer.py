"""scenarios/test_compare.py through pytester: one test per cell over saved bundles, with the real
allure-pytest writing results. Bundles are built from the real compiled-workflow shapes (tests/factory.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.evidence.bundle import bundle_dir, write_bundle
from tests.factory import Run, bundle_data, condition_shapes

REPO = Path(__file__).resolve().parent.parent
SCENARIO_FILE = str(REPO / "scenarios" / "test_compare.py")


def _save(root: Path, kfp_trees: Path, *, change_central_output: bool = False) -> Path:
    for variant, shape in condition_shapes(kfp_trees).items():
        data, files = bundle_data(shape, Run(variant))
        if change_central_output and variant == "central-driver":
            task = next(t for t in data["tasks"] if t["outputs"]["parameters"])
            name = next(iter(task["outputs"]["parameters"]))
            task["outputs"]["parameters"][name] = "a different value"
        write_bundle(bundle_dir(root, "pipeline-with-condition", variant, "standalone"), data, files)
    return root


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    return {line.split("::")[-1].split(" ")[0]: line.split(" ")[0] for line in result.outlines
            if line.startswith(("PASSED", "FAILED", "SKIPPED"))}


def test_compare_cells_fail_on_changed_output_and_attach_evidence_to_allure(
        pytester: pytest.Pytester, kfp_trees: Path, tmp_path: Path) -> None:
    bundles = _save(tmp_path / "out", kfp_trees, change_central_output=True)
    results = tmp_path / "allure"
    result = pytester.runpytest(SCENARIO_FILE, "-p", "no:cacheprovider", "-rA", "--kfpc-bundles", str(bundles),
                                f"--alluredir={results}")
    outcomes = _outcomes(result)
    assert outcomes["test_cell[pipeline-with-condition-central-driver-standalone]"] == "FAILED"
    assert outcomes["test_cell[pipeline-with-condition-sidecar-plugin-standalone]"] == "PASSED"
    allure_results = {r["name"]: r
                      for r in (json.loads(p.read_text()) for p in results.glob("*-result.json"))}
    # the changed-output cell itself (rbac-live's central-driver cell fails too, on the PVC permission)
    failed = allure_results["pipeline-with-condition on central-driver (standalone)"]
    assert failed["status"] == "failed"
    outputs = next(a for a in failed["attachments"]
                   if a["name"] == "central-driver.standalone outputs")
    attached = json.loads((results / outputs["source"]).read_text())
    assert [f["id"] for f in attached["findings"]] == ["output.parameter-differs"]
    assert attached["findings"][0]["evidence"]["actual"] == "a different value"
    assert (results / "categories.json").is_file()


def test_compare_without_bundles_is_not_verified_never_passed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(SCENARIO_FILE, "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2)  # the cells and the verdict
    result.stdout.fnmatch_lines(["*not verified*"])


def _static(path: Path, commits: dict[str, str]) -> Path:
    """A static.json in the static tier's format with one blocking finding shared by two non-baseline cells."""
    finding = {"id": "inventory.unexpected-object", "severity": "error", "category": "inventory",
               "mode": "standalone", "variants": ["driver-pod", "central-driver"],
               "subject": "ConfigMap kubeflow/surprise", "message": "only central-driver renders it",
               "evidence": {"overlay": "ci"}, "expected": False}
    path.write_text(json.dumps({"schema_version": "1.0", "modes": ["standalone"], "baseline": "sidecar-plugin",
                                "sources": {v: {"variant": v, "commit": c, "path": "/x", "origin": "path:/x"}
                                            for v, c in commits.items()},
                                "findings": [finding], "summary": {"findings": 1}}))
    return path


def test_compare_pytest_and_allure_agree_with_the_cli_verdict(pytester: pytest.Pytester, kfp_trees: Path,
                                                              tmp_path: Path, capsys) -> None:
    from harness.cli import main

    bundles = _save(tmp_path / "out", kfp_trees)
    commits = {json.loads(p.read_text())["variant"]: json.loads(p.read_text())["source"]["commit"]
               for p in bundles.rglob("bundle.json")}
    static = _static(tmp_path / "static.json", commits)
    assert main(["report", str(bundles), "--static", str(static), "--out", str(tmp_path / "report")]) == 1
    capsys.readouterr()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    results = tmp_path / "allure"
    result = pytester.runpytest(SCENARIO_FILE, "-p", "no:cacheprovider", "-rA", "--kfpc-bundles", str(bundles),
                                "--kfpc-static", str(static), f"--alluredir={results}")
    outcomes = _outcomes(result)
    # the verdict test fails exactly when the CLI exits 1 on differences, with the same headline
    assert outcomes["test_verdict"] == "FAILED"
    result.stdout.fnmatch_lines([f"*{report['verdict']['headline']}*"])
    # one test per matrix cell, failing exactly where the report's matrix says fail
    want = {f"test_cell[{row['scenario']}-{col.replace('.', '-')}]": {"fail": "FAILED", "pass": "PASSED"}.get(
        cell["status"], "SKIPPED") for row in report["matrix"] for col, cell in row["cells"].items()}
    assert {k: v for k, v in outcomes.items() if k.startswith("test_cell")} == want
    assert want["test_cell[static-tier-driver-pod-standalone]"] == "FAILED"
    allure = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    labels = {r["name"]: {(label["name"], label["value"]) for label in r["labels"]} for r in allure}
    cell = next(r for r in allure if r["name"].startswith("static-tier on central-driver"))
    assert ("suite", "central-driver x standalone") in labels[cell["name"]]
    assert {(p["name"], p["value"].strip("'")) for p in cell["parameters"]} >= {("variant", "central-driver"),
                                                                      ("mode", "standalone")}
    verdict = next(r for r in allure if r["name"] == report["verdict"]["headline"])
    assert {(p["name"], p["value"].strip("'")) for p in verdict["parameters"]} >= {
        ("blocking decisions", str(report["verdict"]["blocking_decisions"]))}
    # categories that mean something: the static install difference and the live RBAC one land apart
    import re

    categories = json.loads((results / "categories.json").read_text())

    def category(message: str) -> str:
        return next(c["name"] for c in categories if "failed" in c["matchedStatuses"]
                    and re.fullmatch(c.get("messageRegex", "(?s).*"), message))

    by_name = {r["name"]: r for r in allure}
    assert category(cell["statusDetails"]["message"]).startswith("Install differs")
    rbac = by_name["rbac-live on central-driver (standalone)"]
    assert category(rbac["statusDetails"]["message"]).startswith("Permissions differ")
