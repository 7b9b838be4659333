"""The report's streaming bundle read (harness/evidence/compact.py) on bundles built from the real shapes: the
item-at-a-time path gives exactly what the whole-document read gives, words every error the same, and a
bundle.json in any other layout is still read (whole)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import BundleError
from harness.evidence.bundle import bundle_dir, dump_json, read_bundle, write_bundle
from harness.evidence.compact import _stream, evidence_of, iter_evidence, read_evidence
from harness.judge.compare import compare_scenario
from harness.judge.policy import load_policy
from tests.factory import VARIANT_DRIVER, Run, bundle_data, condition_shapes

SCENARIO = "pipeline-with-condition"
TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZWZsb3cifQ.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def shapes(kfp_trees: Path):
    return condition_shapes(kfp_trees)


def _leaky(data, files) -> None:
    """A credential in a log and in a driver message, a warning class in a log: every scanned input is used."""
    files[data["driver_logs"]["files"][0]] += f"W0501 12:00:00.000000 1 a.go:1] token Bearer {TOKEN}\n"
    data["driver_nodes"][0]["message"] = f"Authorization: Bearer {TOKEN}"


def _write(root: Path, shapes, variant: str, mutate=None) -> Path:
    data, files = bundle_data(shapes[variant], Run(variant))
    if mutate:
        mutate(data, files)
    target = bundle_dir(root, SCENARIO, variant, "standalone")
    write_bundle(target, data, files)
    return target


def test_streamed_read_equals_the_whole_read_for_every_variant(tmp_path: Path, shapes) -> None:
    for variant in VARIANT_DRIVER:
        target = _write(tmp_path, shapes, variant, _leaky)
        streamed = _stream(target / "bundle.json")
        assert streamed is not None, "dump_json's layout must take the item-at-a-time path"
        whole = evidence_of(read_bundle(target))
        assert streamed == whole
        assert streamed.scan.secrets and streamed.scan.inline_secrets and streamed.scan.classes
        assert "tasks" not in streamed.data and "files" not in streamed.data


def test_report_comparison_is_the_same_from_streamed_evidence(tmp_path: Path, shapes) -> None:
    for variant in VARIANT_DRIVER:
        _write(tmp_path, shapes, variant, _leaky if variant == "central-driver" else None)
    policy = load_policy()
    whole = {b.variant: read_bundle(b.path) for b in iter_evidence(tmp_path)}
    streamed = {b.variant: b for b in iter_evidence(tmp_path)}
    args = {"variants": list(VARIANT_DRIVER), "baseline": "sidecar-plugin", "policy": policy}
    assert compare_scenario(SCENARIO, "standalone", streamed, **args) == \
        compare_scenario(SCENARIO, "standalone", whole, **args)


def _error(read, target: Path) -> str:
    with pytest.raises(BundleError) as caught:
        read(target)
    return str(caught.value)


@pytest.mark.parametrize("damage", ["invalid item", "invalid envelope", "truncated", "changed file",
                                    "newer major", "bad file name"])
def test_streamed_read_words_every_error_like_the_whole_read(tmp_path: Path, shapes, damage: str) -> None:
    target = _write(tmp_path, shapes, "sidecar-plugin")
    marker = target / "bundle.json"
    data = json.loads(marker.read_text())
    if damage == "invalid item":
        data["tasks"][-1]["state"] = 7
    elif damage == "invalid envelope":
        data["run"]["state"] = ["x"]
    elif damage == "newer major":
        data["schema_version"] = "2.0"
    elif damage == "bad file name":
        data["files"]["../x.log"] = "0" * 64
    if damage == "truncated":
        marker.write_text(dump_json(data)[:-200])
    elif damage == "changed file":
        name = sorted(data["files"])[0]
        (target / name).write_text("changed\n")
    else:
        marker.write_text(dump_json(data))
    message = _error(read_bundle, target)
    assert _error(read_evidence, target) == message


def test_another_layout_is_read_whole_with_the_same_result(tmp_path: Path, shapes) -> None:
    target = _write(tmp_path, shapes, "central-driver", _leaky)
    expected = evidence_of(read_bundle(target))
    marker = target / "bundle.json"
    marker.write_text(json.dumps(json.loads(marker.read_text())))  # compact: no line structure to scan
    assert _stream(marker) is None
    found = read_evidence(target)
    assert found.normal == expected.normal and found.scan == expected.scan and found.timings == expected.timings
