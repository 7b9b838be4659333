"""`kfp-conformance images build`: build a variant's KFP images from its tree's Dockerfiles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.boundary.proc import Runner
from harness.cli.common import add_selection_args, resolve_selection
from harness.cli.progress import add_progress_args, reporter
from harness.errors import HarnessError
from harness.plan.build import PlanOptions, local_tag
from harness.plan.images import build_commands, build_images, check_dockerfiles, load_image_builds


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("images", help="build KFP images from a variant's tree (docker)")
    actions = parser.add_subparsers(dest="images_action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build (and optionally save) the images of one variant")
    add_selection_args(build)
    build.add_argument("--images-file", type=Path, help="image list (default fixtures/images.yaml)")
    build.add_argument("--only", action="append", default=[], help="build only these images (e.g. driver)")
    build.add_argument("--registry", help="registry prefix (default from the image list: kind-registry:5000)")
    build.add_argument("--tag", help="image tag (default the variant's own tag, as `run` expects it: its name, "
                                     "an instance NAME:LABEL as NAME-LABEL; see --local-tag of run)")
    build.add_argument("--archive-dir", type=Path, help="also `docker save` each image there (for kind load)")
    build.add_argument("--plan", action="store_true", help="print the docker commands, run nothing")
    add_progress_args(build)
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    if len(args.variant) != 1:
        raise HarnessError("images build takes exactly one --variant NAME[=SOURCE]",
                           "run it once per variant (each tree builds its own images)")
    selection = resolve_selection(args)
    name = selection.variants[0].name
    tree = Path(selection.sources[name].path)
    # the tag `run` looks for by default (harness.plan.build.DEFAULT_LOCAL_TAG): builds of several variants share one
    # registry, so each gets its own tag
    tag = args.tag or local_tag(PlanOptions(run_id=""), name, "")
    builds = load_image_builds(args.images_file, registry=args.registry, tag=tag, only=args.only)
    if args.plan:
        check_dockerfiles(tree, builds)
        for argv in build_commands(tree, builds, archive_dir=args.archive_dir):
            print(" ".join(argv))
        return 0
    from harness.cli.run import check_docker

    check_dockerfiles(tree, builds)  # the input first, then the environment
    runner = Runner()
    check_docker(runner, "start the Docker daemon (images build runs `docker build`), or add --plan to print "
                         "the commands")
    built = build_images(tree, builds, runner=runner, archive_dir=args.archive_dir, progress=reporter(args))
    print(f"images: built {len(built)} image(s) for {name}: {', '.join(built)}", file=sys.stderr)
    return 0
