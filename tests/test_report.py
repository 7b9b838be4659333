"""The sign-off report: `kfp-conformance report` over saved bundles, its four writers, headless Chromium
rendering of the HTML verdict matrix, and the Allure adapter (pytester with the real allure-pytest)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from harness.cli import main
from harness.evidence.bundle import bundle_dir, write_bundle
from harness.judge.policy import DEFAULT_POLICY_DIR
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


def live_commit(variant: str) -> str:
    """The commit tests/factory.py records in a variant's bundles."""
    return hashlib.sha1(variant.encode()).hexdigest()


def static_json(path: Path, blocking: bool = False, commits: dict[str, str] | None = None) -> Path:
    """A static.json in the static tier's format (harness/static/runner.py static_document)."""
    commits = commits or {}
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
           "sources": {v: {"variant": v, "commit": commits.get(v) or live_commit(v), "path": "/x", "origin": "path:/x"}
                       for v in VARIANT_DRIVER},
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
    assert [d["check"] for d in report["decisions"]] == ["rbac.permission-lost"]
    assert capsys.readouterr().out.startswith("NOT READY: 1 blocking decision (1 undeclared difference)")


def test_report_is_ready_only_when_every_check_is_verified(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    policy = accept_pvc_policy(tmp_path)
    static = static_json(tmp_path / "static.json")
    assert run_cli(str(saved), "--policy", str(policy), "--static", str(static), "--out", str(tmp_path / "ok")) == 0
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["verdict"]["ready"] is True
    assert report["verdict"]["headline"].startswith("READY TO SIGN OFF")
    assert report["sources"]["central-driver"]["static"]["commit"] == live_commit("central-driver")
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
    assert [(d["check"], d["tiers"]) for d in report["decisions"]] == [("inventory.unexpected-object", ["static"])]
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
        marker.write_text(re.sub(r'"schema_version": "1\.\d+"', '"schema_version": "2.0"', marker.read_text()))
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
    assert any(d["check"] == "security.secret-leak" for d in report["decisions"])
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
    verdict = report["verdict"]
    assert int(root.get("failures")) == verdict["blocking_decisions"] == 1
    assert int(root.get("skipped")) == verdict["not_verified"] == 3
    failure = root.find(".//testsuite[@name='decisions']/testcase/failure")
    assert failure is not None and failure.get("type") == "rbac.permission-lost"
    assert "what to do:" in failure.text and "rbac-live/central-driver.standalone" in failure.text
    capsys.readouterr()


def test_html_is_one_self_contained_file(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    run_cli(str(saved), "--out", str(tmp_path / "r"), "--format", "html")
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["index.html"]
    html = (tmp_path / "r" / "index.html").read_text()
    for external in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import"):
        assert external not in html, external  # no asset or link to load: the file stands alone
    hrefs = re.findall(r'href="([^"]*)"', html)
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)  # the contents: in-page anchors
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
    start = dom.index('<table id="verdict-matrix"')
    root = ET.fromstring(dom[start:dom.index("</table>", start) + len("</table>")])
    rows = {tr.get("data-scenario"): {td.get("data-cell"): td.get("class") for td in tr.findall("td")}
            for tr in root.iter("tr") if tr.get("data-scenario")}
    assert set(rows) == {SCENARIO, "rbac-live", "static-tier"}
    assert rows[SCENARIO]["central-driver.standalone"] == "status pass"
    assert rows["rbac-live"]["central-driver.standalone"] == "status fail"
    assert rows["static-tier"]["sidecar-plugin.standalone"] == "status not-verified"
    assert "NOT READY: 1 blocking decision (1 undeclared difference)" in dom
    capsys.readouterr()


def test_allure_adapter_attaches_evidence_with_real_allure_pytest(pytester: pytest.Pytester, tmp_path: Path,
                                                                 shapes) -> None:
    saved = save(tmp_path / "out", shapes, leak=True)
    pytester.makepyfile(test_adapter=f"""
        from pathlib import Path
        from harness.evidence.bundle import iter_bundles
        from harness.report.signoff import build_signoff
        from pytest_kfp_conformance import allure_adapter

        def test_central_driver_evidence():
            bundles = list(iter_bundles({str(saved)!r}))
            report = build_signoff([{str(saved)!r}], baseline="sidecar-plugin")
            cell = next(c for c in report.data["cells"] if c["variant"] == "central-driver"
                        and c["scenario"] not in ("rbac-live", "static-tier"))
            allure_adapter.attach_cell(cell)
            allure_adapter.attach_bundle_logs(next(b for b in bundles if b.variant == "central-driver"))
            assert cell["status"] != "fail"
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
    categories = [c["name"] for c in json.loads((results / "categories.json").read_text())]
    assert categories[0].startswith("Evidence from different commits") and "Harness errors (bugs)" in categories
    assert "kfp-conformance=" in (results / "environment.properties").read_text()


# --------------------------------------------------------------------------- one definition of each count


def test_counts_agree_in_every_writer_and_a_shared_static_finding_counts_once(tmp_path: Path, shapes,
                                                                             capsys) -> None:
    """A static finding of the pair driver-pod..central-driver shows in two cells (neither is the baseline);
    the old report counted it twice in its headline and once in its static section."""
    saved = save(tmp_path / "out", shapes)
    static = static_json(tmp_path / "static.json", blocking=True)
    doc = json.loads(static.read_text())
    doc["findings"][1]["variants"] = ["driver-pod", "central-driver"]
    static.write_text(json.dumps(doc))
    assert run_cli(str(saved), "--static", str(static), "--out", str(tmp_path / "r")) == 1
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    v = report["verdict"]
    assert (v["blocking_decisions"], v["blocking_findings"]) == (2, 2)  # live PVC loss + the static object
    assert len(report["decisions"]) == 2
    assert report["static"]["blocking_findings"] == 1
    assert out.startswith("NOT READY: 2 blocking decisions (2 undeclared differences)")
    md = (tmp_path / "r" / "summary.md").read_text()
    assert f"**{v['headline']}**" in md and "## What blocks (2 decision(s), 2 finding(s))" in md
    assert f"## Not verified ({v['not_verified']} check(s)" in md
    root = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    assert (int(root.get("failures")), int(root.get("skipped"))) == (2, v["not_verified"])
    html = (tmp_path / "r" / "index.html").read_text()
    assert "What blocks: 2 decision(s), 2 finding(s)" in html and f"Not verified: {v['not_verified']} check(s)" in html
    decision = next(d for d in report["decisions"] if d["check"] == "inventory.unexpected-object")
    assert decision["cells"] == ["static-tier/central-driver.standalone", "static-tier/driver-pod.standalone"]
    assert decision["action"].startswith("add or remove the object")


def test_evidence_is_a_table_with_raw_json_one_click_away(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    run_cli(str(saved), "--out", str(tmp_path / "r"), "--format", "html")
    html = (tmp_path / "r" / "index.html").read_text()
    block = html[html.index('<details class="decision"'):html.index("</details>\n</details>")]
    assert '<table class="kv">' in block and "<th>what to do</th>" in block
    assert '<details class="raw"><summary>raw JSON</summary><pre>' in block
    evidence = block[:block.index('<details class="raw">')]
    assert "<pre>" not in evidence.split("<h3>", 1)[1]  # the evidence itself is a table, not a JSON dump
    capsys.readouterr()


def test_commit_mismatch_warns_and_blocks_signoff(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    policy = accept_pvc_policy(tmp_path)
    static = static_json(tmp_path / "static.json", commits={"central-driver": "f" * 40})
    assert run_cli(str(saved), "--policy", str(policy), "--static", str(static), "--out", str(tmp_path / "r")) == 1
    err = capsys.readouterr().err
    assert "warning: the live bundles of central-driver were built from" in err and "ffffffffffff" in err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [d["check"] for d in report["decisions"]] == ["sources.static-commit-differs"]
    assert report["matrix"][-1]["scenario"] == "sources"
    assert "> [!WARNING]" in (tmp_path / "r" / "summary.md").read_text()
    assert 'id="mismatch"' in (tmp_path / "r" / "index.html").read_text()
    # bundles of one variant from two commits: the same
    data, files = bundle_data(shapes["central-driver"], Run("central-driver"), scenario="second")
    data["source"]["commit"] = "e" * 40
    write_bundle(bundle_dir(saved, "second", "central-driver", "standalone"), data, files)
    static = static_json(tmp_path / "static2.json")
    assert run_cli(str(saved), "--policy", str(policy), "--static", str(static), "--out", str(tmp_path / "r2")) == 1
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert "sources.live-commits-differ" in [d["check"] for d in report["decisions"]]
    capsys.readouterr()


def test_known_findings_accept_a_live_difference_with_its_reason(tmp_path: Path, shapes, capsys) -> None:
    saved = save(tmp_path / "out", shapes)
    static = static_json(tmp_path / "static.json")
    known = tmp_path / "known.yaml"
    assert run_cli(str(saved), "--static", str(static), "--out", str(tmp_path / "r1"),
                   "--write-known-findings", str(known)) == 1
    capsys.readouterr()
    text = known.read_text()
    assert "rbac.permission-lost" in text and "TODO" in text
    known.write_text(text.replace(text[text.index("reason:"):text.index("\n", text.index("reason:"))],
                                  "reason: central-driver keeps PVCs in the API server (ADR-7)"))
    assert run_cli(str(saved), "--static", str(static), "--out", str(tmp_path / "r2"),
                   "--known-findings", str(known)) == 0
    out = capsys.readouterr().out
    assert out.startswith("READY TO SIGN OFF") and "1 accepted decision" in out
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["verdict"]["accepted_decisions"] == 1
    assert report["accepted"][0]["accepted"].startswith("central-driver keeps PVCs")
    assert "central-driver keeps PVCs" in (tmp_path / "r2" / "index.html").read_text()


# --------------------------------------------------------------------------- the first screen in Chromium

GOLDEN = Path(__file__).resolve().parent / "golden"
SIZES = {"1366x768": (1366, 768), "1920x1080": (1920, 1080)}
PROBED = ("verdict", "first-screen", "summary-blocking", "summary-not-verified", "summary-accepted", "toc",
          "verdict-matrix")
# Written into a COPY of index.html (the report itself has no script): element boxes after layout.
PROBE = """<script>
(function () {
  var out = {viewport: [innerWidth, innerHeight], scrollWidth: document.documentElement.scrollWidth, boxes: {}};
  IDS.forEach(function (id) {
    var e = document.getElementById(id);
    if (e) { var r = e.getBoundingClientRect(); out.boxes[id] = [r.left, r.top, r.right, r.bottom]; }
  });
  out.blocking_items = [].map.call(document.querySelectorAll('#summary-blocking li, #summary-blocking .more'),
    function (e) { var r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
  var p = document.createElement('pre'); p.id = 'kfpc-layout'; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
})();
</script>"""


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory, kfp_trees: Path, remote_bases: Path, shapes) -> Path:
    """The report over the real static tier of the three shared trees plus live bundles of the real
    pipeline_with_condition shapes, two variants built from the static tier's commits and central-driver
    from another (a commit mismatch on purpose)."""
    root = tmp_path_factory.mktemp("real-report")
    assert main(["static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
                 "--out", str(root / "static")]) == 1
    static = json.loads((root / "static" / "static.json").read_text())
    for variant in VARIANT_DRIVER:
        data, files = bundle_data(shapes[variant], Run(variant))
        if variant != "central-driver":
            data["source"]["commit"] = static["sources"][variant]["commit"]
        write_bundle(bundle_dir(root / "bundles", SCENARIO, variant, "standalone"), data, files)
    assert run_cli(str(root / "bundles"), "--static", str(root / "static" / "static.json"),
                   "--out", str(root / "report")) == 1
    return root / "report"


def _chromium_args(profile: Path, size: tuple[int, int]) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}"]


def _layout(page: Path, tmp_path: Path, size: tuple[int, int]) -> dict:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE.replace("IDS", json.dumps(PROBED)) + "</body>"))
    dom = subprocess.run([*_chromium_args(tmp_path / "profile-dom", size), "--virtual-time-budget=2000",
                          "--dump-dom", probe.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return json.loads(re.search(r'<pre id="kfpc-layout">(.*?)</pre>', dom, re.S).group(1))


def _png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG, as Chromium writes it."""
    width, height, depth, color = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and color in (2, 6), (depth, color)
    channels = 3 if color == 2 else 4
    data, pos = b"", 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(data)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def _pixel(image: tuple[int, int, list[bytes]], x: float, y: float) -> tuple[int, int, int]:
    width, _, rows = image
    channels = len(rows[0]) // width
    offset = int(x) * channels
    return tuple(rows[int(y)][offset:offset + 3])


@pytest.mark.parametrize("size", list(SIZES))
def test_html_first_screen_shows_verdict_and_blocking_list_in_headless_chromium(real_report: Path, tmp_path: Path,
                                                                                size: str) -> None:
    width, height = SIZES[size]
    page = real_report / "index.html"
    layout = _layout(page, tmp_path, (width, height))
    view_w, view_h = layout["viewport"]
    boxes = layout["boxes"]
    assert view_w == width and 0 < view_h <= height
    assert layout["scrollWidth"] <= view_w, "the page scrolls sideways (the matrix must fit the page width)"
    assert boxes["verdict-matrix"][2] <= view_w
    # the first screen, without scrolling: the verdict, then what blocks (every listed item and the "N more"
    # line), what is not verified and what is accepted
    for name in ("toc", "verdict", "summary-blocking", "summary-not-verified", "summary-accepted"):
        assert boxes[name][1] >= 0 and boxes[name][3] <= view_h, f"{name} is below the first screen at {size}"
    assert len(layout["blocking_items"]) == 7  # 6 decisions and the line saying how many more and where
    assert all(item[3] <= view_h for item in layout["blocking_items"])
    assert boxes["verdict"][3] <= boxes["summary-blocking"][1]  # verdict first
    # the screenshot: same size as the golden, and the verdict's box shows the fail colour in both
    shot = tmp_path / f"report-{width}.png"
    subprocess.run([*_chromium_args(tmp_path / "profile-shot", (width, height)), f"--screenshot={shot}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    golden = GOLDEN / f"report-{width}.png"
    golden_layout = GOLDEN / f"report-{width}.layout.json"
    if os.environ.get("KFPC_UPDATE_GOLDEN") == "1":
        shutil.copyfile(shot, golden)
        golden_layout.write_text(json.dumps({k: [round(x) for x in v] for k, v in boxes.items()}, indent=1) + "\n")
    assert golden.is_file(), f"{golden} missing: run with KFPC_UPDATE_GOLDEN=1 to create it"
    new, old = _png_pixels(shot.read_bytes()), _png_pixels(golden.read_bytes())
    assert new[:2] == old[:2] == (width, height)
    left, top, _right, bottom = boxes["verdict"]
    fail_background = (0xFF, 0xEB, 0xE9)
    assert _pixel(new, left + 4, (top + bottom) / 2) == fail_background == _pixel(old, left + 4, (top + bottom) / 2)
    # layout, not pixels: each region where the golden has it (text may change, the arrangement may not)
    expected = json.loads(golden_layout.read_text())
    for name in ("verdict", "summary-blocking", "summary-not-verified", "summary-accepted"):
        got, want = boxes[name], expected[name]
        assert abs(got[0] - want[0]) <= 4 and abs(got[2] - want[2]) <= 4, f"{name} moved sideways at {size}"
        assert abs(got[1] - want[1]) <= 80, f"{name} moved down at {size}: {got} vs {want}"
