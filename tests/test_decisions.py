"""Decisions and accepted findings on the real shared trees (no fakes): one entry per cause, a known-findings
file written from today's run makes the next run pass, and one injected defect fails it, named alone."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.judge.decisions import apply_known, cause_key, group, known_findings_yaml, load_known_findings
from harness.models import Finding, Severity

CLI = [sys.executable, "-m", "harness.cli"]


def _static(out: Path, trees: Path, remote_bases: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "static", "--sources", str(trees), "--remote-bases", str(remote_bases),
                           "--variant", "sidecar-plugin", "--variant", "central-driver", "--mode", "standalone",
                           "--cache-dir", str(cache), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)


def test_known_findings_from_todays_run_pass_and_one_new_defect_fails_alone(
        kfp_trees: Path, remote_bases: Path, tmp_path: Path, shared_renderer) -> None:
    # renders are content-addressed: the session cache serves the shared trees, the edited copy renders anew
    cache, known = shared_renderer.cache_dir, tmp_path / "known.yaml"
    first = _static(tmp_path / "a", kfp_trees, remote_bases, cache, "--write-known-findings", str(known))
    assert first.returncode == 1, first.stderr  # the PoC trees have blocking findings
    assert load_known_findings(known), "the written file loads"
    again = _static(tmp_path / "b", kfp_trees, remote_bases, cache, "--known-findings", str(known))
    assert again.returncode == 0, again.stderr
    doc = json.loads((tmp_path / "b" / "static.json").read_text())
    assert doc["summary"]["blocking"] == 0 and doc["summary"]["accepted"] == \
        json.loads((tmp_path / "a" / "static.json").read_text())["summary"]["blocking"]

    # one new defect in a copy of the central-driver tree: the driver may now delete secrets
    trees = tmp_path / "trees"
    for name in ("sidecar-plugin", "central-driver"):
        shutil.copytree(kfp_trees / name, trees / name, symlinks=True)
    role = trees / "central-driver/manifests/kustomize/base/pipeline/ml-pipeline-driver-role.yaml"
    role.write_text(role.read_text().rstrip() + "\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [delete]\n")
    worse = _static(tmp_path / "c", trees, remote_bases, cache, "--known-findings", str(known))
    assert worse.returncode == 1, worse.stderr
    doc = json.loads((tmp_path / "c" / "static.json").read_text())
    blocking = [d for d in doc["decisions"] if d["blocking"]]
    assert len(blocking) == 1, [d["subject"] + ": " + d["message"] for d in blocking]
    assert "delete" in blocking[0]["message"] and "secrets" in blocking[0]["message"]
    md = (tmp_path / "c" / "static.md").read_text()
    assert "## What blocks (1 decision(s)" in md and "delete" in md.split("## What blocks")[1].split("##")[0]


def test_static_md_blocking_list_is_one_entry_per_cause_and_counts_agree(
        kfp_trees: Path, remote_bases: Path, tmp_path: Path, shared_renderer) -> None:
    result = subprocess.run([*CLI, "static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases),
                             "--cache-dir", str(shared_renderer.cache_dir), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    doc = json.loads((tmp_path / "out" / "static.json").read_text())
    findings = [Finding.from_dict(f) for f in doc["findings"]]
    blocking = [f for f in findings if f.blocking]
    causes = {cause_key(f) for f in blocking}
    decisions = [d for d in doc["decisions"] if d["blocking"]]
    assert len(decisions) == len(causes) < len(blocking) / 3, "one decision per cause, far fewer than findings"
    assert sum(d["blocking_findings"] for d in decisions) == len(blocking) == doc["summary"]["blocking"]
    md = (tmp_path / "out" / "static.md").read_text()
    assert f"## What blocks ({len(decisions)} decision(s) grouping {len(blocking)} blocking finding(s))" in md
    assert f"({len(blocking)} blocking finding(s))" in md.splitlines()[2]
    section = md.split("## What blocks")[1].split("\n## ")[0]
    entries = re.split(r"\n(?=\d+\. )", section)[1:]
    assert len(entries) == len(decisions), "every blocking decision is listed (fewer than the 40 shown at most)"
    assert all("   - what to do: " in entry for entry in entries)


def _finding(fid: str = "rbac.permission-gained", subject: str = "ServiceAccount kubeflow/x", mode: str = "standalone",
             severity: Severity = Severity.ERROR) -> Finding:
    return Finding(fid, severity, fid.split(".")[0], mode, ("a", "b"), subject, "the driver can delete secrets")


def test_expired_acceptance_blocks_again_and_unused_entries_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "known.yaml"
    path.write_text("accepted:\n"
                    "- {id: rbac.permission-gained, subject: ServiceAccount kubeflow/x, reason: tracked in issue 1, until: 2026-01-31}\n"
                    "- {id: rbac.permission-gained, subject: ServiceAccount kubeflow/gone, reason: old}\n")
    known = load_known_findings(path)
    before = apply_known([_finding()], known, dt.date(2026, 1, 30))
    after = apply_known([_finding()], known, dt.date(2026, 2, 1))
    assert before.findings[0].accepted.startswith("tracked in issue 1") and not before.findings[0].blocking
    assert after.findings[0].blocking and [k.subject for k in after.expired] == ["ServiceAccount kubeflow/x"]
    assert [k.subject for k in after.unused] == ["ServiceAccount kubeflow/gone"]


def test_acceptance_limited_to_modes_and_only_of_errors(tmp_path: Path) -> None:
    path = tmp_path / "known.yaml"
    path.write_text("accepted:\n- {id: rbac.permission-gained, subject: ServiceAccount kubeflow/x, reason: ok, "
                    "modes: [tls]}\n")
    result = apply_known([_finding(mode="tls"), _finding(mode="standalone"), _finding(severity=Severity.WARNING,
                                                                                      mode="tls")],
                         load_known_findings(path), dt.date(2026, 1, 1))
    assert [bool(f.accepted) for f in result.findings] == [True, False, False]


@pytest.mark.parametrize(("text", "problem"), [
    ("accepted: [{subject: s, reason: r}]", "needs `id` and `subject`"),
    ("accepted: [{id: i, subject: s}]", "has no reason"),
    ("accepted: [{id: i, subject: s, reason: r, until: soon}]", "not a date"),
    ("nothing: here", "has no `accepted:` list"),
    ("accepted: [", "is not valid YAML"),
])
def test_bad_known_findings_file_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "known.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_known_findings(path)
    assert problem in err.value.line() and "\n" not in err.value.line()


def test_written_file_groups_by_cause_with_todo_reasons() -> None:
    findings = [_finding(mode=m) for m in ("standalone", "tls")] + [_finding(subject="ServiceAccount kubeflow/y")]
    text = known_findings_yaml(findings, dt.date(2026, 1, 1))
    assert text.count("- id: rbac.permission-gained") == 2 and "TODO" in text and "2026-04-01" in text
    assert [d.findings.__len__() for d in group(findings)] == [2, 1]
