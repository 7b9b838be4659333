"""Arguments shared by every command that selects variants and modes, and their resolution.

`--variant NAME[=SOURCE]` (repeatable) picks variants and optionally their source (path or git URL@REF);
`--sources DIR` (env KFPC_SOURCES) gives one tree per variant; `--remote-bases DIR` (env
KFPC_REMOTE_BASES) is the offline mirror of kustomize remote bases.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from harness.config import Config, load_config
from harness.errors import HarnessError, SourceError
from harness.models import Mode, Source, Variant
from harness.render import Renderer
from harness.sources import resolve_source


def default_cache_dir() -> Path:
    if os.environ.get("KFPC_CACHE_DIR"):
        return Path(os.environ["KFPC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-conformance"


def add_selection_args(parser: argparse.ArgumentParser, *, out_default: str = "out") -> None:
    parser.add_argument("--config", help="variants/modes catalogue (default fixtures/variants.yaml, env KFPC_CONFIG)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[=SOURCE]",
                        help="variant to include, optionally with its source (path or git URL@REF); repeatable; "
                             "default: every variant in the config")
    parser.add_argument("--sources", default=os.environ.get("KFPC_SOURCES"), metavar="DIR",
                        help="directory holding one KFP tree per variant name (env KFPC_SOURCES)")
    parser.add_argument("--mode", action="append", default=[], metavar="MODE",
                        help="install mode (standalone, multi-user, tls); repeatable; default: every mode")
    parser.add_argument("--remote-bases", default=os.environ.get("KFPC_REMOTE_BASES"), metavar="DIR",
                        help="offline mirror of kustomize remote bases (env KFPC_REMOTE_BASES); omit to fetch online")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="clones and renders cache (env KFPC_CACHE_DIR, default ~/.cache/kfp-conformance)")
    parser.add_argument("--out", default=out_default, metavar="DIR", help=f"output directory (default {out_default})")


@dataclass
class Selection:
    config: Config
    variants: list[Variant]
    modes: list[Mode]
    sources: dict[str, Source]
    renderer: Renderer
    out_dir: Path
    cache_dir: Path

    @property
    def baseline(self) -> str:
        """The config's baseline if selected, else the first selected variant."""
        names = [v.name for v in self.variants]
        return self.config.baseline if self.config.baseline in names else names[0]


def parse_variant_args(values: list[str], config: Config) -> list[tuple[str, str]]:
    chosen: list[tuple[str, str]] = []
    for value in values or list(config.variants):
        name, _, spec = value.partition("=")
        config.variant(name)  # raises with the list of known variants
        if name in (n for n, _ in chosen):
            raise HarnessError(f"variant {name!r} given twice", "pass each --variant once")
        chosen.append((name, spec))
    return chosen


def resolve_selection(args: argparse.Namespace, *, resolve_sources: bool = True) -> Selection:
    """Validate everything before any work starts: config, variants, modes, sources, mirror, kubectl."""
    config = load_config(args.config)
    chosen = parse_variant_args(args.variant, config)
    modes = [config.mode(m) for m in (args.mode or list(config.modes))]
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    sources_dir = Path(args.sources) if args.sources else None
    if sources_dir is not None and not sources_dir.is_dir():
        raise SourceError(f"--sources {sources_dir} is not a directory",
                          "point --sources (or KFPC_SOURCES) at a directory with one KFP tree per variant")
    sources: dict[str, Source] = {}
    if resolve_sources:
        for name, spec in chosen:
            spec = spec or config.variant(name).source
            sources[name] = resolve_source(spec, name, sources_dir=sources_dir, cache_dir=cache_dir)
    renderer = Renderer(mirror=Path(args.remote_bases) if args.remote_bases else None, cache_dir=cache_dir)
    return Selection(config=config, variants=[config.variant(n) for n, _ in chosen], modes=modes,
                     sources=sources, renderer=renderer, out_dir=Path(args.out), cache_dir=cache_dir)
