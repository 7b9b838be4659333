"""The pytest layer over the static tier: scenarios/test_static.py run through pytester, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCENARIO = str(REPO / "scenarios" / "test_static.py")


@pytest.fixture
def kfpc_args(kfp_trees: Path, remote_bases: Path, shared_renderer) -> list[str]:
    return ["-p", "no:cacheprovider", "--kfpc-sources", str(kfp_trees), "--kfpc-remote-bases", str(remote_bases),
            "--kfpc-cache-dir", str(shared_renderer.cache_dir)]


def test_self_check_every_check_mode_and_tree_passes(pytester: pytest.Pytester, kfpc_args: list[str]) -> None:
    result = pytester.runpytest(SCENARIO, *kfpc_args, "--kfpc-self-check")
    # 9 per-mode checks (6 install + 3 security review) x 3 modes x 3 self-pairs + the modeless workflow check
    result.assert_outcomes(passed=9 * 3 * 3 + 3)


def test_sidecar_vs_central_fails_exactly_the_checks_with_blocking_findings(
        pytester: pytest.Pytester, kfpc_args: list[str]) -> None:
    result = pytester.runpytest(SCENARIO, *kfpc_args, "--kfpc-mode", "standalone", "--kfpc-variant",
                                "sidecar-plugin", "--kfpc-variant", "central-driver", "-rA")
    outcomes = {line.split("::")[-1].split(" ")[0]: line.split(" ")[0] for line in result.outlines
                if line.startswith(("PASSED", "FAILED"))}
    assert outcomes == {
        "test_static_check[inventory-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[validate-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[rbac-standalone-sidecar-plugin..central-driver]": "FAILED",
        "test_static_check[crosscheck-standalone-sidecar-plugin..central-driver]": "FAILED",
        "test_static_check[tls-transport-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[orphans-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[hardening-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[exposure-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[credentials-standalone-sidecar-plugin..central-driver]": "PASSED",
        "test_static_check[workflows-all-sidecar-plugin..central-driver]": "FAILED",
    }
    # the failure message is the evidence: the finding id and the concrete resource
    result.stdout.fnmatch_lines(["*network.unprotected-service*Service kubeflow/ml-pipeline-driver*"])


def test_unknown_variant_is_a_usage_error(pytester: pytest.Pytester, kfpc_args: list[str]) -> None:
    result = pytester.runpytest(SCENARIO, *kfpc_args, "--kfpc-variant", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown variant 'nope'*"])
