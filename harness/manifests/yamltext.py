"""Kubernetes objects as YAML text, byte for byte what `yaml.safe_dump_all(docs, sort_keys=False)` writes, faster.

Plans digest the files they apply and reviewers read masked copies of them, so the text must not depend on
which emitter wrote it. libyaml's emitter (CSafeDumper) writes the same text as PyYAML's pure-Python one except
where it folds long or multi-line double-quoted scalars differently (envoy configs in ConfigMaps): documents
holding such strings keep the Python emitter. tests/golden plan digests and tests/test_plan_golden.py pin the
equivalence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

_CDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# A memo for `dump_documents`: (width, repr(document)) -> its YAML. PyYAML's representer is Python even under
# libyaml's emitter, and a run dumps the same objects again and again (one variant's objects in every mode, most
# objects in every variant, the install plan again inside each migration move). repr tells apart all the dump
# depends on (key order, 1 from "1", True from "true", a date from its text): equal keys, equal text. The
# caller owns it (one per run: harness.plan.build.PlanMemo), so nothing outlives the run.
DumpMemo = dict[tuple[int | None, str], str]


def dump_documents(docs: Iterable[dict[str, Any]], width: int | None = None, memo: DumpMemo | None = None) -> str:
    """`yaml.safe_dump_all(docs, sort_keys=False, width=width)` for mappings, byte for byte."""
    return "---\n".join(_dump_document(doc, width, memo) for doc in docs)


def _dump_document(doc: dict[str, Any], width: int | None, memo: DumpMemo | None) -> str:
    if memo is None:
        return _dump(doc, width)
    key = (width, repr(doc))
    if key not in memo:
        memo[key] = _dump(doc, width)
    return memo[key]


def _dump(doc: dict[str, Any], width: int | None) -> str:
    dumper = _CDumper if _plain_strings(doc) else yaml.SafeDumper
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, width=width)


def _plain_strings(value: Any) -> bool:
    """Every key and string value short, single-line ASCII: text both emitters write identically."""
    if isinstance(value, str):
        return len(value) < 60 and "\n" not in value and value.isascii()
    if isinstance(value, dict):
        return all(_plain_strings(k) and _plain_strings(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_strings(v) for v in value)
    return True
