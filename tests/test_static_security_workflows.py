"""Compiled workflows: a driver-transport field difference is expected only where the two variants really use
different transports; driver arguments are classified by meaning. On copies of the real central-driver goldens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.static.workflows import GOLDEN_DIR, RunViews, compare_compiled_workflows

FILE = "add_numbers.yaml"


@pytest.fixture
def central_copy(kfp_trees: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "central-copy"
    shutil.copytree(kfp_trees / "central-driver" / GOLDEN_DIR, copy)
    return copy


@pytest.fixture(scope="module")
def views() -> RunViews:
    """One memo of canonical views for this module, as one static run keeps them: the shared trees are never
    edited, and each test edits its own copy (another path) before comparing it."""
    return RunViews()


@pytest.fixture
def compare(views):
    def run(base: Path, other: Path, base_variant: str = "central-driver"):
        return compare_compiled_workflows(base, other, base_variant=base_variant, other_variant="candidate",
                                          views=views)
    return run


def test_http_success_condition_change_between_same_transport_builds_is_unexpected(kfp_trees, central_copy, compare) -> None:
    golden = central_copy / FILE
    text = golden.read_text()
    assert text.count("successCondition: response.statusCode == 200") >= 1
    golden.write_text(text.replace("successCondition: response.statusCode == 200",
                                   "successCondition: response.statusCode < 500"))
    findings = compare(kfp_trees / "central-driver", central_copy).findings()
    # one per HTTP driver template (system-container-driver, system-dag-driver), none classed expected
    assert findings and {(f.id, f.severity.value, f.expected) for f in findings} == {
        ("workflow.unexpected-difference", "error", False)}
    for finding in findings:
        assert finding.subject == f"compiled-workflows/{FILE}" and finding.variants == ("central-driver", "candidate")
        assert finding.evidence["path"].endswith("http.successCondition")
        assert "same transport (http)" in finding.evidence["reason"]


def test_success_condition_difference_between_transports_stays_expected(kfp_trees, compare) -> None:
    """sidecar-plugin (plugin) vs central-driver (http): the HTTP settings are transport, as before."""
    findings = compare(kfp_trees / "sidecar-plugin", kfp_trees / "central-driver", "sidecar-plugin").findings()
    http = [f for f in findings if f.evidence.get("path", "").endswith(".http")]
    assert http and all(f.expected for f in http)


def test_hard_coded_namespace_driver_argument_is_unexpected(kfp_trees, central_copy, compare) -> None:
    golden = central_copy / FILE
    text = golden.read_text()
    assert '"namespace":"{{workflow.namespace}}"' in text
    golden.write_text(text.replace('"namespace":"{{workflow.namespace}}"', '"namespace":"kubeflow"'))
    for base, label in ((kfp_trees / "central-driver", "central-driver"), (kfp_trees / "sidecar-plugin", "sidecar-plugin")):
        unexpected = [f for f in compare(base, central_copy, label).findings()
                      if not f.expected and "namespace" in f.evidence.get("path", "")]
        assert unexpected, label
        assert all(f.severity.value == "error" and f.evidence["example"]["other"] == "kubeflow"
                   and "driver.args.namespace" in f.evidence["path"] for f in unexpected)


def test_workflow_namespace_argument_of_the_central_driver_is_transport_only(kfp_trees, compare) -> None:
    findings = compare(kfp_trees / "sidecar-plugin", kfp_trees / "central-driver", "sidecar-plugin").findings()
    namespace = [f for f in findings if "namespace" in f.evidence.get("path", "")]
    assert namespace and all(f.expected for f in namespace)
