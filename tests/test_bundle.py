"""The evidence-bundle format: write/read round trip, validation, versioning, hashes, no half-made bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import BundleError
from harness.evidence.bundle import (
    SCHEMA_VERSION,
    bundle_dir,
    iter_bundles,
    read_bundle,
    unfinished_dirs,
    validate_bundle_data,
    write_bundle,
)
from tests.factory import VARIANT_DRIVER, Run, bundle_data, condition_shapes


@pytest.fixture(scope="module")
def shapes(kfp_trees: Path):
    return condition_shapes(kfp_trees)


def test_real_shapes_write_and_read_back_for_every_variant(tmp_path: Path, shapes) -> None:
    for variant, shape in shapes.items():
        data, files = bundle_data(shape, Run(variant))
        target = bundle_dir(tmp_path / "out" / "run-1", "pipeline-with-condition", variant, "standalone")
        marker = write_bundle(target, data, files)
        assert marker == target / "bundle.json"
        bundle = read_bundle(target)
        assert bundle.key == ("pipeline-with-condition", variant, "standalone")
        assert bundle.data["schema_version"] == SCHEMA_VERSION
        assert set(bundle.files) == set(files)
        driver_log = bundle.data["driver_logs"]["files"][0]
        assert "root/condition-1" in bundle.read_text(driver_log)
    central = read_bundle(bundle_dir(tmp_path / "out" / "run-1", "pipeline-with-condition", "central-driver",
                                     "standalone"))
    # HTTP-template drivers keep the raw JSON `result`; plugin drivers keep parameters.
    assert all("result" in n["outputs"] for n in central.driver_nodes)
    assert [b.variant for b in iter_bundles(tmp_path / "out")] == sorted(VARIANT_DRIVER)


def test_bundle_json_is_written_last_and_a_dir_without_it_is_unfinished(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["sidecar-plugin"], Run("sidecar-plugin"))
    target = bundle_dir(tmp_path, "s", "sidecar-plugin", "standalone")
    write_bundle(target, data, files)
    (target / "bundle.json").unlink()  # as if the collector died before the marker
    assert unfinished_dirs(tmp_path) == [target]
    with pytest.raises(BundleError, match="no bundle.json"):
        read_bundle(target)


def test_invalid_data_is_refused_before_anything_is_written(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["sidecar-plugin"], Run("sidecar-plugin"))
    data["tasks"][0]["state"] = 7
    target = tmp_path / "b"
    with pytest.raises(BundleError, match=r"tasks/0/state: 7 is not of type 'string'"):
        write_bundle(target, data, files)
    assert not target.exists()


def test_partial_bundle_needs_a_reason(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["sidecar-plugin"], Run("sidecar-plugin"))
    data["status"] = "partial"
    with pytest.raises(BundleError, match="'reason' is a required property"):
        write_bundle(tmp_path / "b", data, files)
    data["reason"] = "run timed out after 900 s"
    write_bundle(tmp_path / "b", data, files)
    assert not read_bundle(tmp_path / "b").complete


def test_complete_bundle_is_not_overwritten_unless_asked(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["central-driver"], Run("central-driver"))
    write_bundle(tmp_path / "b", data, files)
    with pytest.raises(BundleError, match="already holds a complete bundle"):
        write_bundle(tmp_path / "b", data, files)
    data["run"]["state"] = "FAILED"
    write_bundle(tmp_path / "b", data, files, overwrite=True)
    assert read_bundle(tmp_path / "b").data["run"]["state"] == "FAILED"


def test_unknown_major_version_is_refused_with_one_line(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["central-driver"], Run("central-driver"))
    write_bundle(tmp_path / "b", data, files)
    marker = tmp_path / "b" / "bundle.json"
    doc = json.loads(marker.read_text())
    doc["schema_version"] = "2.0"
    marker.write_text(json.dumps(doc))
    with pytest.raises(BundleError) as info:
        read_bundle(tmp_path / "b")
    assert "schema_version 2.0 is not supported (this kfp-conformance reads 1.x)" in info.value.line()
    assert "\n" not in info.value.line()


def test_newer_minor_version_with_extra_fields_is_read(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["central-driver"], Run("central-driver"))
    data["schema_version"] = "1.9"
    data["future_field"] = {"x": 1}
    data["tasks"][0]["future_task_field"] = True
    write_bundle(tmp_path / "b", data, files)
    bundle = read_bundle(tmp_path / "b")
    assert bundle.data["schema_version"] == "1.9" and bundle.data["tasks"][0]["future_task_field"] is True
    data["schema_version"] = "1.0"
    data["files"] = {}
    with pytest.raises(BundleError, match="Additional properties"):
        validate_bundle_data(data)


def test_tampered_file_fails_the_hash_check(tmp_path: Path, shapes) -> None:
    data, files = bundle_data(shapes["driver-pod"], Run("driver-pod"))
    write_bundle(tmp_path / "b", data, files)
    (tmp_path / "b" / "run.json").write_text("{}")
    with pytest.raises(BundleError, match="run.json does not match its sha256"):
        read_bundle(tmp_path / "b")


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape.log", "bundle.json", "logs/../../x"])
def test_file_names_must_stay_inside_the_bundle(tmp_path: Path, shapes, name: str) -> None:
    data, _ = bundle_data(shapes["driver-pod"], Run("driver-pod"))
    with pytest.raises(BundleError, match="not a plain relative path"):
        write_bundle(tmp_path / "b", data, {name: "x"})
    assert not (tmp_path / "b").exists()


ITEM_DAMAGE = {
    "task": [("started_at", 7), ("state", None), ("outputs", {"artifacts": [{"type": "x"}]}),
             ("outputs", {"artifacts": [{"name": "a", "digest": 3}]}), ("outputs", {"extra": {}}), ("path", ""),
             ("pod_names", ["p", 1]), ("execution_id", "1")],
    "driver_node": [("finished_at", []), ("driver_type", "TASK"), ("outputs", {"parameters": {"a": 1}}),
                    ("outputs", {"result": 5}), ("message", 0), ("unknown", "x")],
}


@pytest.mark.parametrize("relaxed", [False, True])
def test_compiled_item_validators_agree_with_the_schema_on_real_and_damaged_items(shapes, relaxed: bool) -> None:
    """The per-item validators are compiled from the item definitions with their `$ref`s inlined: they accept
    and refuse exactly what jsonschema does with the schema's own definitions, item by item."""
    import jsonschema

    from harness.evidence.bundle import _fast_validators, _relaxed, _schema

    schema = _relaxed(_schema()) if relaxed else _schema()
    _, compiled = _fast_validators(relaxed)
    checked = refused = 0
    for variant in VARIANT_DRIVER:
        data, _ = bundle_data(shapes[variant], Run(variant), fail_at="root/flip-coin-op")
        for array, item in (("tasks", "task"), ("driver_nodes", "driver_node")):
            reference = jsonschema.Draft202012Validator({**schema["$defs"][item], "$defs": schema["$defs"]})
            candidates = list(data[array])
            for original in data[array][:3]:
                candidates += [{**original, key: value} for key, value in ITEM_DAMAGE[item]]
            for candidate in candidates:
                try:
                    compiled[array](candidate)
                    fast = True
                except Exception:  # noqa: BLE001 - any rejection
                    fast = False
                assert fast == reference.is_valid(candidate), (array, candidate)
                checked += 1
                refused += not fast
    assert refused and checked > refused
