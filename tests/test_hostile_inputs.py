"""The harness's own suite of hostile inputs: every command, fed what a careful user (or a typo) would feed it.

Each case asserts the promised treatment: the exit code, exactly one stderr line that names the problem and
carries the fix (`error: ... (fix)`), no traceback, nothing on stdout, and nothing written that looks like a
finished output (static.json, static.md, report.json, summary.md, plan.json, live.json, compiled pipelines).
Cases run in-process through `harness.cli.main` (fast, and an escaping exception fails the test); a sample
also runs through the installed console script `.venv/bin/kfp-conformance`, as a user would.

Count the cases: `python -m tests.test_hostile_inputs --count` (or `pytest tests/test_hostile_inputs.py
--collect-only -q`).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FINISHED = ("static.json", "static.md", "report.json", "summary.md", "index.html", "junit.xml", "plan.json",
            "live.json", "migration.json", "bundle.json")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    needle: str  # a word of the one line that names the problem or the fix
    rc: int = 2
    env: dict[str, str] = field(default_factory=dict)


def C(case_id: str, argv: str, needle: str, rc: int = 2, **env: str) -> Case:  # noqa: N802 - table syntax
    return Case(case_id, tuple(argv.split()), needle, rc, env)


# {w}: a scratch "world" of bad files (see `world`); {trees}/{bases}: the shared KFP trees and mirror.
SEL = "--variant driver-pod --mode standalone"
CASES: list[Case] = [
    # -- top level and argparse ------------------------------------------------------------------------
    C("no-command", "", "required"),
    C("unknown-command", "nope", "invalid choice"),
    C("unknown-option", "static --bogus", "unrecognized"),
    C("bad-choice-provider", "run --provider docker", "invalid choice"),
    C("bad-choice-keep", "run --keep-clusters sometimes", "invalid choice"),
    C("bad-int-max-clusters", "run --max-clusters many", "invalid int"),
    C("bad-plan-format", "run --plan --plan-format xml", "invalid choice"),
    C("report-no-dirs", "report", "required"),
    C("clusters-no-action", "clusters", "required"),
    C("images-no-action", "images", "required"),
    C("bad-int-jobs", "scenarios --jobs x", "invalid int"),
    C("bad-report-format", "report {w}/empty --format pdf", "invalid choice"),
    # -- config ----------------------------------------------------------------------------------------
    C("static-config-missing", f"static {SEL} --config {{w}}/nope.yaml --out {{w}}/o", "nope.yaml"),
    C("static-config-not-yaml", f"static {SEL} --config {{w}}/bad.yaml --out {{w}}/o", "bad.yaml"),
    C("static-config-a-list", f"static {SEL} --config {{w}}/list.yaml --out {{w}}/o", "list.yaml"),
    C("static-config-is-dir", f"static {SEL} --config {{w}} --out {{w}}/o", "config"),
    C("matrix-config-missing", "matrix --config {w}/nope.yaml", "nope.yaml"),
    C("matrix-config-not-yaml", "matrix --config {w}/bad.yaml", "bad.yaml"),
    C("env-config-missing", f"static {SEL} --out {{w}}/o", "nope.yaml", KFPC_CONFIG="{w}/nope.yaml"),
    C("scenarios-config-not-yaml", "scenarios --config {w}/bad.yaml", "bad.yaml"),
    C("clusters-config-not-yaml", "clusters list --config {w}/bad.yaml --cache-dir {w}/c", "bad.yaml"),
    # -- variants and modes ----------------------------------------------------------------------------
    C("static-unknown-variant", "static --variant nope --out {w}/o", "nope"),
    C("static-unknown-mode", "static --variant driver-pod --mode nope --out {w}/o", "nope"),
    C("static-variant-twice", "static --variant driver-pod --variant driver-pod --out {w}/o", "twice"),
    C("run-unknown-variant", "run --plan --variant nope", "nope"),
    C("run-unknown-mode", "run --plan --variant driver-pod --mode nope", "nope"),
    C("rbac-unknown-variant", "rbac --variant nope", "nope"),
    C("matrix-unknown-variant", "matrix --variant nope", "nope"),
    C("matrix-unknown-mode", "matrix --mode nope", "nope"),
    C("migrate-same-variants", "migrate --plan --from driver-pod --to driver-pod", "different"),
    C("migrate-unknown-variant", "migrate --plan --from nope", "nope"),
    C("migrate-unknown-mode", "migrate --plan --mode nope", "nope"),
    # -- sources ---------------------------------------------------------------------------------------
    C("sources-not-a-dir", f"static {SEL} --sources {{w}}/afile --out {{w}}/o", "--sources"),
    C("sources-missing", f"static {SEL} --sources {{w}}/nope --out {{w}}/o", "--sources"),
    C("sources-without-variant-tree", f"static {SEL} --sources {{w}}/empty --out {{w}}/o", "driver-pod"),
    C("variant-path-missing", "static --variant driver-pod={w}/nope --mode standalone --out {w}/o", "does not exist"),
    C("variant-path-not-kfp", "static --variant driver-pod={w}/empty --mode standalone --out {w}/o", "not a KFP tree"),
    C("variant-path-is-file", "static --variant driver-pod={w}/afile --mode standalone --out {w}/o", "does not exist"),
    C("git-url-without-ref", "static --variant driver-pod=https://example.invalid/x --mode standalone --out {w}/o",
      "no ref"),
    C("git-url-empty-ref", "static --variant driver-pod=https://example.invalid/x@ --mode standalone --out {w}/o",
      "ref"),
    C("git-url-unreachable", "static --variant driver-pod=file://{w}/nope@main --mode standalone --out {w}/o",
      "cannot fetch"),
    C("source-yaml-not-yaml", "static --variant driver-pod={w}/src-bad-yaml --mode standalone --out {w}/o",
      "SOURCE.yaml"),
    C("source-yaml-a-list", "static --variant driver-pod={w}/src-list --mode standalone --out {w}/o", "SOURCE.yaml"),
    C("source-yaml-bad-commit", "static --variant driver-pod={w}/src-bad-commit --mode standalone --out {w}/o",
      "commit"),
    C("source-yaml-commit-mapping", "static --variant driver-pod={w}/src-commit-map --mode standalone --out {w}/o",
      "commit"),
    C("rbac-bad-source-yaml", "rbac --variant driver-pod={w}/src-bad-yaml --mode standalone", "SOURCE.yaml"),
    C("remote-bases-missing", f"static {SEL} --remote-bases {{w}}/nope --out {{w}}/o", "remote"),
    # -- output and cache directories ------------------------------------------------------------------
    C("static-out-is-file", f"static {SEL} --out {{w}}/afile", "--out"),
    C("static-out-under-file", f"static {SEL} --out {{w}}/afile/sub", "--out"),
    C("static-out-not-writable", f"static {SEL} --out /proc/kfpc-out", "--out"),
    C("static-cache-is-file", f"static {SEL} --cache-dir {{w}}/afile --out {{w}}/o", "--cache-dir"),
    C("static-cache-not-writable", f"static {SEL} --cache-dir /proc/kfpc-cache --out {{w}}/o", "--cache-dir"),
    C("env-cache-is-file", f"static {SEL} --out {{w}}/o", "cache dir", KFPC_CACHE_DIR="{w}/afile"),
    C("run-out-is-file", f"run --static-only {SEL} --out {{w}}/afile", "--out"),
    C("run-plan-cache-is-file", f"run --plan {SEL} --cache-dir {{w}}/afile", "--cache-dir"),
    C("rbac-out-is-file", f"rbac {SEL} --out {{w}}/afile", "--out"),
    C("report-out-is-file", "report {w}/empty --out {w}/afile", "--out"),
    C("report-out-not-writable", "report {w}/empty --out /proc/kfpc-report", "--out"),
    C("scenarios-compile-to-file", "scenarios --compile-to {w}/afile", "--compile-to"),
    C("scenarios-compile-to-not-writable", "scenarios --compile-to /proc/kfpc-compiled", "--compile-to"),
    C("scenarios-oracle-dir-file", "scenarios --oracle {w}/afile", "--oracle"),
    C("migrate-out-is-file", "migrate --plan --out {w}/afile", "--out"),
    C("images-out-is-file", "images build --variant driver-pod --plan --out {w}/afile", "--out"),
    # -- static checks ---------------------------------------------------------------------------------
    C("static-unknown-check", f"static {SEL} --check nope --out {{w}}/o", "unknown --check"),
    C("static-check-typo", f"static {SEL} --check rbac --check inventroy --out {{w}}/o", "inventroy"),
    C("static-known-findings-missing", f"static {SEL} --known-findings {{w}}/nope.yaml --out {{w}}/o", "nope.yaml"),
    C("static-known-findings-not-yaml", f"static {SEL} --known-findings {{w}}/bad.yaml --out {{w}}/o", "bad.yaml"),
    # -- scenarios (catalogue files are Python: hostile ones exit, hang or fail at import) --------------
    C("scenarios-dir-missing", "scenarios --pipelines {w}/nope", "scenario directory"),
    C("scenarios-dir-empty", "scenarios --pipelines {w}/empty", "no scenario files"),
    C("scenario-calls-sys-exit-0", "scenarios --pipelines {w}/scen-exit0", "sys.exit"),
    C("scenario-calls-sys-exit-3", "scenarios --pipelines {w}/scen-exit3", "sys.exit"),
    C("scenario-hangs-at-import", "scenarios --pipelines {w}/scen-hang", "did not finish importing",
      KFPC_SCENARIO_IMPORT_SECONDS="1"),
    C("scenario-syntax-error", "scenarios --pipelines {w}/scen-syntax", "SyntaxError"),
    C("scenario-raises", "scenarios --pipelines {w}/scen-raise", "failed to import"),
    C("scenario-declares-nothing", "scenarios --pipelines {w}/scen-none", "SCENARIO"),
    C("scenarios-unknown-only", "scenarios --only nope", "unknown scenario"),
    C("scenarios-jobs-zero", "scenarios --jobs 0", "--jobs"),
    C("run-scenario-hangs-env", f"run --plan {SEL}", "did not finish importing", KFPC_PIPELINES="{w}/scen-hang",
      KFPC_SCENARIO_IMPORT_SECONDS="1"),
    C("run-scenario-exits-env", f"run --plan {SEL}", "sys.exit", KFPC_PIPELINES="{w}/scen-exit0"),
    C("run-unknown-scenario", f"run --plan {SEL} --scenario nope", "unknown scenario"),
    C("run-no-scenario-for-tag", f"run --plan {SEL} --tag no-such-tag", "no scenario"),
    # -- run / migrate cluster options -----------------------------------------------------------------
    C("run-static-only-with-plan", f"run --static-only --plan {SEL}", "--static-only"),
    C("run-static-only-with-live-only", f"run --static-only --live-only {SEL}", "--static-only"),
    C("run-max-clusters-zero", f"run --plan {SEL} --max-clusters 0", "--max-clusters"),
    C("run-bad-image-spec", f"run --plan {SEL} --image nonsense", "--image"),
    C("run-image-unselected-variant", f"run --plan {SEL} --image central-driver=a=b", "not selected"),
    C("run-bad-driver-image", "run --plan --variant sidecar-plugin --mode standalone --driver-image sidecar-plugin",
      "--driver-image"),
    C("run-driver-image-unselected", f"run --plan {SEL} --driver-image central-driver=x:1", "not selected"),
    C("run-placeholder-driver-image", "run --plan --variant sidecar-plugin --mode standalone", "driver image"),
    C("run-existing-kubeconfig-missing", f"run --live-only --provider existing --kubeconfig {{w}}/nope {SEL}",
      "kubeconfig"),
    C("run-existing-kubeconfig-garbage", f"run --live-only --provider existing --kubeconfig {{w}}/bad.yaml {SEL}",
      "kubeconfig"),
    C("run-existing-unknown-context", f"run --live-only --provider existing --kubeconfig {{w}}/kc-dead.yaml "
                                      f"--context nope {SEL}", "context"),
    C("run-existing-unreachable", f"run --live-only --provider existing --kubeconfig {{w}}/kc-dead.yaml {SEL} "
                                  "--out {w}/o", "does not answer"),
    C("run-no-docker", f"run --live-only {SEL} --out {{w}}/o", "Docker", KFPC_FAKE_DOCKER_DAEMON="0"),
    C("migrate-existing-unreachable", "migrate --provider existing --kubeconfig {w}/kc-dead.yaml --driver-image "
                                      "sidecar-plugin=a:1 --driver-image central-driver=b:1 --out {w}/o",
      "does not answer"),
    C("migrate-no-docker", "migrate --driver-image sidecar-plugin=a:1 --driver-image central-driver=b:1 "
                           "--out {w}/o", "Docker", KFPC_FAKE_DOCKER_DAEMON="0"),
    # -- rbac ------------------------------------------------------------------------------------------
    C("rbac-bad-as", f"rbac {SEL} --as nobody", "--as"),
    C("rbac-can-one-arg", f"rbac {SEL} --can get", "--can"),
    C("rbac-can-five-args", f"rbac {SEL} --can a b c d e", "--can"),
    # -- images ----------------------------------------------------------------------------------------
    C("images-no-variant", "images build --plan", "exactly one"),
    C("images-two-variants", "images build --plan --variant driver-pod --variant central-driver", "exactly one"),
    C("images-no-docker", "images build --variant driver-pod", "Docker", KFPC_FAKE_DOCKER_DAEMON="0"),
    C("images-file-missing", "images build --plan --variant driver-pod --images-file {w}/nope.yaml", "nope.yaml"),
    C("images-file-not-yaml", "images build --plan --variant driver-pod --images-file {w}/bad.yaml", "bad.yaml"),
    C("images-unknown-only", "images build --plan --variant driver-pod --only nope", "nope"),
    # -- report ----------------------------------------------------------------------------------------
    C("report-dir-missing", "report {w}/nope --out {w}/r", "nope"),
    C("report-no-bundles", "report {w}/empty --out {w}/r", "bundle"),
    C("report-bundle-not-json", "report {w}/bundle-garbage --out {w}/r", "bundle"),
    C("report-static-missing", "report {w}/empty --static {w}/nope.json --out {w}/r", "nope.json"),
    C("report-static-not-json", "report {w}/bundle-garbage --static {w}/bad.yaml --out {w}/r", "bad.yaml"),
    C("report-garbage-with-baseline", "report {w}/bundle-garbage --baseline nope --out {w}/r", "bundle.json"),
    C("report-policy-missing", "report {w}/empty --policy {w}/nope --out {w}/r", "nope"),
    # -- clusters --------------------------------------------------------------------------------------
    C("clusters-cache-is-file", "clusters list --cache-dir {w}/afile", "cache"),
]


def world(root: Path) -> Path:
    """The bad files the cases point at."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "afile").write_text("not a directory\n")
    (root / "empty").mkdir(exist_ok=True)
    (root / "bad.yaml").write_text("key: [unclosed\n  - : :\n")
    (root / "list.yaml").write_text("- just\n- a list\n")
    for name, text in {"src-bad-yaml": "commit: [unclosed\n", "src-list": "- a\n",
                       "src-bad-commit": "commit: not a commit id!\nref: main\n",
                       "src-commit-map": "commit: {a: 1}\n"}.items():
        (root / name / "manifests" / "kustomize").mkdir(parents=True, exist_ok=True)
        (root / name / "SOURCE.yaml").write_text(text)
    scenarios = {"scen-exit0": "import sys\nsys.exit(0)\n", "scen-exit3": "raise SystemExit(3)\n",
                 "scen-hang": "import time\nwhile True:\n    time.sleep(0.05)\n",
                 "scen-syntax": "def broken(:\n", "scen-raise": "raise RuntimeError('boom')\n",
                 "scen-none": "X = 1\n"}
    for name, text in scenarios.items():
        (root / name).mkdir(exist_ok=True)
        (root / name / "hostile.py").write_text(text)
    (root / "kc-dead.yaml").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: dead, user: {token: not-a-secret}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: dead}}]\n")
    garbage = root / "bundle-garbage" / "bundles" / "s" / "driver-pod.standalone"
    garbage.mkdir(parents=True, exist_ok=True)
    (garbage / "bundle.json").write_text("{not json")
    return root


def _expand(value: str, w: Path) -> str:
    return value.replace("{w}", str(w))


def _finished_outputs(w: Path) -> list[str]:
    return sorted(str(p.relative_to(w)) for p in w.rglob("*") if p.name in FINISHED and "bundle-garbage" not in p.parts)


def check_outcome(case: Case, rc: int, out: str, err: str, w: Path) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert rc == case.rc, f"exit {rc}, expected {case.rc}: {err}"
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert line.rstrip().endswith(")") and " (" in line, f"no fix in parentheses: {line}"
    assert case.needle.lower() in line.lower(), f"{case.needle!r} not in: {line}"
    assert out.strip() == "", f"stdout not empty: {out[:300]}"
    assert _finished_outputs(w) == [], "an output that looks finished was written"


if __name__ == "__main__" and "--count" in sys.argv:
    from harness.cli import COMMANDS

    names = {module.rsplit(".", 1)[1] for module in COMMANDS}
    print(f"{len(CASES)} hostile-input cases over {len({c.argv[0] for c in CASES if c.argv} & names)} commands "
          "(tests/test_hostile_inputs.py)")
    sys.exit(0)

import pytest  # noqa: E402 - the --count entry point above needs no pytest

from harness.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return world(tmp_path_factory.mktemp("hostile"))


@pytest.fixture()
def fake_docker(tmp_path: Path) -> dict[str, str]:
    from harness.testing.fakebin import fake_env, write_fake_bins

    return fake_env(write_fake_bins(tmp_path / "bin"), tmp_path / "calls.jsonl", tmp_path / "state.json")


def _env(case: Case, w: Path, fake_docker: dict[str, str]) -> dict[str, str]:
    env = {k: _expand(v, w) for k, v in case.env.items()}
    if "KFPC_FAKE_DOCKER_DAEMON" in env:
        env.update(fake_docker)
    return env


def test_hostile_inputs_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 85
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.argv, tuple(sorted(c.env.items()))) for c in CASES}) == len(CASES)
    commands = {c.argv[0] for c in CASES if c.argv}
    assert commands >= {"static", "run", "clusters", "matrix", "images", "rbac", "report", "scenarios", "migrate"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_in_process(case: Case, w: Path, fake_docker: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _env(case, w, fake_docker).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(w)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([_expand(a, w) for a in case.argv])
        except SystemExit as exc:  # argparse usage errors
            rc = int(exc.code or 0)
    check_outcome(case, rc, out.getvalue(), err.getvalue(), w)


SUBPROCESS_SAMPLE = ["unknown-option", "static-unknown-check", "static-out-is-file", "source-yaml-not-yaml",
                     "scenario-calls-sys-exit-0", "run-existing-unreachable", "images-no-docker",
                     "report-bundle-not-json", "clusters-cache-is-file"]


@pytest.mark.parametrize("case_id", SUBPROCESS_SAMPLE)
def test_hostile_input_console_script(case_id: str, w: Path, fake_docker: dict[str, str]) -> None:
    case = next(c for c in CASES if c.id == case_id)
    script = Path(sys.executable).parent / "kfp-conformance"
    assert script.exists(), "the kfp-conformance console script is not installed (bash scripts/bootstrap.sh)"
    argv = [str(script)]
    env = {**os.environ, **_env(case, w, fake_docker)}
    done = subprocess.run([*argv, *(_expand(a, w) for a in case.argv)], cwd=w, env=env, capture_output=True,
                          text=True, timeout=120)
    check_outcome(case, done.returncode, done.stdout, done.stderr, w)
