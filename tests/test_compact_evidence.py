"""The report's streaming bundle read (harness/evidence/compact.py) on bundles built from the real shapes: the
item-at-a-time path gives exactly what the whole-document read gives, words every error the same, and a
bundle.json in any other layout is still read (whole)."""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

import pytest

from harness.boundary import redact
from harness.boundary.redact import find_secrets
from harness.errors import BundleError
from harness.evidence import compact, logs
from harness.evidence.bundle import READ_SIZE, bundle_dir, dump_json, read_bundle, write_bundle
from harness.evidence.compact import _stream, evidence_of, read_evidence
from harness.evidence.logs import LogClasses, log_classes
from harness.evidence.normalize import EXECUTION_ID_ARG, ID_PLACEHOLDER, POD, TIMESTAMP, UUID, Scrubber
from harness.evidence.parallel import iter_evidence
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


# ------------------------------------------------------------------ the speed-ups keep the one semantics


@pytest.mark.parametrize("chunk", [300, 2000])
def test_streamed_read_across_many_chunks_and_windows_equals_the_whole_read(tmp_path: Path, shapes, monkeypatch,
                                                                           chunk: int) -> None:
    """The factory bundles are far smaller than one CHUNK/WINDOW: shrink both so items are decoded across many
    chunks (300: most items are longer than a chunk; 2000: several items a chunk), keys found across many
    windows, bundle.json hashed in pieces."""
    monkeypatch.setattr(compact, "CHUNK", chunk)
    monkeypatch.setattr(compact, "WINDOW", 4096)
    for variant in VARIANT_DRIVER:
        target = _write(tmp_path, shapes, variant, _leaky)
        streamed = _stream(target / "bundle.json")
        assert streamed is not None
        assert streamed == evidence_of(read_bundle(target))
        assert streamed.sha256 == hashlib.sha256((target / "bundle.json").read_bytes()).hexdigest()


def test_streamed_read_with_a_log_longer_than_one_read_verifies_it(tmp_path: Path, shapes) -> None:
    """A raw file longer than bundle.READ_SIZE is read in several os.read calls, and still hash-checked."""
    long_log = "".join(f"2026-05-01T12:00:00Z WARNING: disk {i % 7} is slow (line {i})\n" for i in range(8000))
    assert len(long_log) > 2 * READ_SIZE

    def add(data, files):
        files["logs/long.log"] = long_log

    target = _write(tmp_path, shapes, "sidecar-plugin", add)
    found = read_evidence(target)
    assert any("logs/long.log" in names for names in found.scan.classes.values())
    with open(target / "logs" / "long.log", "r+b") as handle:  # noqa: PTH123 - one byte far past the first read
        handle.seek(3 * READ_SIZE // 2)
        handle.write(b"X")
    assert "logs/long.log does not match its sha256" in _error(read_evidence, target)


def test_batched_credential_scan_finds_what_each_file_scan_finds(tmp_path: Path, shapes, monkeypatch) -> None:
    """Files are cleared of credentials a batch at a time (one hint test for many files): in batches of a
    few files, a leak in one file of a batch, and a hint split across two files, give exactly the per-file
    `find_secrets` answer for every file."""
    monkeypatch.setattr(compact, "BATCH_BYTES", 400)

    def plant(data, files):
        names = sorted(files)
        files[names[1]] += f"Authorization: Bearer {TOKEN}\n"
        files[names[2]] += "the word tok"  # "tok" + "en..." only meet if two files are joined without a break
        files[names[3]] = "en: abcdefghijkl\n" + files[names[3]]

    target = _write(tmp_path, shapes, "central-driver", plant)
    bundle = read_bundle(target)
    expected = {name: find_secrets(bundle.read_text(name)) for name in sorted(bundle.files)}
    assert read_evidence(target).scan.secrets == {name: hits for name, hits in expected.items() if hits}
    assert len([hits for hits in expected.values() if hits]) == 1


@pytest.mark.parametrize("window", [1, 2, 5, 7, 64])
def test_the_windowed_hint_test_answers_as_the_whole_lowered_text(monkeypatch, window: int) -> None:
    """`may_hold_secrets` lowers a window at a time (a big log needs no lowered copy of itself): a hint across
    any window boundary, in any case, next to characters that lowering lengthens, is still found."""
    monkeypatch.setattr(redact, "HINT_WINDOW", window)
    texts = ["", "x", "no hint here at all", "Authorization: x", "aUtHoRiZ", "xx PRIVATE KEY", "ḯtoken",
             "İİİ passw", "İ" * 9 + "SeCrEt", "akI", "ak\u0130a", "ACCESS_KEY", "eYj0", "to ken", "\u2028bearer\u2028"]
    texts += [t * 3 for t in texts] + ["a" * n + "bEaReR" + "b" * m for n in range(9) for m in range(3)]
    for text in texts:
        expected = any(hint in text.lower() for hint in redact.CREDENTIAL_HINTS)
        assert redact.may_hold_secrets(text) is expected, (window, text)


@pytest.mark.parametrize("size", [1, 2, 3, 10])
def test_a_logs_lines_split_a_piece_at_a_time_are_splitlines(monkeypatch, size: int) -> None:
    """A log's lines are split a piece at a time (a 100 MB log is never a list of all its lines): pieces end
    after a "\n", so "\r\n", a lone "\r", form feeds and Unicode line separators split as `splitlines` does."""
    monkeypatch.setattr(logs, "SPLIT_CHARS", size)
    texts = ["", "\n", "a", "a\n", "a\r\nb", "a\rb\r\n\r\nc\n", "x\x0by\x0cz\x1cw\x85v\u2028u\u2029t\n\n",
             "\r", "\r\n", "line one\nline two\r\nline three\rfour\n", "E0101 first\nW0101 second\n" * 5]
    for text in texts:
        assert list(logs._lines_of(text)) == text.splitlines(), (size, text)


def test_a_promised_driver_log_of_only_whitespace_holds_no_text(tmp_path: Path, shapes) -> None:
    """The driver-log check reads "has text" from the bytes it no longer keeps: a whitespace-only promised log
    is no text, as in the whole read."""
    def blank(data, files):
        for name in data["driver_logs"]["files"]:
            files[name] = " \n\t\r\n"

    target = _write(tmp_path, shapes, "central-driver", blank)
    found = read_evidence(target)
    assert found.scan.driver_logs_listed and not found.scan.driver_logs_have_text
    assert found == evidence_of(read_bundle(target))


def test_reading_evidence_leaves_the_cycle_collector_as_it_found_it(tmp_path: Path, shapes) -> None:
    target = _write(tmp_path, shapes, "sidecar-plugin")
    assert gc.isenabled()
    read_evidence(target)
    assert gc.isenabled()
    (target / "bundle.json").write_text("{")
    with pytest.raises(BundleError):
        read_evidence(target)
    assert gc.isenabled(), "an error must not leave the collector off"
    gc.disable()  # a caller that paused the collector itself finds it paused afterwards
    try:
        with pytest.raises(BundleError):
            read_evidence(target)
        still_paused = not gc.isenabled()
    finally:
        gc.enable()
    assert still_paused


def _text_without_prechecks(scrub: Scrubber, value: str) -> str:
    """Scrubber.text as it was before the hint prechecks and the replacement function (1a65336)."""
    if len(value) < scrub.shortest:
        return value
    for literal, placeholder in scrub.literals:
        if literal in value:
            value = value.replace(literal, placeholder)
    dashes = value.count("-")
    if dashes >= 4:
        value = UUID.sub("<uid>", value)
    if dashes >= 2 and ":" in value:
        value = TIMESTAMP.sub("<time>", value)
    if "<workflow>-" in value:
        value = POD.sub("<pod>", value)
    if "--execution_id" in value:
        value = EXECUTION_ID_ARG.sub(r"\g<1>" + ID_PLACEHOLDER, value)
    return value


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_scrub_prechecks_leave_every_text_as_the_full_patterns_do(shapes) -> None:
    """UUID_HINT/TIMESTAMP_HINT only skip texts the full patterns would not change: every string of real
    bundles of each variant (pod-spec-patches, HTTP results, times, names), and texts at the patterns' edges."""
    edges = [
        "uid 123e4567-e89b-12d3-a456-426614174000 and 123E4567-E89B-12D3-A456-426614174000.",
        "x123e4567-e89b-12d3-a456-426614174000 (no word boundary) 123e4567-e89b-12d3-a456-42661417400",
        "at 2026-05-01T12:00:00Z, 2026-05-01 12:00:00.123+02:00 and 2026-05-01T12:00:00-0700",
        "at x2026-05-01T12:00:00Z, 2026-05-01T12:00 and 26-05-01T12:00:00Z",
        "digits of another script: ٢٠٢٦-٠٥-٠١T١٢:٠٠:٠٠Z",
        'args ["--execution_id", "42"] and --execution_id=7 and \\"--execution_id\\", \\"9\\"',
        "a-b-c-d-e: f-g",
    ]
    for variant in VARIANT_DRIVER:
        data, files = bundle_data(shapes[variant], Run(variant))
        scrub = Scrubber.for_bundle(data)
        texts = _strings(data) + list(files.values()) + edges
        texts += [f"{data['run']['workflow']}-system-container-impl-1 at {e}" for e in edges]
        changed = 0
        for text in texts:
            assert scrub.text(text) == _text_without_prechecks(scrub, text), text
            changed += scrub.text(text) != text
        assert changed > len(edges), "the inputs must include texts the patterns change"


def test_log_classes_remember_lines_per_bundle_and_never_mix_two_inputs(shapes) -> None:
    """Issue 13: the memo of line classes lives on one bundle's LogClasses (no process-wide cache). It gives
    each line its own class, the same line its bundle's class (scrubbed with that bundle's names), and a
    glog message repeated at another time the same class."""
    assert not [name for name, value in vars(logs).items() if hasattr(value, "cache_info")]
    assert all(logs._hinted(f"x {hint} y") for hint in logs.LEVEL_HINTS) and not logs._hinted("info: all good")
    runs = {variant: bundle_data(shapes[variant], Run(variant))[0] for variant in ("sidecar-plugin", "central-driver")}
    names = {variant: data["run"]["workflow"] for variant, data in runs.items()}
    assert len(set(names.values())) == 2
    line = f"E0501 12:00:00.000001 1 pod.go:1] pod {names['sidecar-plugin']}-impl-1 failed: timeout"
    other = "W0501 12:00:00.000002 1 quota.go:9] quota exceeded in namespace"
    later = line.replace("12:00:00.000001", "12:30:00.000009")
    first = LogClasses(Scrubber.for_bundle(runs["sidecar-plugin"]))
    second = LogClasses(Scrubber.for_bundle(runs["central-driver"]))
    assert first.of(line) == {"error: pod <pod> failed: timeout"}
    assert first.of(other) == {"warning: quota exceeded in namespace"}
    assert first.of(later + "\n" + line) == {"error: pod <pod> failed: timeout"}
    assert second.of(line) != first.of(line)  # the other bundle does not know that workflow name
    for keeper in (first, second):
        for text in (line, other, later):
            assert keeper.of(text) == log_classes(text, keeper.scrub)  # the memo answers what a fresh read does
