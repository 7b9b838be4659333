"""What a mode's install reads besides the KFP renders: files of the KFP tree and the prerequisites' URLs.

KFP CI (`.github/resources/scripts/deploy-kfp.sh`, kubeflow/pipelines@81fc181b1) applies, besides the
tree's overlays: cert-manager's release manifest, three kubeflow/manifests Istio kustomizations, the tree's
metacontroller CRD, the kubeflow/manifests Profile controller overlay, and four files from the tree's
`test_data/kubernetes/seaweedfs/`. The tree's files are read here; every URL is looked up in the offline
mirror (`--remote-bases`, laid out as `<host>/<org>/<repo>/<ref>/<path>` for a kustomization URL with
`?ref=`, and `<host>/<path>` for a plain file URL such as a release asset) and, when present there,
rendered now, so the plan applies a file with a digest instead of fetching at install time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness.config.live import LiveSettings
from harness.models import Mode


@dataclass(frozen=True)
class Fetched:
    """One prerequisite URL, resolved in the offline mirror and rendered (kustomize) or read (a file)."""

    url: str
    mirror_path: str  # relative to the mirror, shown in the plan
    text: str


def mirror_location(url: str) -> str:
    """Where `url` lives in the mirror: `github.com/ORG/REPO/REF/PATH` for `https://github.com/ORG/REPO/PATH?ref=REF`
    (kustomize's remote-target form), else `HOST/PATH`."""
    parts = urlsplit(url)
    ref = parse_qs(parts.query).get("ref", [""])[0]
    segments = [s for s in parts.path.split("/") if s]
    if ref and len(segments) >= 2:
        return "/".join([parts.netloc, segments[0], segments[1].removesuffix(".git"), ref, *segments[2:]])
    return "/".join([parts.netloc, *segments])


def prerequisite_urls(mode: Mode, settings: LiveSettings) -> list[str]:
    """Every URL the mode's prerequisites apply, with `{ref}` filled in."""
    urls: list[str] = []
    if "cert-manager" in mode.prerequisites:
        urls.append(settings.cert_manager_url)
    if "istio" in mode.prerequisites:
        urls += [settings.url(t) for t in settings.istio_kustomizations]
    if "profile-controller" in mode.prerequisites:
        urls.append(settings.url(settings.profile_controller_kustomization))
    return urls


def tree_files(tree: Path, mode: Mode, settings: LiveSettings) -> dict[str, str]:
    """The KFP tree's own files a mode's prerequisites apply (path in the tree -> text); absent ones are left out
    (the plan says what it does instead)."""
    wanted: list[str] = []
    if "metacontroller-crd" in mode.prerequisites:
        wanted.append(settings.metacontroller_crd)
    if "test-profile" in mode.prerequisites:
        wanted += list(settings.test_profile_files)
    return {path: (tree / path).read_text() for path in wanted if (tree / path).is_file()}


def offline_prerequisites(mode: Mode, settings: LiveSettings, mirror: Path | None,
                          render_directory: Callable[[Path], str]) -> dict[str, Fetched]:
    """URL -> its rendered copy from the mirror, for every prerequisite URL the mirror holds (none without one).
    A mirrored kustomization is rendered by `render_directory` (the run's Renderer, whose cache keys it on the
    files it reads)."""
    if mirror is None:
        return {}
    found: dict[str, Fetched] = {}
    for url in prerequisite_urls(mode, settings):
        relative = mirror_location(url)
        path = Path(mirror) / relative
        if path.is_file():
            found[url] = Fetched(url, relative, path.read_text())
        elif path.is_dir():
            found[url] = Fetched(url, relative, render_directory(path))
    return found
