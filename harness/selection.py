"""Which variants, modes and trees a run is about: a `SelectionRequest` (plain values, no argparse) resolved
into a frozen `Selection` before any work starts.

`NAME[:LABEL][=SOURCE]` picks a variant and optionally its source (path or git URL@REF); `NAME:LABEL` is an
instance: another build of the config entry NAME (e.g. `central-driver:base` and `central-driver:pr`), named
so in every output and taking its behaviour from NAME. The CLI and the pytest plugin build the request from
their options and the environment; nothing here reads either.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config import Config, load_config
from harness.errors import HarnessError, SourceError
from harness.models import Mode, Source, Variant, split_instance
from harness.render.kustomize import Renderer
from harness.render.sources import resolve_source


def choose_baseline(config: Config, names: list[str]) -> str:
    """The one baseline rule of every tier: the config's baseline if among `names`, else an instance labelled
    `base` (a pull request's base build), else the first name."""
    if config.baseline in names:
        return config.baseline
    return next((n for n in names if split_instance(n)[1] == "base"), names[0])


@dataclass(frozen=True)
class SelectionRequest:
    """What the user asked for. `cache_dir` is required: the caller decides the default (the CLI reads
    KFPC_CACHE_DIR / XDG_CACHE_HOME)."""

    cache_dir: Path
    variants: tuple[str, ...] = ()  # NAME[:LABEL][=SOURCE]; empty: every variant in the config
    modes: tuple[str, ...] = ()  # empty: every mode
    config: Path | None = None  # None: fixtures/variants.yaml
    sources: Path | None = None  # one tree per variant name
    remote_bases: Path | None = None  # offline mirror of kustomize remote bases; None: online
    out: Path = Path("out")
    resolve_sources: bool = True
    cache_dir_flag: str = "--cache-dir"  # how the user gave the cache dir, for error lines


@dataclass(frozen=True)
class Selection:
    config: Config
    variants: tuple[Variant, ...]
    modes: tuple[Mode, ...]
    sources: Mapping[str, Source]
    renderer: Renderer
    out_dir: Path
    cache_dir: Path

    @property
    def baseline(self) -> str:
        return choose_baseline(self.config, [v.name for v in self.variants])

    def with_out_dir(self, out_dir: Path) -> Selection:
        """The same selection writing elsewhere (e.g. `out/<run-id>/`)."""
        return dataclasses.replace(self, out_dir=Path(out_dir))


def check_writable_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """`path` is (or can be made as) a directory this process may write: checked before any work starts, so
    a bad --out/--cache-dir/--compile-to is one line, not a traceback half-way through a run."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise HarnessError(f"{flag} {path} is a file, not a directory", f"pass a directory to {flag}")
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise HarnessError(f"{flag} {path}: {existing} is a file, so the directory cannot be made",
                           f"pass a directory to {flag}")
    if not _can_write(existing):
        raise HarnessError(f"{flag} {path} is not writable ({existing} denies write access)",
                           f"pass a directory you can write to {flag}, or fix its permissions")
    return target


def _can_write(directory: Path) -> bool:
    """A real probe (os.access is always yes for root, and says nothing about read-only mounts)."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".kfpc-probe-"):
            return True
    except OSError:
        return False


def parse_variant_args(values: list[str] | tuple[str, ...], config: Config) -> list[tuple[str, str]]:
    """(name, source spec) per `NAME[:LABEL][=SOURCE]`; the name is split at the first '=' (a git URL's ':'
    comes after it)."""
    chosen: list[tuple[str, str]] = []
    for value in values or list(config.variants):
        name, _, spec = value.partition("=")
        config.variant(name)  # raises with the list of known variants, or the label's rule
        if name in (n for n, _ in chosen):
            entry = split_instance(name)[0]
            raise HarnessError(f"variant {name!r} given twice",
                               f"pass each --variant once; for two builds of one variant label them, e.g. "
                               f"--variant {entry}:base=SOURCE --variant {entry}:pr=SOURCE")
        chosen.append((name, spec))
    return chosen


def resolve_selection(request: SelectionRequest) -> Selection:
    """Validate everything before any work starts: config, variants, modes, sources, mirror, kubectl."""
    config = load_config(request.config)
    chosen = parse_variant_args(request.variants, config)
    config = config.with_instances([name for name, _ in chosen])
    modes = tuple(config.mode(m) for m in (request.modes or list(config.modes)))
    cache_dir = check_writable_dir(request.cache_dir, request.cache_dir_flag)
    check_writable_dir(request.out, "--out")
    sources_dir = request.sources
    if sources_dir is not None and not sources_dir.is_dir():
        raise SourceError(f"--sources {sources_dir} is not a directory",
                          "point --sources (or KFPC_SOURCES) at a directory with one KFP tree per variant")
    sources: dict[str, Source] = {}
    if request.resolve_sources:
        for name, spec in chosen:
            variant = config.variant(name)
            # an instance without a source of its own builds the entry's source (or --sources DIR/NAME)
            sources[name] = resolve_source(spec or variant.source, name, sources_dir=sources_dir,
                                           cache_dir=cache_dir, tree=variant.entry)
    renderer = Renderer(mirror=request.remote_bases, cache_dir=cache_dir)
    return Selection(config=config, variants=tuple(config.variant(n) for n, _ in chosen), modes=modes,
                     sources=sources, renderer=renderer, out_dir=Path(request.out), cache_dir=cache_dir)
