"""Build a variant's KFP images from its own tree with the tree's own Dockerfiles (or take prebuilt tags).

The list of images and Dockerfiles is data (`fixtures/images.yaml`). Builds go through the `docker` CLI
at the process boundary; each image can be saved as an archive that `kind load image-archive` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.boundary.proc import Runner
from harness.config import REPO_ROOT
from harness.config.loader import load_validated
from harness.errors import HarnessError
from harness.progress import Progress, silent

DEFAULT_IMAGES_FILE = REPO_ROOT / "fixtures" / "images.yaml"
# The live plan builds the catalogue's component image (harness.models.COMPONENT_IMAGE) from this Dockerfile
# and side-loads it into every cluster.
COMPONENT_IMAGE_DOCKERFILE = REPO_ROOT / "fixtures" / "images" / "component" / "Dockerfile"
BUILD_TIMEOUT = 1800  # one `docker build` of a KFP Go image from scratch takes minutes
_SCHEMA = {
    "type": "object",
    "required": ["registry", "tag", "images"],
    "additionalProperties": False,
    "properties": {
        "registry": {"type": "string", "minLength": 1},
        "tag": {"type": "string", "minLength": 1},
        "images": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "dockerfile"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]*$"},
                           "dockerfile": {"type": "string"}, "context": {"type": "string"}}}},
    },
}


@dataclass(frozen=True)
class ImageBuild:
    name: str
    dockerfile: str
    context: str
    reference: str  # registry/name:tag


def load_image_builds(path: Path | None = None, *, registry: str | None = None, tag: str | None = None,
                      only: list[str] | None = None) -> list[ImageBuild]:
    file = Path(path or DEFAULT_IMAGES_FILE)
    raw = load_validated(file, _SCHEMA, missing="image list not found",
                         fix_missing="pass --images-file PATH (default fixtures/images.yaml)")
    registry, tag = registry or raw["registry"], tag or raw["tag"]
    builds = [ImageBuild(i["name"], i["dockerfile"], i.get("context", "."), f"{registry}/{i['name']}:{tag}")
              for i in raw["images"]]
    if only:
        unknown = sorted(set(only) - {b.name for b in builds})
        if unknown:
            raise HarnessError(f"unknown image(s) {', '.join(unknown)}",
                               f"choose from {', '.join(b.name for b in builds)}")
        builds = [b for b in builds if b.name in only]
    return builds


def build_commands(tree: Path, builds: list[ImageBuild], *, archive_dir: Path | None = None) -> list[list[str]]:
    """The docker commands that build (and optionally save) each image from the tree. Pure."""
    commands: list[list[str]] = []
    for build in builds:
        commands.append(["docker", "build", "-f", str(tree / build.dockerfile), "-t", build.reference,
                         str(tree / build.context)])
        if archive_dir is not None:
            commands.append(["docker", "save", "-o", str(archive_dir / f"{build.name}.tar"), build.reference])
    return commands


def check_dockerfiles(tree: Path, builds: list[ImageBuild]) -> None:
    missing = [b.dockerfile for b in builds if not (tree / b.dockerfile).is_file()]
    if missing:
        raise HarnessError(f"{tree} has no {', '.join(missing)}",
                           "build from a full KFP checkout (the static data trees hold no Dockerfiles), "
                           "or pass prebuilt tags with --image")


def build_images(tree: Path, builds: list[ImageBuild], *, runner: Runner, archive_dir: Path | None = None,
                 timeout: float = BUILD_TIMEOUT, progress: Progress = silent) -> list[str]:
    check_dockerfiles(tree, builds)
    if archive_dir is not None:
        archive_dir.mkdir(parents=True, exist_ok=True)
    commands = build_commands(tree, builds, archive_dir=archive_dir)
    for number, argv in enumerate(commands, 1):
        progress(f"docker {argv[1]} {number}/{len(commands)}: {argv[-1] if argv[1] == 'save' else argv[5]}")
        runner.run(argv, timeout=timeout, fix="see the docker output above; retry with --no-cache if a layer is stale")
    return [b.reference for b in builds]
