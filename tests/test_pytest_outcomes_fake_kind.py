"""The pytest layer knows each test's outcome (fake kind, kubectl and docker on PATH).

- `--kfpc-keep-clusters on-failure`: a failing test's cluster is kept (recorded in the ledger) and its kind
  logs are exported; a passing session deletes it.
- A probe or migration step that could not run is a skip with its reason, exactly as the CLI says
  "not verified", never a pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.live.probes import not_applicable
from harness.models import Severity
from pytest_kfp_conformance.outcomes import not_verified_reason
from tests.livefakes import DRIVER_IMAGES, make_fakes, quick_calm_config, shared_cache

USES_CLUSTER = """
import pytest

@pytest.mark.parametrize("kfpc_cluster", ["central-driver.standalone"], indirect=True)
def test_on_the_cluster(kfpc_cluster):
    assert {outcome}, "the scenario failed"
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kfp_trees: Path,
         remote_bases: Path, *, fails: bool) -> tuple[pytest.RunResult, object]:
    fakes = make_fakes(tmp_path / "fakes")
    for key, value in fakes.env(KFPC_STATE_DIR=str(tmp_path / "state")).items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile(test_outcome=USES_CLUSTER.format(outcome="False" if fails else "True"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--kfpc-config", str(quick_calm_config(tmp_path / "config")), "--kfpc-sources", str(kfp_trees), "--kfpc-remote-bases", str(remote_bases),
        "--kfpc-cache-dir", str(shared_cache()), "--kfpc-variant", "central-driver", "--kfpc-mode", "standalone",
        "--kfpc-driver-image", f"central-driver={DRIVER_IMAGES['central-driver']}", "--kfpc-out",
        str(tmp_path / "out"), "--kfpc-keep-clusters", "on-failure", timeout=600)
    return result, fakes


def test_keep_on_failure_fake_kind_keeps_the_failed_tests_cluster_and_exports_its_logs(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kfp_trees: Path,
        remote_bases: Path) -> None:
    result, fakes = _run(pytester, monkeypatch, tmp_path, kfp_trees, remote_bases, fails=True)
    result.assert_outcomes(failed=1)
    kind = fakes.calls("kind")
    created = next(c for c in kind if c[:2] == ["create", "cluster"])
    name = created[created.index("--name") + 1]
    assert not [c for c in kind if c[:2] == ["delete", "cluster"]], "the failed test's cluster was deleted"
    exports = [c for c in kind if c[:2] == ["export", "logs"]]
    assert exports and exports[0][-1] == name and "diagnostics" in exports[0][2]
    assert name in fakes.state_data()["clusters"], "the kept cluster must still exist"
    result.stdout.fnmatch_lines(["*kept cluster " + name + "*"])  # the teardown's captured stderr


def test_keep_on_failure_fake_kind_deletes_the_cluster_when_every_test_passed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kfp_trees: Path,
        remote_bases: Path) -> None:
    result, fakes = _run(pytester, monkeypatch, tmp_path, kfp_trees, remote_bases, fails=False)
    result.assert_outcomes(passed=1)
    kind = fakes.calls("kind")
    assert [c for c in kind if c[:2] == ["delete", "cluster"]] and not [c for c in kind if c[:2] == ["export", "logs"]]
    assert fakes.state_data()["clusters"] == {}


NOT_VERIFIED = """
from harness.models import Finding, Severity
from harness.live.probes import not_applicable
from pytest_kfp_conformance.outcomes import skip_if_not_verified

def test_probes():
    findings = [Finding("security.cross-tenant-read", Severity.INFO, "security", "multi-user", ("central-driver",),
                        "probe cross-tenant-read", "refused: HTTP 403"),
                not_applicable("driver-unauthenticated", "the variant has no driver service", variant="driver-pod",
                               mode="multi-user")]
    assert not [f for f in findings if f.severity is Severity.ERROR]
    skip_if_not_verified(findings)
"""


def test_not_verified_probe_is_a_skip_with_its_reason_not_a_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nv=NOT_VERIFIED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*1 check(s) not verified: security.driver-unauthenticated*"
                                 "the variant has no driver service*"])


def test_findings_that_all_ran_give_no_skip_reason() -> None:
    ran = not_applicable("x", "why", variant="v", mode="m")
    assert not_verified_reason([]) == "" and ran.not_verified and ran.severity is Severity.INFO
