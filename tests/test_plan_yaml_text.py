"""The plan's YAML writer (harness.manifests.yamltext) writes what `yaml.safe_dump_all(..., sort_keys=False)`
writes, byte for byte, on real renders and on the cases where libyaml's emitter differs; its per-document memo
never hands one document the text of another. No fakes: real renders of the shared trees, real PyYAML.
"""

from __future__ import annotations

import datetime

import pytest
import yaml

from harness.manifests.yamltext import dump_documents
from harness.static.credentials import reviewer_copy

# one install per variant, each mode once; multi-user carries the envoy and profile-controller ConfigMaps
INSTALLS = [("driver-pod", "multi-user"), ("sidecar-plugin", "tls"), ("central-driver", "standalone")]


@pytest.mark.parametrize("variant, mode", INSTALLS)
def test_plan_yaml_text_equals_pure_python_safe_dump_on_real_renders(install_render, variant, mode):
    render = install_render(variant, mode)
    memo: dict = {}
    for manifests in (render.cluster_scoped.manifests, render.overlay.manifests):
        expected = yaml.safe_dump_all(manifests, sort_keys=False)
        assert dump_documents(manifests, memo=memo) == expected
        assert dump_documents(manifests, memo=memo) == expected  # again, from the memo


def test_plan_yaml_text_keeps_python_folding_for_long_and_multiline_strings():
    docs = [{"kind": "ConfigMap", "data": {
        "envoy.yaml": "static_resources:\n  listeners:\n  - name: x\n",
        "quoted": "a \"quoted\" value with a trailing space " * 6 + " ",
        "long": "word " * 60,
        "unicode": "caf\u00e9 \u2713 " * 20,
        "tabs": "a\tb" * 40}},
        {"kind": "Secret", "stringData": {"k": "x" * 200}}]
    for width in (None, 120):
        assert dump_documents(docs, width) == yaml.safe_dump_all(docs, sort_keys=False, width=width)


def test_plan_yaml_text_memo_tells_apart_values_that_print_alike():
    """Documents equal as JSON or as text but not as YAML values each get their own text."""
    twins = [{"port": 1}, {"port": "1"}, {1: "a"}, {"1": "a"}, {"on": True}, {"on": "true"},
             {"at": datetime.date(2026, 5, 1)}, {"at": "2026-05-01"}, {"n": 1.0}, {"n": 1}, {"v": None}, {"v": "null"},
             {"a": 1, "b": 2}, {"b": 2, "a": 1}]
    memo: dict = {}
    for _ in range(2):  # the second round is served from the memo
        for doc in twins:
            assert dump_documents([doc], memo=memo) == yaml.safe_dump(doc, sort_keys=False), doc
    assert len(memo) == len(twins) and len(set(memo.values())) == len(twins)
    assert dump_documents(twins[:2], width=120, memo=memo) == yaml.safe_dump_all(twins[:2], sort_keys=False, width=120)


def test_plan_yaml_text_reviewer_copy_masks_and_writes_like_safe_dump(install_render):
    """Reviewer copies of the plan's files are written 120 wide."""
    overlay = install_render("central-driver", "standalone").overlay
    text = overlay.path.read_text()
    copy = reviewer_copy(text)
    masked = list(yaml.safe_load_all(copy))
    assert copy != text and copy == yaml.safe_dump_all(masked, sort_keys=False, width=120)
    secrets = [d for d in masked if d.get("kind") == "Secret" and d.get("stringData")]
    assert secrets and all(str(v).startswith("<value changed: sha256:") for d in secrets for v in d["stringData"].values())
