"""The compact evidence the comparison needs from one bundle, read without holding the bundle's big arrays.

A 100 000-node bundle.json is ~190 MB of text and ~400 MB once parsed whole. `read_evidence` parses its
envelope, then decodes `driver_nodes` and `tasks` one item at a time, validates each item with the compiled
item validator, and keeps only what the comparison uses: the normalised run (`Normalizer`), driver timings,
the credential hits of the inline texts. Raw files are hash-checked, scanned for credentials and classified
(log classes, driver-log text) in the same pass, so each is read once.

The item-at-a-time read relies on the layout `dump_json` writes (2-space indent, so a top-level key starts a
line with exactly two spaces and an array item closes with a line of exactly four). Any other layout, and
any problem at all (invalid JSON, schema, version), goes through `read_bundle`, the whole-document path, so
every error is worded exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boundary.collector import cycle_collection_paused
from harness.boundary.redact import find_secrets, may_hold_secrets
from harness.evidence.bundle import (
    Bundle,
    Envelope,
    bundle_marker,
    compiled_validators,
    read_bundle,
    verified_files,
)
from harness.evidence.logs import LogClasses
from harness.evidence.normalize import Normalizer, NormalRun, Scrubber, seconds_between

BIG_ARRAYS = ("driver_nodes", "tasks")  # the arrays that grow with the pipeline (bundle order: sorted keys)
# Envelope fields that are only needed while reading: dropped from Evidence.data afterwards.
READ_ONLY_FIELDS = ("files", "pods")


class DriverTimings:
    """Driver overhead per task (driver node start→finish), pods per run, run wall time; fed node by node."""

    __slots__ = ("nodes", "overheads", "node_types")

    def __init__(self) -> None:
        self.nodes = 0
        self.overheads: list[float] = []
        self.node_types: set[str] = set()

    def add(self, node: Mapping[str, Any]) -> None:
        self.nodes += 1
        seconds = seconds_between(node.get("started_at"), node.get("finished_at"))
        if seconds is not None:
            self.overheads.append(seconds)
        self.node_types.add(str(node.get("node_type") or ""))

    def result(self, data: Mapping[str, Any]) -> dict[str, Any]:
        run = data["run"]
        result: dict[str, Any] = {
            "driver_nodes": self.nodes,
            "pods_per_run": len(data["pods"]),
            "wall_time_s": seconds_between(run.get("created_at"), run.get("finished_at")),
        }
        node_types = sorted(self.node_types - {""})
        if node_types and node_types != ["Pod"]:
            # A plugin or HTTP node's startedAt->finishedAt is set by the workflow controller and includes its
            # requeue (DEFAULT_REQUEUE_TIME) and the agent's task-set polling: not a driver lifetime, so not
            # comparable with driver pod lifetimes (Argo workflow/controller/taskset.go, agent.go v3.7.3).
            result["driver_timing_basis"] = "controller node times (include controller and agent delay)"
        elif node_types:
            result["driver_timing_basis"] = "driver pod node times"
        if self.overheads:
            ordered = sorted(self.overheads)
            result.update({
                "driver_overhead_median_s": round(statistics.median(ordered), 3),
                "driver_overhead_p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
                "driver_overhead_max_s": round(ordered[-1], 3),
                "driver_overhead_total_s": round(sum(ordered), 3),
            })
        return result


@dataclass(slots=True)
class FileScan:
    """What the comparison needs from the raw files: credential hits (name -> (pattern, fingerprint, line), in
    name order; `inline_secrets` for the run error and driver messages of bundle.json), log classes (class ->
    log files, in name order), and the promised driver-log files that exist."""

    secrets: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    inline_secrets: list[tuple[str, str, int]] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)
    driver_logs_listed: list[str] = field(default_factory=list)
    driver_logs_have_text: bool = False


BATCH_BYTES = 1 << 20  # raw files are cleared of credentials a batch of about this many bytes at a time


def _batches(files: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, str, bool]]]:
    """(name, text, whether it holds more than whitespace) of the files, in order, in batches of about
    BATCH_BYTES. The bytes are dropped once decoded: a big log is held once, as text, not twice."""
    batch: list[tuple[str, str, bool]] = []
    size = 0
    for name, body in files:
        size += len(body)
        batch.append((name, body.decode("utf-8", errors="replace"), bool(body) and not body.isspace()))
        del body  # not held while the batch is yielded (a generator keeps its locals while suspended)
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _scan(files: Iterable[tuple[str, bytes]], data: Mapping[str, Any], listed: Iterable[str],
          scrub: Scrubber, inline: str) -> FileScan:
    promised = set(data["driver_logs"]["files"])
    scan = FileScan()
    classify = LogClasses(scrub).of  # one per bundle: its memo of recurring lines ends with the bundle
    for batch in _batches(files):
        # one hint test for the whole batch: most logs hold no credential-like word at all
        suspect = may_hold_secrets("\n".join(text for _, text, _ in batch))
        for name, text, nonblank in batch:
            hits = find_secrets(text) if suspect else None
            if hits:
                scan.secrets[name] = hits
            if name.endswith(".log"):
                for cls in classify(text):
                    scan.classes.setdefault(cls, []).append(name)
            if name in promised and nonblank:
                scan.driver_logs_have_text = True
    scan.inline_secrets = find_secrets(inline)
    present = set(listed)
    scan.driver_logs_listed = [name for name in data["driver_logs"]["files"] if name in present]
    return scan


@dataclass(frozen=True, slots=True)
class Evidence(Envelope):
    """One bundle as the comparison uses it. `data` is bundle.json without the big arrays, `files` and `pods`;
    `files` the raw files' names (their hashes were verified when read)."""

    path: Path
    data: dict[str, Any]
    files: frozenset[str]
    sha256: str
    normal: NormalRun
    timings: dict[str, Any]
    scan: FileScan


def _inline(data: Mapping[str, Any], messages: Iterable[str]) -> str:
    return "\n".join([data["run"].get("error") or "", *messages])


def _envelope(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in BIG_ARRAYS and k not in READ_ONLY_FIELDS}


def evidence_of(bundle: Bundle | Evidence) -> Evidence:
    """The Evidence of a bundle already read whole (its files were verified then, so they are only read)."""
    if isinstance(bundle, Evidence):
        return bundle
    data = bundle.data
    normal = Normalizer(bundle.key, data)
    for task in data["tasks"]:
        normal.add_task(task)
    timings = DriverTimings()
    for node in data["driver_nodes"]:
        normal.add_driver(node)
        timings.add(node)
    files = ((name, bundle.read_bytes(name)) for name in sorted(bundle.files))
    scan = _scan(files, data, bundle.files, normal.scrub,
                 _inline(data, (n.get("message") or "" for n in data["driver_nodes"])))
    return Evidence(bundle.path, _envelope(data), frozenset(bundle.files), bundle.sha256, normal.run, timings.result(data), scan)


class _Layout(Exception):
    """The file is not in the layout the item-at-a-time read relies on (or not valid): read it whole."""


# Work through the mapped bundle.json this many bytes at a time, giving the pages already read back to the
# kernel (madvise MADV_DONTNEED): a file mapping's resident pages count in the process's RSS, so reading a
# 190 MB bundle.json through would otherwise add 190 MB to the peak. They stay in the page cache.
WINDOW = 8 << 20
CHUNK = 1 << 20  # bytes of whole array items decoded as one str (one utf-8 decode for many items)
_DECODER = json.JSONDecoder()  # stateless; raw_decode parses one value at an offset of a str


def _release(text: mmap.mmap, start: int, end: int) -> None:
    """Drop text[start:end]'s pages from this process (re-read from the page cache if touched again)."""
    if end <= start or not hasattr(text, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    first = start - start % mmap.ALLOCATIONGRANULARITY
    text.madvise(mmap.MADV_DONTNEED, first, end - first)


def _find(text: mmap.mmap, needle: bytes, start: int, end: int) -> int:
    """text.find(needle, start, end), searched a WINDOW at a time, releasing each window searched."""
    pos = start
    while pos < end:
        stop = min(end, pos + WINDOW + len(needle) - 1)  # windows overlap: a match across two is found
        found = text.find(needle, pos, stop)
        if found >= 0:
            return found
        _release(text, pos, stop)
        pos += WINDOW
    return -1


def _digest(text: mmap.mmap) -> str:
    digest = hashlib.sha256()
    for start in range(0, len(text), WINDOW):
        digest.update(text[start:start + WINDOW])
        _release(text, start, start + WINDOW)
    return digest.hexdigest()


def _spans(text: mmap.mmap) -> dict[str, tuple[int, int]]:
    """Top-level key -> (start, end) byte span of its value, for a document in `dump_json`'s layout."""
    size = len(text)
    end = size - 1 if text[size - 1:size] == b"\n" else size
    if text[:5] != b'{\n  "' or text[end - 2:end] != b"\n}":
        raise _Layout
    body_end = end - 2
    spans: dict[str, tuple[int, int]] = {}
    pos = 1
    while pos < body_end:
        # surrogateescape: the key's byte length below is exact whatever the bytes are
        line = text[pos + 3:min(body_end, pos + 3 + 1024)].decode("utf-8", errors="surrogateescape")
        try:
            key, length = _DECODER.raw_decode(line)
        except ValueError:
            raise _Layout from None
        if not isinstance(key, str) or line[length:length + 2] != ": ":
            raise _Layout
        start = pos + 3 + len(line[:length + 2].encode("utf-8", errors="surrogateescape"))
        following = _find(text, b'\n  "', start, body_end)
        if following < 0:
            spans[key] = (start, body_end)
            break
        if text[following - 1:following] != b",":
            raise _Layout
        spans[key] = (start, following - 1)
        pos = following
    return spans


def _load(piece: bytes) -> Any:
    try:
        return json.loads(piece)
    except ValueError:  # also UnicodeDecodeError: the whole-document read words it
        raise _Layout from None


def _items(text: mmap.mmap, span: tuple[int, int]) -> Iterator[Any]:
    """The items of a top-level array, decoded one at a time from chunks of about CHUNK bytes of whole items
    (in dump_json's layout an item starts with a line `    {` and ends with a line `    }`). Whatever the
    chunking, each item is parsed from its `{` and must be followed by `,` and the next item or by the end of
    the array, so the items are exactly the array's."""
    start, end = span
    if end - start == 2 and text[start:end] == b"[]":  # (never slice the whole span: a copy of 100s of MB)
        return
    last = end - 4  # where the closing `\n  ]` starts
    if text[start:start + 7] != b"[\n    {" or text[last:end] != b"\n  ]":
        raise _Layout
    decode = _DECODER.raw_decode
    pos = start + 1
    while True:
        cut = text.rfind(b"\n    }", pos, min(last, pos + CHUNK))  # the last item end within CHUNK bytes
        if cut < 0:
            cut = _find(text, b"\n    }", pos, last)  # one item longer than CHUNK
            if cut < 0:
                raise _Layout
        stop = cut + 6
        try:
            chunk = text[pos:stop].decode("utf-8")
        except UnicodeDecodeError:  # the whole-document read words it
            raise _Layout from None
        at = 0
        while True:
            if not chunk.startswith("\n    {", at):
                raise _Layout
            try:
                item, at = decode(chunk, at + 5)
            except ValueError:
                raise _Layout from None
            yield item
            if at == len(chunk):
                break
            if chunk[at] != ",":
                raise _Layout
            at += 1
        _release(text, pos, stop)
        pos = stop
        if pos == last:
            return
        if text[pos:pos + 1] != b",":
            raise _Layout
        pos += 1


def _stream(marker: Path) -> Evidence | None:
    """The Evidence of a valid bundle in `dump_json` layout; None for anything else (read it whole)."""
    with open(marker, "rb") as handle:  # noqa: PTH123
        if os.fstat(handle.fileno()).st_size == 0:
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as text:
            try:
                spans = _spans(text)
                data = {k: _load(text[a:b]) for k, (a, b) in spans.items() if k not in BIG_ARRAYS}
                validators = compiled_validators(data)
                if validators is None or not all(k in spans for k in BIG_ARRAYS):
                    return None
                envelope_valid, item_valid = validators
                try:
                    envelope_valid({**data, **{k: [] for k in BIG_ARRAYS}})
                except Exception:  # noqa: BLE001 - any rejection: the whole-document path names it
                    return None
                key = (data["scenario"]["name"], data["variant"], data["mode"])
                normal = Normalizer(key, data)
                timings = DriverTimings()
                messages: list[str] = []
                for name, add in (("driver_nodes", normal.add_driver), ("tasks", normal.add_task)):
                    validate = item_valid[name]
                    for item in _items(text, spans[name]):
                        try:
                            validate(item)
                        except Exception:  # noqa: BLE001
                            return None
                        add(item)
                        if name == "driver_nodes":
                            timings.add(item)
                            message = item.get("message")
                            messages.append(message if message else "")
            except _Layout:
                return None
            digest = _digest(text)
    target = marker.parent
    scan = _scan(verified_files(target, data["files"]), data, data["files"], normal.scrub,
                 _inline(data, messages))
    return Evidence(target, _envelope(data), frozenset(data["files"]), digest, normal.run, timings.result(data), scan)


def read_evidence(directory: str | os.PathLike[str]) -> Evidence:
    """`read_bundle`'s checks (schema, every file's sha256) and the compact evidence, from one read of each
    file; bundle.json's big arrays are never held whole when it is in `dump_json` layout."""
    marker = bundle_marker(directory)
    with cycle_collection_paused():
        found = _stream(marker)
        return found if found is not None else evidence_of(read_bundle(marker.parent))

