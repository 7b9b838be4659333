"""The scenario catalogue: discovery, validation, compilation (deterministic bytes), coverage, CLI listing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.catalogue import scenarios as catalogue
from harness.cli import main
from harness.config import load_config
from harness.models import ORACLE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def specs() -> list[catalogue.ScenarioSpec]:
    return catalogue.discover(modes=list(load_config().modes))


@pytest.fixture(scope="module")
def compiled(specs: list[catalogue.ScenarioSpec], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compiled")
    return {spec.name: catalogue.compile_scenario(spec, out) for spec in specs}


def _ir(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    documents = list(yaml.safe_load_all(path.read_text()))
    return documents[0], (documents[1] if len(documents) > 1 else {})


def _tasks(ir: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, task) for every task of every DAG in the IR."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(dag: dict[str, Any], prefix: str) -> None:
        for name, task in dag.get("tasks", {}).items():
            found.append((f"{prefix}/{name}", task))
            child = ir["components"].get(task["componentRef"]["name"], {})
            if "dag" in child:
                walk(child["dag"], f"{prefix}/{name}")

    walk(ir["root"]["dag"], "root")
    return found


def test_catalogue_has_at_least_14_scenarios_each_with_expectations(specs: list[catalogue.ScenarioSpec]) -> None:
    assert len(specs) >= 14
    for spec in specs:
        assert spec.expected_outputs or spec.failing_tasks, f"{spec.name} declares no expectations"
        assert spec.expected_state in ("SUCCEEDED", "FAILED")
        assert spec.tags, f"{spec.name} has no tags"
        assert spec.file and Path(spec.file).stem == spec.name.replace("-", "_")
    assert {s.name for s in specs if "critical" in s.tags} >= {"single-component", "conditions", "loops"}


def test_every_scenario_compiles_to_ir_with_the_shared_base_image(compiled: dict[str, Path]) -> None:
    for name, path in compiled.items():
        ir, _ = _ir(path)
        assert ir["pipelineInfo"]["name"] == name
        images = {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()
                  if "container" in e and not e["container"]["image"].startswith("argostub/")}
        assert images <= {catalogue.BASE_IMAGE}, f"{name} uses {images}"
        assert "pip install" not in path.read_text(), f"{name} would pip-install at run time"


def test_compiled_ir_is_byte_identical_in_a_fresh_process(compiled: dict[str, Path], tmp_path: Path) -> None:
    # kfp numbers nested-pipeline components differently from one process to the next: compare with a
    # second compile in another interpreter (another hash seed too), through the real CLI.
    out = tmp_path / "again"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "scenarios", "--compile-to", str(out),
                             "--format", "json"], capture_output=True, text=True, cwd=REPO,
                            env={**_env(), "PYTHONHASHSEED": "7"}, timeout=300)
    assert result.returncode == 0, result.stderr
    for name, path in compiled.items():
        assert (out / path.name).read_bytes() == path.read_bytes(), f"{name} compiles to different bytes"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}


def test_normalise_ir_undoes_kfp_component_numbering(compiled: dict[str, Path]) -> None:
    """Swap two component names and split a shared executor, as kfp does between processes: same bytes back."""
    text = compiled["pipeline-in-pipeline"].read_text()
    ir, _ = _ir(compiled["pipeline-in-pipeline"])
    adds = sorted(n for n in ir["components"] if n.startswith("comp-add"))
    assert len(adds) == 3
    swapped = text.replace(adds[1], "comp-swap").replace(adds[2], adds[1]).replace("comp-swap", adds[2])
    shuffled_ir = yaml.safe_load(swapped)
    executor = shuffled_ir["components"][adds[2]]["executorLabel"]
    shuffled_ir["deploymentSpec"]["executors"]["exec-extra-copy"] = shuffled_ir["deploymentSpec"]["executors"][executor]
    shuffled_ir["components"][adds[2]]["executorLabel"] = "exec-extra-copy"
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    shuffled = header + yaml.dump_all([shuffled_ir], sort_keys=True)
    assert shuffled != text
    assert catalogue.normalise_ir(shuffled) == text
    assert catalogue.normalise_ir(text) == text


def test_catalogue_covers_every_path_where_the_driver_matters(specs: list[catalogue.ScenarioSpec],
                                                              compiled: dict[str, Path]) -> None:
    """Coverage read from the compiled IR, not from names: each issue item has a scenario that does it."""
    by_name = {s.name: s for s in specs}
    seen: dict[str, set[str]] = {}

    def mark(feature: str, name: str) -> None:
        seen.setdefault(feature, set()).add(name)

    for name, path in compiled.items():
        ir, platform = _ir(path)
        spec = by_name[name]
        tasks = _tasks(ir)
        containers = [(p, t) for p, t in tasks if "executorLabel" in ir["components"][t["componentRef"]["name"]]]
        executors = ir["deploymentSpec"]["executors"]
        k8s = json.dumps(platform)
        if len(tasks) == 1:
            mark("single component", name)
        if any("taskOutputParameter" in i for _, t in tasks for i in t.get("inputs", {}).get("parameters", {}).values()):
            mark("parameter chain", name)
        artifact_types = {a["artifactType"]["schemaTitle"] for c in ir["components"].values()
                          for a in c.get("outputDefinitions", {}).get("artifacts", {}).values()}
        if {"system.Dataset", "system.Model", "system.Metrics"} <= artifact_types:
            mark("artifacts", name)
        if spec.expected_state == "FAILED" and spec.failing_tasks:
            mark("designed to fail", name)
        for p, t in tasks:
            component = ir["components"][t["componentRef"]["name"]]
            if "retryPolicy" in t:
                mark("retry on a DAG" if "dag" in component else "retry on a component", name)
            if "condition" in t.get("triggerPolicy", {}) and p.count("condition-") >= 2:
                mark("nested condition", name)
            if "parameterIterator" in t:
                items = t["parameterIterator"]["items"]
                mark("loop over a static list" if "raw" in items else "loop over a parameter", name)
                if p.count("for-loop-") >= 2:
                    mark("nested loops", name)
            if t.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED" and any(
                    "taskFinalStatus" in i for i in t.get("inputs", {}).get("parameters", {}).values()):
                mark("exit handler", name)
            if "dag" in component and not any(
                    t["componentRef"]["name"].startswith(f"comp-{g}") for g in ("condition", "for-loop", "exit-handler")):
                mark("pipeline in pipeline", name)
            if not t.get("cachingOptions", {}).get("enableCache", False) and p in spec.expected_cache:
                mark("caching disabled", name)
        if any("!(" in t.get("triggerPolicy", {}).get("condition", "") for _, t in tasks) and \
                sum("condition-branches" in p for p, _ in tasks) >= 1:
            mark("if/elif/else", name)
        consumed = [i for _, t in tasks for kind in ("parameters", "artifacts")
                    for i in t.get("inputs", {}).get(kind, {}).values()]
        if any(i.get(key, {}).get("producerTask", "").startswith("for-loop-")
               for i in consumed for key in ("taskOutputParameter", "taskOutputArtifact")):
            mark("dsl.Collected", name)
        if spec.repeat_runs >= 2 and any(spec.expected_cache.values()):
            mark("caching (second run from cache)", name)
        if "exec-createpvc" in executors and "pvcMount" in k8s:
            mark("PVC created and mounted", name)
        if all(key in k8s for key in ("secretAsEnv", "secretAsVolume", "configMapAsEnv", "configMapAsVolume")):
            mark("secret and ConfigMap", name)
        if any("importer" in e for e in executors.values()):
            mark("importer", name)
        for _, t in containers:  # an optional input without a default that the task leaves out
            component = ir["components"][t["componentRef"]["name"]]
            if executors[component["executorLabel"]].get("container", {}).get("image", "").startswith("argostub/"):
                continue  # kfp-kubernetes' own createpvc/deletepvc
            definitions = {**component.get("inputDefinitions", {}).get("parameters", {}),
                           **component.get("inputDefinitions", {}).get("artifacts", {})}
            given = {**t.get("inputs", {}).get("parameters", {}), **t.get("inputs", {}).get("artifacts", {})}
            if any(d.get("isOptional") and "defaultValue" not in d and key not in given
                   for key, d in definitions.items()):
                mark("optional inputs", name)
    required = {"single component", "parameter chain", "artifacts", "designed to fail", "retry on a component",
                "retry on a DAG", "if/elif/else", "nested condition", "loop over a static list",
                "loop over a parameter", "nested loops", "dsl.Collected", "pipeline in pipeline", "exit handler",
                "caching (second run from cache)", "caching disabled", "PVC created and mounted",
                "secret and ConfigMap", "importer", "optional inputs"}
    missing = required - set(seen)
    assert not missing, f"no scenario covers: {', '.join(sorted(missing))}"
    # every driver output the issue names is claimed by at least one scenario
    claimed = {o for s in specs for o in s.driver_outputs}
    assert claimed == set(catalogue.DRIVER_OUTPUTS)


def test_to_scenario_carries_every_declaration(specs: list[catalogue.ScenarioSpec], compiled: dict[str, Path]) -> None:
    spec = next(s for s in specs if s.name == "caching-disabled")
    scenario = catalogue.to_scenario(spec, compiled[spec.name])
    assert scenario.origin == "catalogue"
    assert scenario.pipeline_file == str(compiled[spec.name])
    assert scenario.repeat_runs == 2 and scenario.expected_cache == {"root/upper": True, "root/reverse": False}
    assert scenario.expected_outputs["root/reverse"] == {"Output": "ECNAMROFNOC-PFK"}
    secret = catalogue.to_scenario(next(s for s in specs if s.name == "secret-configmap"), compiled["secret-configmap"])
    assert {o["kind"] for o in secret.setup} == {"Secret", "ConfigMap"}
    # with an oracle result, ORACLE markers become recorded values; literals stay as declared
    marked = replace(spec, expected_outputs={"root/upper": ORACLE, "root/reverse": {"Output": "declared"}})
    resolved = catalogue.to_scenario(marked, "x.yaml", {"tasks": {"root/upper": {"outputs": {"Output": "KFP"}}}})
    assert resolved.expected_outputs == {"root/upper": {"Output": "KFP"}, "root/reverse": {"Output": "declared"}}


GOOD = """
from kfp import dsl
from harness.catalogue.scenarios import ScenarioSpec, component

@component
def echo(text: str) -> str:
    return text

@dsl.pipeline(name="{name}")
def pipeline(text: str = "hi"):
    echo(text=text)

SCENARIO = ScenarioSpec(name="{name}", pipeline=pipeline, description="echo", {extra})
"""

BAD_FILES = {
    "no expectations": ("no_expectations", GOOD.format(name="no-expectations", extra=""),
                        "declares no expectations"),
    "oracle value without oracle": ("declared_only", GOOD.format(
        name="declared-only", extra='expected_outputs={"root/echo": {"Output": "oracle"}}, oracle="cannot"'),
        "uses ORACLE values but the oracle cannot run it"),
    "unknown mode": ("odd_mode", GOOD.format(
        name="odd-mode", extra='modes=("cloud",), expected_outputs={"root/echo": {"Output": "hi"}}'), "unknown mode(s) cloud"),
    "file name differs": ("other_file", GOOD.format(
        name="some-name", extra='expected_outputs={"root/echo": {"Output": "hi"}}'), "name the file some_name.py"),
    "import error": ("broken", "import no_such_module_kfpc\n", "failed to import: ModuleNotFoundError"),
    "no SCENARIO": ("empty", "X = 1\n", "declares no SCENARIO"),
    "unknown task path": ("typo", GOOD.format(
        name="typo", extra='expected_outputs={"root/ecko": {"Output": "hi"}}'),
        "task path(s) not in the compiled pipeline: root/ecko"),
    "multi-line default": ("multiline", GOOD.format(
        name="multiline", extra='expected_outputs={"root/echo": {"Output": "hi"}}').replace(
        'text: str = "hi"', 'text: str = "a\\nb"'), "compiled IR is not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_scenario_file_gives_one_error_line_and_exit_2(case: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stem, text, message = BAD_FILES[case]
    (tmp_path / f"{stem}.py").write_text(textwrap.dedent(text))
    out = tmp_path / "compiled"
    code = main(["scenarios", "--pipelines", str(tmp_path), "--compile-to", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert message in lines[0]
    assert f"{stem}.py" in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists() or not any(out.iterdir())  # nothing half-made, not even a partial file


def test_scenarios_command_prints_the_catalogue(specs: list[catalogue.ScenarioSpec],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0].split()
    assert header[:2] == ["SCENARIO", "TAGS"] and "EXPECTATIONS" in header
    for spec in specs:
        row = next(line for line in text.splitlines() if line.split()[:1] == [spec.name])
        assert spec.expectation_source in row.split()
        assert (",".join(spec.driver_outputs) or "-") in row.split()
        if not spec.oracle_supported:
            assert f"{spec.name}: {spec.oracle_reason}" in text
    assert main(["scenarios", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == len(specs)
    rows = {r["name"]: r for r in data["scenarios"]}
    assert rows["pvc"]["expectations"] == "declared" and rows["pvc"]["oracle_reason"]
    assert rows["conditions"]["driver_outputs"] == ["condition"]
    assert all(set(r) >= {"name", "tags", "modes", "driver_outputs", "expectations"} for r in rows.values())


def test_scenarios_command_refuses_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--only", "no-such-scenario"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown scenario(s): no-such-scenario") and len(err.strip().splitlines()) == 1
