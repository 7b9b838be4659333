"""KFP's own E2E corpus as scenarios: the compiled pipelines under `test_data/sdk_compiled_pipelines/`.

KFP's CI runs these files on one driver variant at a time; the harness runs the same files on every
variant and compares them node by node, with cross-variant equality as the oracle. Modules:

- `entry`: `load_corpus(tree, folders=, glob=)` -> `CorpusEntry` per file (parse + validate against the
  KFP protos, once per content within one `CorpusReader`; a broken file is an entry with `error`, one `corpus.parse-error` finding, never a crash).
- `analysis`: components, images, kfp-kubernetes features, DSL constructs, driver outputs exercised,
  default (and deterministic generated) arguments.
- `exclusions`: `fixtures/corpus-exclusions.yaml`, declarative skip rules with reasons.
- `scenarios`: `corpus_scenarios(config, tree, ...)` (what the live plan calls) and `corpus_coverage(trees)`
  (which corpus files each variant's tree has).
(The `kfp-conformance scenarios --corpus` listing is a command: `harness.cli.corpus_listing`.)
"""

from __future__ import annotations

from harness.catalogue.corpus.analysis import (
    CONSTRUCTS,
    DRIVER_OUTPUTS,
    RUNTIME,
    generated_argument,
    known_features,
)
from harness.catalogue.corpus.entry import (
    ALL_FOLDERS,
    CORPUS_DIR,
    E2E_FOLDERS,
    TOP_LEVEL,
    CorpusEntry,
    CorpusReader,
    load_corpus,
    parse_folders,
    scenario_name,
)
from harness.catalogue.corpus.exclusions import (
    DEFAULT_EXCLUSIONS,
    ExclusionRule,
    load_exclusions,
    matching_rules,
    skips_for,
)
from harness.catalogue.corpus.scenarios import (
    Coverage,
    corpus_coverage,
    corpus_scenarios,
    parse_findings,
    scenario_from_entry,
)

__all__ = [
    "ALL_FOLDERS", "CONSTRUCTS", "CORPUS_DIR", "DEFAULT_EXCLUSIONS", "DRIVER_OUTPUTS", "E2E_FOLDERS", "RUNTIME",
    "TOP_LEVEL", "Coverage", "CorpusEntry", "CorpusReader", "ExclusionRule", "corpus_coverage", "corpus_scenarios", "generated_argument", "known_features", "load_corpus", "load_exclusions",
    "matching_rules", "parse_findings", "parse_folders", "scenario_from_entry", "scenario_name", "skips_for",
]
