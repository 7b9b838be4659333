"""The sign-off report: `kfp-conformance report` over saved bundles, its four writers, headless Chromium
rendering of the HTML verdict matrix, and the Allure adapter (pytester with the real allure-pytest)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.bundle import bundle_dir, write_bundle
from harness.cli import main
from harness.policy import DEFAULT_POLICY_DIR
from tests.factory import VARIANT_DRIVER, Run, bundle_data, condition_shapes

SCENARIO = "pipeline-with-condition"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZWZsb3c6ZGVmYXVsdCJ9.QUJDREVGR0hJSktMTU5PUA"
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="module")
def shapes(kfp_trees: Path):
    return condition_shapes(kfp_trees)


def save(root: Path, shapes, variants=tuple(VARIANT_DRIVER), leak: bool = False) -> Path:
    """Bundles of the real shapes under root/bundles/... as the live tier saves them."""
    for variant in variants:
        data, files = bundle_data(shapes[variant], Run(variant))
        if leak and variant == "central-driver":
            files[data["driver_logs"]["files"][0]] += f"E0501 12:00:00.000000 1 auth.go:9] token={TOKEN}\n"
        write_bundle(bundle_dir(root, SCENARIO, variant, "standalone"), data, files)
    return root


def static_json(path: Path, blocking: bool = False) -> Path:
    """A static.json in the static tier's format (harness/static.py static_document)."""
    findings = [{"id": "rbac.permission-gained", "severity": "error", "category": "rbac", "mode": "standalone",
                 "variants": ["sidecar-plugin", "central-driver"],
                 "subject": "ServiceAccount kubeflow/ml-pipeline-driver",
                 "message": "central-driver's driver can list secrets in kubeflow", "evidence": {},
                 "expected": True}]
    if blocking:
        findings.append({"id": "inventory.unexpected-object", "severity": "error", "category": "inventory",
                         "mode": "standalone", "variants": ["sidecar-plugin", "central-driver"],
                         "subject": "ConfigMap kubeflow/surprise", "message": "only central-driver renders it",
                         "evidence": {}, "expected": False})
    doc = {"schema_version": "1.0", "modes": ["standalone"], "baseline": "sidecar-plugin",
           "sources": {v: {"variant": v, "commit": f"{i}" * 40, "path": "/x", "origin": "path:/x"}
                       for i, v in enumerate(VARIANT_DRIVER)},
           "findings": findings, "summary": {"findings": len(findings)}}
    path.write_text(json.dumps(doc))
    return path


def accept_pvc_policy(tmp_path: Path) -> Path:
    """The shipped policy plus a rule accepting central-driver's PVC loss (to reach a ready report)."""
    target = tmp_path / "policy"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    (target / "accepted.yaml").write_text(
        "apiVersion: kfp-conformance/v1\nkind: ExpectedDifferences\ndifferences:\n"
        "  - id: test.accept-pvc-loss\n    description: accepted for this test only\n"
        "    reference: kfp-variants.md §6\n"
        "    match: {finding: rbac.permission-lost, variants: [central-driver], "
        "field: create persistentvolumeclaims in kubeflow}\n")
    return target


def run_cli(*argv: str) -> int:
    return main(["report", *argv])


def test_report_json_is_byte_identical_on_two_runs(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out" / "run-1", shapes)
    assert run_cli(str(saved), "--out", str(tmp_path / "r1")) == 1
    assert run_cli(str(saved), "--out", str(tmp_path / "r2")) == 1
    for name in ("report.json", "summary.md", "index.html", "junit.xml"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["verdict"]["status"] == "fail"
    assert [d["id"] for d in report["differences"]] == ["rbac.permission-lost"]
    assert capsys.readouterr().out.startswith("NOT READY: 1 undeclared difference")


def test_report_is_ready_only_when_every_check_is_verified(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    policy = accept_pvc_policy(tmp_path)
    static = static_json(tmp_path / "static.json")
    assert run_cli(str(saved), "--policy", str(policy), "--static", str(static), "--out", str(tmp_path / "ok")) == 0
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["verdict"]["ready"] is True
    assert report["verdict"]["headline"].startswith("READY TO SIGN OFF")
    assert report["sources"]["central-driver"]["static"]["commit"] == "2" * 40
    assert (tmp_path / "ok" / "summary.md").read_text().splitlines()[2].startswith("**READY TO SIGN OFF")
    # Without the static tier the same evidence is not verified, never "passed".
    assert run_cli(str(saved), "--policy", str(policy), "--out", str(tmp_path / "nv")) == 1
    report = json.loads((tmp_path / "nv" / "report.json").read_text())
    assert report["verdict"]["status"] == "not-verified"
    assert "cannot be signed off" in report["verdict"]["headline"]
    # A blocking static finding fails the report.
    static = static_json(tmp_path / "static-bad.json", blocking=True)
    assert run_cli(str(saved), "--policy", str(policy), "--static", str(static), "--out", str(tmp_path / "bad")) == 1
    report = json.loads((tmp_path / "bad" / "report.json").read_text())
    assert [d["id"] for d in report["differences"]] == ["inventory.unexpected-object"]
    capsys.readouterr()


def test_report_merges_bundles_from_several_ci_jobs(tmp_path: Path, shapes, capsys) -> None:
    save(tmp_path / "single", shapes)
    save(tmp_path / "job-a", shapes, variants=("driver-pod", "sidecar-plugin"))
    save(tmp_path / "job-b", shapes, variants=("central-driver",))
    run_cli(str(tmp_path / "single"), "--out", str(tmp_path / "r-single"))
    run_cli(str(tmp_path / "job-a"), str(tmp_path / "job-b"), "--out", str(tmp_path / "r-merged"))
    assert (tmp_path / "r-single" / "report.json").read_bytes() == (tmp_path / "r-merged" / "report.json").read_bytes()
    # Only job-a: central-driver is not verified, not silently dropped.
    run_cli(str(tmp_path / "job-a"), "--out", str(tmp_path / "r-a"))
    report = json.loads((tmp_path / "r-a" / "report.json").read_text())
    cell = report["matrix"][0]["cells"]["central-driver.standalone"]
    assert cell["status"] == "not-verified"
    capsys.readouterr()


def test_two_different_bundles_for_one_cell_are_refused(tmp_path: Path, shapes, capsys) -> None:
    save(tmp_path / "job-a", shapes, variants=("central-driver",))
    data, files = bundle_data(shapes["central-driver"], Run("central-driver", seed=9))
    write_bundle(bundle_dir(tmp_path / "job-b", SCENARIO, "central-driver", "standalone"), data, files)
    assert run_cli(str(tmp_path / "job-a"), str(tmp_path / "job-b"), "--out", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: two different bundles for pipeline-with-condition/central-driver.standalone")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("problem", ["missing-dir", "major-version", "bad-static", "bad-format"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, shapes, capsys, problem) -> None:
    saved = save(tmp_path / "out", shapes, variants=("sidecar-plugin",))
    args = [str(saved), "--out", str(tmp_path / "r")]
    if problem == "missing-dir":
        args[0] = str(tmp_path / "nope")
    elif problem == "major-version":
        marker = bundle_dir(saved, SCENARIO, "sidecar-plugin", "standalone") / "bundle.json"
        marker.write_text(marker.read_text().replace('"schema_version": "1.0"', '"schema_version": "2.0"'))
    elif problem == "bad-static":
        (tmp_path / "s.json").write_text("[1, 2]")
        args += ["--static", str(tmp_path / "s.json")]
    if problem == "bad-format":
        with pytest.raises(SystemExit) as info:
            run_cli(*args, "--format", "pdf")
        assert info.value.code == 2
    else:
        assert run_cli(*args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_leaked_token_fails_the_report_and_is_in_no_report_file(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes, leak=True)
    assert run_cli(str(saved), "--out", str(tmp_path / "r")) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    leaks = [f for f in report["security"] if f["id"] == "security.secret-leak"]
    assert leaks and all(f["blocking"] for f in leaks)
    assert any(d["id"] == "security.secret-leak" for d in report["differences"])
    for file in (tmp_path / "r").iterdir():
        text = file.read_text()
        assert TOKEN not in text and TOKEN[:40] not in text, file.name
    capsys.readouterr()


def test_unfinished_bundle_dir_is_reported_not_verified(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    marker = bundle_dir(saved, SCENARIO, "driver-pod", "standalone") / "bundle.json"
    marker.unlink()
    assert run_cli(str(saved), "--out", str(tmp_path / "r")) == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["unfinished"] == [f"{SCENARIO}/driver-pod.standalone"]
    cell = report["matrix"][0]["cells"]["driver-pod.standalone"]
    assert cell["status"] == "not-verified" and "did not finish" in cell["reasons"][0]
    capsys.readouterr()


def test_junit_marks_failures_and_not_verified_as_skipped(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    run_cli(str(saved), "--out", str(tmp_path / "r"))
    root = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    counts = report["verdict"]["counts"]
    assert int(root.get("failures")) == counts["fail"] == 1
    assert int(root.get("skipped")) == counts["not-verified"] + counts["skipped"]
    failure = root.find(".//testcase[@classname='rbac-live.central-driver.standalone']/failure")
    assert failure is not None and failure.get("type") == "rbac.permission-lost"
    capsys.readouterr()


def test_html_is_one_self_contained_file(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    run_cli(str(saved), "--out", str(tmp_path / "r"), "--format", "html")
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["index.html"]
    html = (tmp_path / "r" / "index.html").read_text()
    for external in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert external not in html, external  # no asset or link to load: the file stands alone
    capsys.readouterr()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail(f"headless Chromium is not installed (install it: {CHROMIUM_INSTALL})")


def test_html_verdict_matrix_renders_in_headless_chromium(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    run_cli(str(saved), "--out", str(tmp_path / "r"))
    page = (tmp_path / "r" / "index.html").resolve().as_uri()
    chromium = _chromium()
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000", page], check=True,
                   capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, 2000)
    dom = subprocess.run([*common, "--dump-dom", page], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    root = ET.fromstring(dom[dom.index('<table id="verdict-matrix">'):dom.index("</table>") + len("</table>")])
    rows = {tr.get("data-scenario"): {td.get("data-cell"): td.get("class") for td in tr.findall("td")}
            for tr in root.iter("tr") if tr.get("data-scenario")}
    assert set(rows) == {SCENARIO, "rbac-live", "static-tier"}
    assert rows[SCENARIO]["central-driver.standalone"] == "status pass"
    assert rows["rbac-live"]["central-driver.standalone"] == "status fail"
    assert rows["static-tier"]["sidecar-plugin.standalone"] == "status not-verified"
    assert "NOT READY: 1 undeclared difference" in dom
    capsys.readouterr()


def test_allure_adapter_attaches_evidence_with_real_allure_pytest(pytester: pytest.Pytester, tmp_path: Path,
                                                                 shapes) -> None:
    saved = save(tmp_path / "out", shapes, leak=True)
    pytester.makepyfile(test_adapter=f"""
        from pathlib import Path
        from harness.bundle import iter_bundles
        from harness.compare import compare_all
        from harness.policy import load_policy
        from pytest_kfp_conformance import allure_adapter

        def test_central_driver_evidence():
            bundles = list(iter_bundles({str(saved)!r}))
            [comparison] = [c for c in compare_all(bundles, variants=[b.variant for b in bundles],
                            baseline="sidecar-plugin", policy=load_policy()) if c.scenario != "rbac-live"]
            cell = next(c for c in comparison.cells if c.variant == "central-driver")
            allure_adapter.attach_cell(cell)
            allure_adapter.attach_bundle_logs(next(b for b in bundles if b.variant == "central-driver"))
            assert not [f for f in cell.findings if f.blocking]
    """)
    results = pytester.path / "allure-results"
    # the adapter is a pytest11 plugin of the package, loaded with the others
    outcome = pytester.runpytest(f"--alluredir={results}")
    outcome.assert_outcomes(failed=1)  # the leaked token is blocking
    [result] = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert result["status"] == "failed"
    names = [a["name"] for a in result["attachments"]]
    assert "central-driver.standalone secrets" in names
    assert "central-driver.standalone logs/ml-pipeline-driver.log" in names
    for attachment in results.glob("*-attachment*"):
        assert TOKEN not in attachment.read_text()
    assert json.loads((results / "categories.json").read_text())[0]["name"].startswith("Undeclared")
    assert "kfp-conformance=" in (results / "environment.properties").read_text()
