"""Resolve a KFP source tree: a local path, a git URL with a ref, or `<sources dir>/<variant>`.

The commit of every source is recorded in every output. Git URLs are cloned into a cache (one shallow
checkout per URL and ref) and never touch the user's own checkouts.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.boundary.proc import Runner
from harness.errors import CommandFailedError, CommandTimeoutError, SourceError
from harness.manifests.yamlload import load as load_yaml
from harness.models import Source

_GIT_URL = re.compile(r"^(https?://|ssh://|git://|file://|git@)")


def parse_git_spec(spec: str) -> tuple[str, str] | None:
    """`URL@REF` or `URL#REF` -> (url, ref); None if spec is not a git URL."""
    if not _GIT_URL.match(spec):
        return None
    if "#" in spec:
        url, ref = spec.rsplit("#", 1)
        return url, ref
    prefix = "git@" if spec.startswith("git@") else ""
    rest = spec[len(prefix):]
    if "@" not in rest.split("://", 1)[-1]:
        raise SourceError(f"git source {spec!r} has no ref", "write it as URL@REF, e.g. https://github.com/kubeflow/pipelines@master")
    url, ref = rest.rsplit("@", 1)
    if not ref:
        raise SourceError(f"git source {spec!r} has an empty ref", "write it as URL@REF")
    return prefix + url, ref


def resolve_source(
    spec: str,
    variant: str,
    *,
    sources_dir: Path | None = None,
    cache_dir: Path,
    runner: Runner | None = None,
    tree: str | None = None,
) -> Source:
    """`tree` is the directory name under `sources_dir` (an instance `NAME:LABEL` uses its entry's, NAME)."""
    runner = runner or Runner()
    if not spec:
        if sources_dir is None:
            raise SourceError(f"no source for variant {variant!r}",
                              f"pass --variant {variant}=PATH_OR_GIT_URL@REF, or --sources DIR (env KFPC_SOURCES)")
        folder = Path(sources_dir) / (tree or variant)
        if not folder.is_dir():
            raise SourceError(f"{folder} does not exist (variant {variant!r} under --sources {sources_dir})",
                              f"add a {tree or variant}/ tree to that directory or pass --variant {variant}=PATH")
        return _local(folder, variant, f"sources-dir:{sources_dir}", runner)
    git = parse_git_spec(spec)
    if git:
        return _clone(git[0], git[1], variant, cache_dir, runner)
    local = Path(spec).expanduser()
    if not local.is_dir():
        raise SourceError(f"source path {spec} for variant {variant!r} does not exist",
                          "point --variant NAME=PATH at a KFP checkout")
    return _local(local, variant, f"path:{local}", runner)


def _check_tree(tree: Path, variant: str) -> None:
    if not (tree / "manifests" / "kustomize").is_dir():
        raise SourceError(f"{tree} is not a KFP tree (no manifests/kustomize) for variant {variant!r}",
                          "point the source at the root of a kubeflow/pipelines checkout")


def _local(tree: Path, variant: str, origin: str, runner: Runner) -> Source:
    tree = tree.resolve()
    _check_tree(tree, variant)
    commit, ref, repository, dirty = "", "", "", None
    if (tree / ".git").exists():
        commit = runner.run(["git", "-C", str(tree), "rev-parse", "HEAD"], timeout=30).stdout.strip()
        ref = runner.run(["git", "-C", str(tree), "rev-parse", "--abbrev-ref", "HEAD"], timeout=30).stdout.strip()
        status = runner.run(["git", "-C", str(tree), "status", "--porcelain"], timeout=60).stdout
        dirty = bool(status.strip())
        remote = runner.run(["git", "-C", str(tree), "remote", "get-url", "origin"], timeout=30, check=False)
        repository = remote.stdout.strip() if remote.returncode == 0 else ""
    elif (tree / "SOURCE.yaml").is_file():
        # Exported trees (like ../shared/kfp-trees) carry their provenance in SOURCE.yaml.
        meta = _source_yaml(tree / "SOURCE.yaml", variant)
        commit, ref, repository = str(meta.get("commit", "")), str(meta.get("ref", "")), str(meta.get("repository", ""))
    return Source(variant=variant, path=str(tree), origin=origin, commit=commit or "unknown", ref=ref,
                  repository=repository, dirty=dirty)


def _source_yaml(path: Path, variant: str) -> dict[str, Any]:
    """An exported tree's provenance: a mapping whose commit/ref/repository are strings (the commit is
    recorded in every output, so a garbled one must stop the run, not be written everywhere)."""
    fix = f"fix {path} (commit: <sha>, ref: <branch>, repository: <url>) or delete it"
    try:
        meta = load_yaml(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path} of variant {variant!r} is not valid YAML: {first}", fix) from None
    if not isinstance(meta, dict):
        raise SourceError(f"{path} of variant {variant!r} is a {type(meta).__name__}, not a mapping", fix)
    for key in ("commit", "ref", "repository"):
        value = meta.get(key)
        if value is not None and not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SourceError(f"{path} of variant {variant!r}: {key} is not a string", fix)
    commit = str(meta.get("commit") or "")
    if commit and not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
        raise SourceError(f"{path} of variant {variant!r}: commit {commit[:80]!r} is not a git commit id", fix)
    return meta


def _clone(url: str, ref: str, variant: str, cache_dir: Path, runner: Runner) -> Source:
    key = hashlib.sha256(f"{url}@{ref}".encode()).hexdigest()[:16]
    dest = Path(cache_dir) / "git" / key
    fix = (f"check the URL and the ref {ref!r} (and the network), or clone it yourself and pass "
           f"--variant {variant}=PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # one writer per clone: xdist workers and parallel CI jobs share the cache (a second `git init` or a
    # checkout racing a fetch would corrupt it)
    with FileLock(str(dest) + ".lock"):
        try:
            if not (dest / ".git").exists():
                dest.mkdir(parents=True, exist_ok=True)
                runner.run(["git", "init", "-q", str(dest)], timeout=30)
                runner.run(["git", "-C", str(dest), "remote", "add", "origin", url], timeout=30)
            runner.run(["git", "-C", str(dest), "fetch", "-q", "--depth", "1", "origin", ref], timeout=600, fix=fix)
            runner.run(["git", "-C", str(dest), "checkout", "-q", "--force", "--detach", "FETCH_HEAD"], timeout=120)
        except (CommandFailedError, CommandTimeoutError) as exc:
            raise SourceError(f"cannot fetch {url} at {ref!r}: {exc.problem}", fix) from None
        commit = runner.run(["git", "-C", str(dest), "rev-parse", "HEAD"], timeout=30).stdout.strip()
    _check_tree(dest, variant)
    return Source(variant=variant, path=str(dest.resolve()), origin=f"git:{url}@{ref}", commit=commit, ref=ref,
                  repository=url, dirty=False)
