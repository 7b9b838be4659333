"""Static RBAC vs the real authorizer, per ServiceAccount: install each variant x mode on a fresh local control
plane (harness.cluster.controlplane), ask the same questions to harness.rbac.evaluator and to kube-apiserver
(SubjectAccessReview) and print the agreement. Exit 1 if any answer disagrees.

  .venv/bin/python scripts/controlplane_rbac.py [--variant NAME]... [--mode MODE]... [--json FILE]

Needs the control-plane binaries (bash scripts/controlplane-build.sh), KFPC_SOURCES and KFPC_REMOTE_BASES.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.boundary.kube import Kube  # noqa: E402
from harness.boundary.proc import Runner  # noqa: E402
from harness.cli.common import add_selection_args, resolve_selection  # noqa: E402
from harness.cluster.controlplane import ControlPlaneProvider  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.live.controlplane_install import install_on_controlplane, offline_step  # noqa: E402
from harness.live.install import INSTALL_PHASES, Installer  # noqa: E402
from harness.live.rbac_agreement import agreement, questions, summary_lines  # noqa: E402
from harness.live.session import LiveOptions, make_plan, write_plan  # noqa: E402
from harness.models import Identity  # noqa: E402
from harness.rbac.evaluator import index_manifests  # noqa: E402


def applied_objects(pair, out: Path, mirror: Path, runner: Runner) -> list[dict]:
    """Every object the install applied, in every phase (prerequisites and the profile phase included):
    the static evaluator must see what the apiserver holds."""
    objects: list[dict] = []
    for planned in pair.phase_steps(*INSTALL_PHASES):
        if planned.action != "apply":
            continue
        if planned.manifest:
            text = (out / planned.manifest).read_text()
        else:
            step, _ = offline_step(planned, mirror)
            flag = next(a for a in step.argv if a in ("-k", "-f"))
            target = step.argv[step.argv.index(flag) + 1]
            text = runner.run(["kubectl", "kustomize", target], timeout=120).stdout if flag == "-k" \
                else Path(target).read_text()
        objects.extend(d for d in yaml.safe_load_all(text) if isinstance(d, dict))
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_selection_args(parser)
    parser.add_argument("--json", metavar="FILE", help="write every answer and disagreement as JSON")
    args = parser.parse_args()
    args.out = tempfile.mkdtemp(prefix="kfpc-cp-rbac-")
    try:
        selection = resolve_selection(args)
    except HarnessError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    if selection.renderer.mirror is None:
        print("--remote-bases (or KFPC_REMOTE_BASES) is required: the prerequisites come from the offline mirror",
              file=sys.stderr)
        return 2
    provider = ControlPlaneProvider(env=dict(os.environ), progress=lambda line: print(line, file=sys.stderr))
    report: dict[str, dict] = {}
    disagreements = 0
    for variant in selection.variants:
        for mode in selection.modes:
            label = f"{variant.name}.{mode.name}"
            out = Path(args.out) / label
            with provider.cluster(f"kfpc-cp-rbac-{variant.name[:8]}-{mode.name[:5]}") as plane:
                one = type(selection)(**{**selection.__dict__, "variants": [variant], "modes": [mode], "out_dir": out})
                options = LiveOptions(run_id="rbac", provider="existing",
                                      driver_images={variant.name: f"kind-registry:5000/driver:{variant.name}"})
                plan = make_plan(one, [], options, plane.handle())
                write_plan(plan, out)
                pair = plan.pairs[0]
                runner = Runner()
                install_on_controlplane(pair, Installer(runner, out), selection.renderer.mirror)
                applied = applied_objects(pair, out, selection.renderer.mirror, runner)
                profile = selection.config.profile_objects(variant, mode)
                if profile:
                    # what the Profile controller and KFP's sync hook would create (they do not run here)
                    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": mode.user_namespace}}
                    (out / "profile-objects.yaml").write_text(yaml.safe_dump_all([namespace, *profile]))
                    runner.run([*pair.cluster.kubectl(), "apply", "--server-side", "--force-conflicts", "-f",
                                str(out / "profile-objects.yaml")], timeout=120)
                index = index_manifests([*applied, *profile])
                identities = [*variant.driver.identities_for(mode.name)]
                bound = [i.bind(mode.user_namespace) for i in identities]
                bound.append(Identity(mode.user_namespace, mode.workflow_service_account))
                checks = questions(index, bound, sorted({selection.config.live.namespace, mode.user_namespace}))
                per = agreement(Kube.for_cluster(plane.handle()), index, checks)
            report[label] = per
            disagreements += sum(len(r["disagreements"]) for r in per.values())
            print("\n".join(summary_lines(label, per)), flush=True)
    asked = sum(r["asked"] for per in report.values() for r in per.values())
    print(f"total: {asked - disagreements}/{asked} answers agree; {disagreements} disagreement(s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
