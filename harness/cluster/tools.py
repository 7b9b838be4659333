"""Opt-in download of the pinned `kind` release (`run --fetch-tools`), verified by its SHA-256 checksum.

kind publishes `kind-<os>-<arch>` and `kind-<os>-<arch>.sha256sum` for every release. The expected digest
is the one pinned in the config (`live.kind_sha256`, per os-arch) when present, else the release's own
`.sha256sum` file; a mismatch deletes the download and stops with one line. Never runs unless asked.
"""

from __future__ import annotations

import hashlib
import os
import platform
import stat
from pathlib import Path

import requests

from harness.errors import MissingBinaryError

DEFAULT_BASE_URL = "https://kind.sigs.k8s.io/dl"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def platform_name() -> str:
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    if system not in ("linux", "darwin") or arch is None:
        raise MissingBinaryError(f"no kind release for {platform.system()} {platform.machine()}",
                                 "install kind yourself: https://kind.sigs.k8s.io/docs/user/quick-start/")
    return f"{system}-{arch}"


def fetch_kind(version: str, bin_dir: Path, *, pinned_sha256: dict[str, str] | None = None,
               base_url: str | None = None, timeout: float = 120) -> Path:
    """Download kind `version` into bin_dir/kind-<version>/kind (once) after checking its digest; returns
    the executable's path (put its directory first on PATH)."""
    name = platform_name()
    target = bin_dir / f"kind-{version}" / "kind"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    url = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{version}/kind-{name}"
    fix = "check the network, or install kind yourself: https://kind.sigs.k8s.io/docs/user/quick-start/"
    try:
        expected = (pinned_sha256 or {}).get(name)
        if not expected:
            answer = requests.get(f"{url}.sha256sum", timeout=timeout)
            answer.raise_for_status()
            expected = answer.text.split()[0]
        body = requests.get(url, timeout=timeout)
        body.raise_for_status()
    except requests.RequestException as exc:
        raise MissingBinaryError(f"cannot download kind {version} from {url}: {type(exc).__name__}", fix) from None
    actual = hashlib.sha256(body.content).hexdigest()
    if actual != expected.lower():
        raise MissingBinaryError(f"kind {version} from {url} has SHA-256 {actual[:16]}…, expected {expected[:16]}… "
                                 "(download discarded)", fix)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(body.content)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    return target
