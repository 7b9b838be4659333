"""Declarative exclusions: which corpus pipelines cannot run on which `<variant>.<mode>`, and why.

The rules live in `fixtures/corpus-exclusions.yaml` (schema `harness/schemas/corpus-exclusions.schema.json`).
A matched pipeline is reported as skipped with the rule's reason, never dropped.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from harness import SCHEMAS_DIR
from harness.catalogue.corpus.analysis import CONSTRUCTS, known_features
from harness.catalogue.corpus.entry import CORPUS_DIR, CorpusEntry, path_matches
from harness.config import REPO_ROOT, Config
from harness.config.loader import load_validated
from harness.errors import ConfigError

DEFAULT_EXCLUSIONS = REPO_ROOT / "fixtures" / "corpus-exclusions.yaml"
EXCLUSIONS_SCHEMA = SCHEMAS_DIR / "corpus-exclusions.schema.json"


@dataclass(frozen=True)
class ExclusionRule:
    """Pipelines matching every given `match` key (any pattern within a key) cannot run on `variants` x
    `modes` ("*" = all). Patterns are globs; `files` matches like `--glob`."""

    id: str
    reason: str
    variants: tuple[str, ...] = ("*",)
    modes: tuple[str, ...] = ("*",)
    files: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    importer_uris: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    constructs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    def matches(self, entry: CorpusEntry) -> bool:
        if entry.error:
            return False
        rel = PurePosixPath(entry.path).relative_to(CORPUS_DIR).as_posix()
        checks = [
            not self.files or any(path_matches(p, rel) for p in self.files),
            _any_glob(self.images, entry.images),
            _any_glob(self.importer_uris, entry.importer_uris),
            _any_glob(self.features, entry.features),
            _any_glob(self.constructs, entry.constructs),
            _any_glob(self.secrets, entry.secrets),
        ]
        return all(checks)

    def applies_to(self, variant: str, mode: str) -> bool:
        return ("*" in self.variants or variant in self.variants) and ("*" in self.modes or mode in self.modes)

    @property
    def scope(self) -> str:
        """`all`, or `<variants>.<modes>` for display."""
        if self.variants == ("*",) and self.modes == ("*",):
            return "all"
        return f"{'|'.join(self.variants)}.{'|'.join(self.modes)}"


def _any_glob(patterns: tuple[str, ...], values: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(v, p) for p in patterns for v in values)


# cached: the package's own schema file, constant for the process like an import; no run data
@cache
def _exclusions_schema() -> dict[str, Any]:
    return json.loads(EXCLUSIONS_SCHEMA.read_text())


def load_exclusions(path: str | os.PathLike[str] | None = None, *, config: Config | None = None
                    ) -> tuple[ExclusionRule, ...]:
    """Read and validate the exclusion file; any problem is one ConfigError naming the rule and field."""
    file = Path(path or DEFAULT_EXCLUSIONS)  # the CLI passes --exclusions or KFPC_CORPUS_EXCLUSIONS
    raw = load_validated(file, _exclusions_schema(), missing="corpus exclusion file not found",
                         fix_missing="pass --exclusions PATH or set KFPC_CORPUS_EXCLUSIONS")
    rules: list[ExclusionRule] = []
    vocab = {"features": known_features(), "constructs": set(CONSTRUCTS)}
    for index, body in enumerate(raw["rules"]):
        where = f"rules/{index} ({body['id']})"
        if body["id"] in (r.id for r in rules):
            raise ConfigError(str(file), f"{where}: duplicate rule id", "give every rule its own id")
        match = body["match"]
        for key, known in vocab.items():
            unknown = [v for v in match.get(key, []) if not any(fnmatch.fnmatchcase(k, v) for k in known)]
            if unknown:
                raise ConfigError(str(file), f"{where}/match/{key}: unknown {', '.join(map(repr, unknown))}",
                                  f"use one of {', '.join(sorted(known))}")
        if config is not None:
            for key, known in (("variants", config.variants), ("modes", config.modes)):
                unknown = [v for v in body.get(key, ["*"]) if v != "*" and v not in known]
                if unknown:
                    raise ConfigError(str(file), f"{where}/{key}: unknown {', '.join(map(repr, unknown))}",
                                      f"use * or one of {', '.join(known)}")
        rules.append(ExclusionRule(
            id=body["id"], reason=" ".join(body["reason"].split()),
            variants=tuple(body.get("variants", ["*"])), modes=tuple(body.get("modes", ["*"])),
            files=tuple(match.get("files", [])), images=tuple(match.get("images", [])),
            importer_uris=tuple(match.get("importer_uris", [])), features=tuple(match.get("features", [])),
            constructs=tuple(match.get("constructs", [])), secrets=tuple(match.get("secrets", [])),
        ))
    return tuple(rules)


def matching_rules(entry: CorpusEntry, rules: Iterable[ExclusionRule]) -> list[ExclusionRule]:
    return [rule for rule in rules if rule.matches(entry)]


def skips_for(entry: CorpusEntry, rules: Iterable[ExclusionRule], config: Config) -> dict[str, str]:
    """`<variant>.<mode>` -> reason for every pair of the config a rule excludes (all reasons joined)."""
    matched = matching_rules(entry, rules)
    skips: dict[str, str] = {}
    for variant in config.variants:
        for mode in config.modes:
            reasons = [f"{r.reason} [{r.id}]" for r in matched if r.applies_to(variant, mode)]
            if reasons:
                skips[f"{variant}.{mode}"] = "; ".join(reasons)
    return skips


