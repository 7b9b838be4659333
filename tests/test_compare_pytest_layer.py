"""scenarios/test_compare.py through pytester: one test per cell over saved bundles, with the real
allure-pytest writing results. Bundles are built from the real compiled-workflow shapes (tests/factory.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bundle import bundle_dir, write_bundle
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
    failed = allure_results["test_cell[pipeline-with-condition-central-driver-standalone]"]
    assert failed["status"] == "failed"
    outputs = next(a for a in failed["attachments"]
                   if a["name"] == "central-driver.standalone outputs")
    attached = json.loads((results / outputs["source"]).read_text())
    assert [f["id"] for f in attached["findings"]] == ["output.parameter-differs"]
    assert attached["findings"][0]["evidence"]["actual"] == "a different value"
    assert (results / "categories.json").is_file()


def test_compare_without_bundles_is_not_verified_never_passed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(SCENARIO_FILE, "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*not verified*"])
