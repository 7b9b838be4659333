"""KFP's E2E corpus as scenarios, checked on the real corpus files of the three shared KFP trees.

Nothing is faked: the trees, the KFP protos, the exclusion file and the config are the real ones. Expected
counts and differences are computed from the files on disk, not written down.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from harness.catalogue.corpus import (
    CORPUS_DIR,
    E2E_FOLDERS,
    RUNTIME,
    corpus_coverage,
    corpus_scenarios,
    load_corpus,
    load_exclusions,
    parse_findings,
    parse_folders,
)
from harness.cli.corpus_listing import folder_counts, main_corpus
from harness.config import load_config
from harness.errors import ConfigError, HarnessError, SourceError
from harness.models import SAME_AS_BASELINE

VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")
FOLDER_DIRS = {"critical": "valid/critical", "essential": "valid/essential",
               "parallel_and_nested": "valid/parallel_and_nested", "failing": "valid/failing"}


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def corpora(kfp_trees: Path) -> dict[str, list]:
    return {v: load_corpus(kfp_trees / v) for v in VARIANTS}


def by_stem(entries: list) -> dict:
    return {Path(e.path).stem: e for e in entries}


def files_on_disk(tree: Path, folder_dir: str) -> set[str]:
    directory = tree / CORPUS_DIR / folder_dir
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml", ".json")}


# ------------------------------------------------------------------ loading and static analysis


@pytest.mark.parametrize("variant", VARIANTS)
def test_load_corpus_lists_every_pipeline_file_per_folder(kfp_trees: Path, corpora, variant: str) -> None:
    entries = corpora[variant]
    for folder, folder_dir in FOLDER_DIRS.items():
        expected = files_on_disk(kfp_trees / variant, folder_dir)
        got = {Path(e.path).name for e in entries if e.folder == folder}
        assert got == expected, f"{variant} {folder}"
    assert all(not e.error for e in entries), [(e.path, e.error) for e in entries if e.error]
    assert len({e.name for e in entries}) == len(entries)  # scenario names are unique
    assert all(e.path.startswith(f"{CORPUS_DIR}/valid/") for e in entries)


def test_central_driver_tree_has_no_parallel_and_nested_folder(corpora) -> None:
    assert not [e for e in corpora["central-driver"] if e.folder == "parallel_and_nested"]
    assert [e for e in corpora["sidecar-plugin"] if e.folder == "parallel_and_nested"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_failing_folder_expects_failed_and_others_succeeded(corpora, variant: str) -> None:
    entries = corpora[variant]
    failing = [e for e in entries if e.folder == "failing"]
    assert failing and all(e.expected_state == "FAILED" for e in failing)
    assert all(e.expected_state == "SUCCEEDED" for e in entries if e.folder != "failing")


def test_kfp_kubernetes_features_and_secrets_read_from_platform_spec(corpora) -> None:
    entries = by_stem(corpora["sidecar-plugin"])
    secret_env = entries["pipeline_with_secret_as_env"]
    assert "secret-as-env" in secret_env.features
    # secret_parm's default, a runtime constant, and a name produced by a task
    assert set(secret_env.secrets) == {"test-secret-1", "test-secret-2", RUNTIME}
    assert "pod-spec-patch" in secret_env.driver_outputs

    optional = entries["missing_kubernetes_optional_inputs"]
    assert {"config-map-as-env", "config-map-as-volume", "image-pull-secret", "node-affinity", "node-selector",
            "secret-as-env", "secret-as-volume", "tolerations"} <= set(optional.features)
    assert optional.secrets == () and optional.config_maps == ()  # all marked optional: nothing required

    pvc = entries["parallel_for_mount_pvc"]
    assert {"pvc-create", "pvc-mount"} <= set(pvc.features)
    assert not any(i.startswith("argostub/") for i in pvc.images)  # resource templates, not pulled images
    assert {"iteration-count", "pod-spec-patch"} <= set(pvc.driver_outputs)

    assert "workspace" in entries["pipeline_with_workspace"].features
    assert {"field-path-as-env", "pod-metadata"} <= set(entries["pipeline_with_pod_metadata"].features)


def test_driver_outputs_follow_conditions_loops_and_caching(corpora) -> None:
    entries = by_stem(corpora["sidecar-plugin"])
    assert "condition" in entries["flip_coin"].driver_outputs
    assert "condition" in entries["pipeline_with_nested_conditions"].constructs
    assert "iteration-count" in entries["pipeline_with_loops"].driver_outputs
    assert "cached-decision" in entries["parameter_cache"].driver_outputs
    assert "retry" in entries["pipeline_with_retry"].constructs
    assert "exit-handler" in entries["pipeline_with_exit_handler"].constructs
    # no condition, loop, cache, platform config or resources: no such driver output exercised
    assert entries["mixed_parameters"].driver_outputs == ()


def test_images_components_and_importer_uris(corpora) -> None:
    entries = by_stem(corpora["sidecar-plugin"])
    assert entries["parameters_simple"].images == ("jetbrainsinfra/jq", "python:3.11")
    modelcar = entries["modelcar"]
    assert modelcar.importer_uris == ("oci://registry.domain.local/modelcar:test",)
    assert {"build-model-car", "get-model-files-list", "importer"} <= set(modelcar.components)
    assert "importer" in modelcar.constructs


def test_arguments_are_spec_defaults_plus_deterministic_values_for_required_inputs(corpora) -> None:
    retry = by_stem(corpora["sidecar-plugin"])["pipeline_with_retry"]
    assert retry.arguments == {"a": 1.0, "b": 7.0} and retry.generated_arguments == ()
    adds = [by_stem(corpora[v])["add_numbers"] for v in VARIANTS]
    assert adds[0].generated_arguments == ("a", "b")
    assert all(isinstance(adds[0].arguments[k], int) for k in ("a", "b"))
    assert all(a.arguments == adds[0].arguments for a in adds)  # same values on every variant
    concat = by_stem(corpora["sidecar-plugin"])["concat_message"]
    assert all(isinstance(concat.arguments[k], str) for k in concat.generated_arguments)


def test_all_folders_of_every_tree_parse_and_top_level_gpu_is_detected(kfp_trees: Path) -> None:
    entries = load_corpus(kfp_trees / "driver-pod", folders=["critical", "essential", "integration", "top-level"])
    assert not [e for e in entries if e.error]
    gpu = by_stem(entries)["pipeline_with_string_machine_fields_pipeline_input"]
    assert {"resources", "accelerator"} <= set(gpu.constructs) and "pod-spec-patch" in gpu.driver_outputs
    volume = by_stem(entries)["pipeline_with_volume"]
    assert {"pvc-create", "pvc-delete", "pvc-mount"} <= set(volume.features)
    names = [e.name for e in entries]
    assert len(names) == len(set(names))  # pipeline_with_importer.yaml and .json both keep a unique name
    assert {"corpus-pipeline-with-importer", "corpus-pipeline-with-importer-json"} <= set(names)


def test_folder_and_glob_selection(kfp_trees: Path) -> None:
    tree = kfp_trees / "sidecar-plugin"
    only = load_corpus(tree, folders=["E2EFailure"], glob="pipeline_with_*")
    assert sorted(Path(e.path).name for e in only) == sorted(
        n for n in files_on_disk(tree, "valid/failing") if n.startswith("pipeline_with_"))
    assert parse_folders([]) == E2E_FOLDERS
    assert parse_folders(["all"])[-1] == "invalid"
    with pytest.raises(HarnessError, match="unknown corpus folder 'nope'"):
        parse_folders(["nope"])


def test_real_invalid_files_become_error_entries_and_findings(kfp_trees: Path) -> None:
    entries = load_corpus(kfp_trees / "sidecar-plugin", folders=["invalid"])
    errors = {Path(e.path).name: e.error for e in entries}
    assert errors["empty_file.yaml"] == "empty file: no pipeline spec"
    assert "components_1" in errors["invalid_yaml.yaml"]
    assert "pipelineInfo.name" in errors["no_name.yaml"]
    findings = parse_findings(entries, "sidecar-plugin")
    assert [f.id for f in findings] == ["corpus.parse-error"] * len(entries)
    assert all(f.blocking and "\n" not in f.message for f in findings)


def test_corrupted_files_in_a_tree_do_not_crash(tmp_path: Path, kfp_trees: Path) -> None:
    folder = tmp_path / CORPUS_DIR / "valid" / "critical"
    folder.mkdir(parents=True)
    (folder / "not_yaml.yaml").write_text("root: [unclosed\n")
    (folder / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (folder / "list.yaml").write_text("- a\n- b\n")
    real = kfp_trees / "sidecar-plugin" / CORPUS_DIR / "valid" / "critical" / "flip_coin.yaml"
    (folder / "flip_coin.yaml").symlink_to(real)
    entries = by_stem(load_corpus(tmp_path))
    assert entries["not_yaml"].error.startswith("not valid YAML")
    assert entries["binary"].error == "not a text file (not UTF-8)"
    assert "pipeline spec" in entries["list"].error
    assert not entries["flip_coin"].error and "condition" in entries["flip_coin"].driver_outputs
    with pytest.raises(SourceError, match="3 corpus file"):
        corpus_scenarios(load_config(), tmp_path)


def test_tree_without_corpus_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="has no test_data/sdk_compiled_pipelines"):
        load_corpus(tmp_path)


# ------------------------------------------------------------------ scenarios and exclusions


def test_corpus_scenarios_follow_the_corpus_convention(kfp_trees: Path, config) -> None:
    scenarios = corpus_scenarios(config, kfp_trees / config.baseline)
    assert len(scenarios) == len(load_corpus(kfp_trees / config.baseline))
    for s in scenarios:
        assert s.origin == "corpus"
        assert s.expected_outputs == {"*": {"*": SAME_AS_BASELINE}}
        assert s.upstream_path.startswith(str(CORPUS_DIR)) and Path(s.pipeline_file).is_file()
        assert s.tags == (Path(s.upstream_path).parent.name, Path(s.upstream_path).stem)
        assert s.name.startswith("corpus-") and s.name == s.name.lower() and "_" not in s.name
    fail = next(s for s in scenarios if s.name == "corpus-fail-v2")
    assert fail.expected_state == "FAILED"


def test_exclusions_skip_with_reasons_and_never_drop(kfp_trees: Path, config) -> None:
    scenarios = {s.name: s for s in corpus_scenarios(config, kfp_trees / "sidecar-plugin")}
    modelcar = scenarios["corpus-modelcar"]
    for variant in config.variants:
        for mode in config.modes:
            assert "model-car" in (modelcar.skip_reason(variant, mode) or "")
    secret = scenarios["corpus-pipeline-with-secret-as-env"].skip_reason("central-driver", "multi-user")
    assert "test-secret" in secret and "[e2e-test-secrets]" in secret
    assert "[runtime-secret-name]" in scenarios["corpus-nested-parallel-for-secret"].skip_reason("driver-pod", "tls")
    assert scenarios["corpus-add-numbers"].skips == {}
    assert scenarios["corpus-add-numbers"].skip_reason("sidecar-plugin", "standalone") is None


def test_exclusion_file_rules_match_real_corpus_files(kfp_trees: Path, config) -> None:
    rules = {r.id: r for r in load_exclusions(config=config)}
    everything = [e for v in VARIANTS for e in load_corpus(kfp_trees / v, folders=["all"]) if not e.error]
    for rule_id, rule in rules.items():  # every rule excludes at least one real file: no dead rules
        assert any(rule.matches(e) for e in everything), rule_id
    top = by_stem(load_corpus(kfp_trees / "sidecar-plugin", folders=["top-level"]))
    assert rules["proxy-lane"].matches(top["env-var"])
    assert rules["gpu-accelerator"].matches(top["pipeline_with_string_machine_fields_task_output"])
    assert rules["known-upstream-issue"].matches(top["component_with_task_final_status_GH-12033"])
    assert not any(r.matches(top["hello_world"]) for r in rules.values())


def test_exclusion_scoped_to_one_variant_and_mode(tmp_path: Path, kfp_trees: Path, config) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "apiVersion: kfp-conformance/v1\nkind: CorpusExclusions\nrules:\n"
        "  - id: pvc-central-multi-user\n    match: {features: [pvc-create]}\n"
        "    variants: [central-driver]\n    modes: [multi-user]\n"
        "    reason: profile namespaces bind the PVC role to ml-pipeline, not the driver\n")
    scenarios = {s.name: s for s in corpus_scenarios(config, kfp_trees / "sidecar-plugin", exclusions=rules)}
    pvc = scenarios["corpus-parallel-for-mount-pvc"]
    assert pvc.skips == {"central-driver.multi-user": "profile namespaces bind the PVC role to ml-pipeline, "
                                                      "not the driver [pvc-central-multi-user]"}
    assert pvc.skip_reason("central-driver", "standalone") is None
    assert scenarios["corpus-modelcar"].skips == {}  # only the given file's rules apply


@pytest.mark.parametrize(("body", "message"), [
    ("rules: [{id: x, match: {files: ['*']}, reason: long enough reason}]", "apiVersion"),
    ("apiVersion: kfp-conformance/v1\nkind: CorpusExclusions\nrules:\n"
     "  - {id: gpu, match: {features: [gpu]}, reason: long enough reason}", "unknown 'gpu'"),
    ("apiVersion: kfp-conformance/v1\nkind: CorpusExclusions\nrules:\n"
     "  - {id: a, match: {files: ['*']}, variants: [sidecar], reason: long enough reason}", "unknown 'sidecar'"),
    ("apiVersion: kfp-conformance/v1\nkind: CorpusExclusions\nrules:\n"
     "  - {id: a, match: {files: ['*']}, reason: long enough reason}\n"
     "  - {id: a, match: {files: ['*']}, reason: long enough reason}", "duplicate rule id"),
    ("apiVersion: kfp-conformance/v1\nkind: CorpusExclusions\nrules:\n"
     "  - {id: a, match: {file: ['*']}, reason: long enough reason}", "Additional properties"),
    ("rules: [unclosed", "not valid YAML"),
])
def test_bad_exclusion_file_is_one_config_error(tmp_path: Path, config, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_exclusions(path, config=config)
    assert "\n" not in info.value.line() and str(path) in info.value.line()


# ------------------------------------------------------------------ coverage across variants


def test_coverage_lines_files_up_across_trees(kfp_trees: Path, config) -> None:
    coverage = corpus_coverage({v: kfp_trees / v for v in VARIANTS})
    names = {v: set().union(*(files_on_disk(kfp_trees / v, d) for d in FOLDER_DIRS.values())) for v in VARIANTS}
    everywhere = set().union(*names.values())
    for variant in VARIANTS:
        missing_files = {Path(next(e for e in coverage.rows[n].values() if e).path).name
                         for n in coverage.missing(variant)}
        assert missing_files == everywhere - names[variant], variant
    lacking = sorted(names["sidecar-plugin"] - names["central-driver"])
    assert lacking  # central-driver dropped some parallel_and_nested files

    findings = coverage.findings()
    missing = {Path(f.subject).name for f in findings if f.id == "corpus.missing-in-variant"}
    assert missing == set(lacking)
    moved = {f.subject for f in findings if f.id == "corpus.folder-differs"}
    assert f"{CORPUS_DIR}/valid/parallel_and_nested/loop_consume_upstream.yaml" in moved
    differs = {Path(f.subject).stem for f in findings if f.id == "corpus.content-differs"}
    for stem in differs:  # a content-differs finding is backed by a real difference on disk
        row = coverage.rows["corpus-" + stem.replace("_", "-")]
        assert len({hashlib.sha256(Path(e.file).read_bytes()).hexdigest() for e in row.values() if e}) > 1

    summary = coverage.summary(load_exclusions(config=config), config)
    assert summary["central-driver"]["pipelines"] == len(coverage.present("central-driver"))
    assert "corpus-modelcar" in summary["driver-pod"]["skipped_everywhere"]
    assert summary["sidecar-plugin"]["driver_outputs"]["condition"] > 0


# ------------------------------------------------------------------ the scenarios --corpus handler


def corpus_args(**kw) -> argparse.Namespace:
    base = {"corpus": True, "sources": None, "variant": None, "folder": [], "glob": None, "config": None,
            "format": "text"}
    base.update(kw)
    return argparse.Namespace(**base)


def test_main_corpus_lists_every_pipeline_with_counts(kfp_trees: Path, capsys) -> None:
    assert main_corpus(corpus_args(sources=str(kfp_trees))) == 0
    out = capsys.readouterr().out
    entries = load_corpus(kfp_trees / "sidecar-plugin")
    for e in entries:
        assert f"{e.path}  tags={e.folder},{Path(e.path).stem}" in out
    assert "critical: " in out and f"total: {len(entries)}" in out
    assert "skip=all: imports a model-car OCI image" in out
    assert "central-driver: " in out and "corpus.missing-in-variant" in out


def test_main_corpus_json_for_central_driver(kfp_trees: Path, capsys) -> None:
    assert main_corpus(corpus_args(sources=str(kfp_trees), variant="central-driver", format="json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"] == "central-driver"
    assert data["source"]["commit"].startswith("7a10d17ae")
    entries = load_corpus(kfp_trees / "central-driver")
    assert len(data["pipelines"]) == len(entries)
    assert data["counts"] == folder_counts(entries, load_exclusions())
    assert "parallel_and_nested" not in data["counts"]
    modelcar = next(p for p in data["pipelines"] if p["name"] == "corpus-modelcar")
    assert modelcar["skip_rules"][0]["id"] == "modelcar-oci-image"
    assert modelcar["skips"]["central-driver.tls"].endswith("[modelcar-oci-image]")


def test_main_corpus_invalid_folder_exits_1_with_findings(kfp_trees: Path, capsys) -> None:
    assert main_corpus(corpus_args(sources=str(kfp_trees), folder=["invalid"])) == 1
    out = capsys.readouterr().out
    assert out.count("error: corpus.parse-error") == 3


def test_main_corpus_missing_sources_dir_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        main_corpus(corpus_args(sources=str(tmp_path / "nope")))
    assert "is not a directory" in info.value.line() and "\n" not in info.value.line()
    with pytest.raises(HarnessError, match="unknown variant 'nope'"):
        main_corpus(corpus_args(sources=str(tmp_path), variant="nope"))


def test_main_corpus_variant_with_path_and_no_sources_skips_coverage_with_a_note(
        kfp_trees: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("KFPC_SOURCES", raising=False)
    args = corpus_args(variant=[f"central-driver={kfp_trees / 'central-driver'}"], folder=["E2EFailure"])
    assert main_corpus(args) == 0
    out = capsys.readouterr().out
    failing = len(files_on_disk(kfp_trees / "central-driver", "valid/failing"))
    assert "KFP corpus of central-driver" in out and f"failing: {failing} pipelines" in out
    assert "coverage not computed: pass --sources DIR" in out
    with pytest.raises(SourceError, match="no source for variant 'sidecar-plugin'"):
        main_corpus(corpus_args())


def test_corpus_reader_parses_shared_files_once_and_nothing_outlives_it(kfp_trees: Path, monkeypatch) -> None:
    """Issue 13: the parse memo lives on a CorpusReader made per listing or run, not in the process. One reader
    parses a file the trees share once; a new reader (or load_corpus without one) parses again; every entry
    gets its own copy of the parsed fields."""
    from harness.catalogue.corpus import CorpusReader
    from harness.catalogue.corpus import entry as entry_module

    parsed: list[str] = []
    real = entry_module._parse

    def counting(data: bytes, suffix: str):
        parsed.append(hashlib.sha256(data).hexdigest())
        return real(data, suffix)

    monkeypatch.setattr(entry_module, "_parse", counting)
    reader = CorpusReader()
    first = reader.corpus(kfp_trees / "driver-pod", folders=["critical"])
    second = reader.corpus(kfp_trees / "sidecar-plugin", folders=["critical"])
    contents = {(e.digest, Path(e.path).suffix) for e in first + second}
    shared = {e.digest for e in first} & {e.digest for e in second}
    assert shared and len(parsed) == len(contents) == len(set(parsed))
    parsed.clear()
    again = load_corpus(kfp_trees / "driver-pod", folders=["critical"])
    assert sorted(parsed) == sorted({e.digest for e in first})  # a new reader remembers nothing
    twin = next(e for e in second if e.digest in shared and e.arguments)
    mine = next(e for e in first if e.digest == twin.digest)
    mine.arguments["changed"] = True
    assert "changed" not in twin.arguments
    assert "changed" not in next(e for e in again if e.digest == twin.digest).arguments
