"""Removes benign noise from a bundle so that only real behaviour is compared.

Noise (never a difference): run ids, UIDs, timestamps, workflow and pod names, the run's namespace,
MLMD execution ids (also `--execution_id N` inside a pod-spec-patch), artifact URIs, and the order of lists. Artifacts keep name, type, metadata and
digest. Driver outputs of every transport become one dict: an HTTP template's JSON `result` is parsed
into the same {name: value} shape as plugin and pod parameters.

Not noise: the *documented* differences between variants (kfp-variants.md §3.4: `condition: "nil"` vs
omitted, `iteration-count "0"` on DAG vs omitted, ...). They stay in the data, and the comparison reports
them; `fixtures/policy/*.yaml` declares them as expected, so a reviewer sees them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.evidence.bundle import Bundle

UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?\b")
# After the workflow name is replaced, Argo pod names are `<workflow>-<template>-<hash>` or `<workflow>-<n>-agent`.
POD = re.compile(r"<workflow>-[a-z0-9][a-z0-9.-]*")
# The MLMD execution id the driver puts on the launcher's command line inside a CONTAINER driver's
# pod-spec-patch (backend/src/v2/driver/driver.go initPodSpecPatch @81fc181b1: "--execution_id", "<id>"),
# also when that JSON is itself escaped inside JSON.
EXECUTION_ID_ARG = re.compile(r'(--execution_id(?:\\?")?\s*[,=\s]\s*(?:\\?")?)\d+')
# Cheap prechecks (each starts with a literal `-`, which the regex engine searches for quickly): every UUID
# match contains UUID_HINT's text and every TIMESTAMP match TIMESTAMP_HINT's, so a text without the hint is
# left as is, exactly as the full pattern (no literal prefix: tried at every position) would leave it.
UUID_HINT = re.compile(r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-")
TIMESTAMP_HINT = re.compile(r"-\d\d-\d\d[T ]\d\d:\d\d:\d\d")
# Outputs whose values are ids generated per run: compared for presence only.
ID_OUTPUTS = frozenset({"execution-id", "cached-execution-id"})
ID_PLACEHOLDER = "<id>"
# The shortest text any pattern above matches: POD's `<workflow>-x` (UUID, TIMESTAMP, EXECUTION_ID_ARG need more).
MIN_PATTERN_MATCH = len("<workflow>-x")
FLAT_KEYS = 4  # objects up to this size with only string values are remembered per bundle (Scrubber.flat)
FLAT_MEMO = 4096
SHARED_MAX = 4096  # strings up to this length are shared between the items of a bundle (Normalizer)


def _keep_flag(match: re.Match[str]) -> str:
    """`\\g<1><id>` as a function: Python 3.11 expands a template in Python on every match, slower than this."""
    return match[1] + ID_PLACEHOLDER


@dataclass(frozen=True, slots=True)
class Scrubber:
    """Replaces this run's generated names with placeholders. Built once per bundle."""

    literals: tuple[tuple[str, str], ...]
    # A string shorter than this holds no literal and no pattern match ("false", "nil", "0"): kept as is.
    shortest: int = field(default=0, compare=False)
    # small flat {str: str} objects (artifact metadata) recur on every task: their scrubbed text, once
    flat: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def for_bundle(cls, data: dict[str, Any]) -> Scrubber:
        run = data["run"]
        pairs = [(run.get("id", ""), "<run-id>"), (run.get("workflow", ""), "<workflow>"),
                 (run.get("namespace", ""), "<namespace>")]
        # Longest first, so a workflow name that contains the namespace is replaced whole.
        literals = tuple(sorted(((k, v) for k, v in pairs if k and len(k) >= 3), key=lambda kv: -len(kv[0])))
        return cls(literals, min([MIN_PATTERN_MATCH, *(len(k) for k, _ in literals)]))

    def text(self, value: str) -> str:
        if len(value) < self.shortest:
            return value
        for literal, placeholder in self.literals:
            if literal in value:
                value = value.replace(literal, placeholder)
        dashes = value.count("-")
        if dashes >= 4 and UUID_HINT.search(value):
            value = UUID.sub("<uid>", value)
        if dashes >= 2 and ":" in value and TIMESTAMP_HINT.search(value):
            value = TIMESTAMP.sub("<time>", value)
        if "<workflow>-" in value:
            value = POD.sub("<pod>", value)
        if "--execution_id" in value:
            value = EXECUTION_ID_ARG.sub(_keep_flag, value)
        return value

    def value(self, value: Any) -> Any:
        """Scrub any JSON value; structures become canonical JSON text (sorted keys, compact). A string that
        holds JSON (e.g. pod-spec-patch) is scrubbed as text; `same_value` compares it parsed, so key order
        and spacing never count as a difference."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict | list):
            if isinstance(value, dict) and len(value) <= FLAT_KEYS and all(
                    type(v) is str for v in value.values()):
                key = tuple(sorted(value.items()))
                found = self.flat.get(key)
                if found is None:
                    found = self.text(json.dumps(dict(key), separators=(",", ":"), ensure_ascii=False))
                    if len(self.flat) < FLAT_MEMO:  # unique metadata must not grow the memo without bound
                        self.flat[key] = found
                return found
            return self.text(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        return value


def parse_json_text(value: Any) -> Any:
    """A string that holds a JSON object or list, parsed; anything else unchanged."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal after noise removal; two JSON texts are equal if they parse to the same structure."""
    return a == b or (isinstance(a, str) and isinstance(b, str) and parse_json_text(a) == parse_json_text(b))


@dataclass(slots=True)
class NormalTask:
    state: str
    parameters: dict[str, Any]
    artifacts: dict[str, dict[str, Any]]
    error_class: str | None


@dataclass(slots=True)
class NormalDriver:
    driver_type: str
    phase: str
    node_type: str
    outputs: dict[str, Any]  # None value = the output is absent


@dataclass(slots=True)
class NormalRun:
    """A bundle with the noise removed; tasks and drivers keyed by task path."""

    key: tuple[str, str, str]
    state: str
    error: str | None
    tasks: dict[str, NormalTask] = field(default_factory=dict)
    drivers: dict[str, NormalDriver] = field(default_factory=dict)

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(p for p, t in self.tasks.items() if t.state == "FAILED")

    @property
    def failed_drivers(self) -> list[str]:
        return sorted(p for p, d in self.drivers.items() if d.phase in ("Failed", "Error"))


def driver_output_dict(outputs: dict[str, Any]) -> dict[str, Any]:
    """The driver's outputs as {name: value} whatever the transport (parameters, or HTTP JSON `result`)."""
    if "result" in outputs and outputs["result"] is not None:
        try:
            body = json.loads(outputs["result"])
        except ValueError:
            return {"<result>": outputs["result"]}  # not JSON: compared as one opaque value
        if isinstance(body, dict):
            return {str(k): v if isinstance(v, str) or v is None else json.dumps(v, sort_keys=True)
                    for k, v in body.items()}
        return {"<result>": outputs["result"]}
    return dict(outputs.get("parameters") or {})


def _unique(path: str, seen: dict[str, Any]) -> str:
    """A second record for one task path (e.g. a retry) gets `#2`, `#3` in bundle order."""
    if path not in seen:
        return path
    n = 2
    while f"{path}#{n}" in seen:
        n += 1
    return f"{path}#{n}"


class Normalizer:
    """Builds a NormalRun one bundle item at a time, so a streaming reader never holds the parsed arrays.
    Repeated strings (paths' parts, states, scrubbed values that recur on every iteration) are shared."""

    __slots__ = ("run", "scrub", "_strings")

    def __init__(self, key: tuple[str, str, str], data: dict[str, Any]) -> None:
        self.scrub = Scrubber.for_bundle(data)
        self.run = NormalRun(key, data["run"]["state"],
                             self.scrub.text(data["run"]["error"]) if data["run"].get("error") else None)
        self._strings: dict[str, str] = {}

    def _share(self, value: Any) -> Any:
        if type(value) is str and len(value) < SHARED_MAX:  # long unique texts would only grow the table
            return self._strings.setdefault(value, value)
        return value

    def _clean(self, value: Any) -> Any:
        """`_share(scrub.value(value))` (inlined for strings: called for every output of 100 000s of nodes)."""
        if type(value) is str:
            value = self.scrub.text(value)
            return self._strings.setdefault(value, value) if len(value) < SHARED_MAX else value
        return self._share(self.scrub.value(value))

    def add_task(self, task: dict[str, Any]) -> None:
        if task.get("is_driver"):
            return  # drivers are compared through driver_nodes, which every variant records
        share, clean, strings = self._share, self._clean, self._strings
        outputs = task.get("outputs") or {}
        artifacts: dict[str, dict[str, Any]] = {}
        for artifact in outputs.get("artifacts") or []:
            artifacts[share(artifact["name"])] = {
                "type": share(artifact.get("type", "")),
                "metadata": clean(artifact.get("metadata") or {}),
                "digest": artifact.get("digest"),
            }
        self.run.tasks[_unique(task["path"], self.run.tasks)] = NormalTask(
            state=share(task["state"]),
            # JSON object keys are str: shared without the type test
            parameters={strings.setdefault(k, k): clean(v) for k, v in (outputs.get("parameters") or {}).items()},
            artifacts=artifacts,
            error_class=share(task.get("error_class")),
        )

    def add_driver(self, node: dict[str, Any]) -> None:
        share, clean, strings = self._share, self._clean, self._strings
        outputs = {}
        for k, v in driver_output_dict(node.get("outputs") or {}).items():
            outputs[strings.setdefault(k, k)] = \
                ID_PLACEHOLDER if k in ID_OUTPUTS and v not in (None, "", "0") else clean(v)
        self.run.drivers[_unique(node["task_path"], self.run.drivers)] = NormalDriver(
            driver_type=share(node["driver_type"]), phase=share(node["phase"]),
            node_type=share(node.get("node_type", "")), outputs=outputs)


def normalize(bundle: Bundle) -> NormalRun:
    normal = Normalizer(bundle.key, bundle.data)
    for task in bundle.data["tasks"]:
        normal.add_task(task)
    for node in bundle.data["driver_nodes"]:
        normal.add_driver(node)
    return normal.run


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: str | None, end: str | None) -> float | None:
    begin, finish = parse_time(start), parse_time(end)
    if begin is None or finish is None:
        return None
    return (finish - begin).total_seconds()
