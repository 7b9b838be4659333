"""A migration's install and in-place moves on a `controlplane` cluster, and what the moves really leave behind.

The plan is `harness.plan.migration.build_migration_plan`'s (built against the control plane as an existing
cluster); its install and each move's command/apply/wait steps go through the same offline walk as
`run --provider controlplane` (`harness.live.controlplane_install.walk_on_controlplane`). Steps that need
pipeline runs (kept runs, the in-flight run, new runs, the driver-mode proof) cannot run without kubelets and
are reported as not verified. After each move every object of the static orphan prediction is looked up on the
real apiserver (`harness.live.migration.lookup_orphans`), and, independently of the static keys, every object
of the source render that the target render does not hold is GET from the apiserver (`left_behind`), so a
prediction that misses an object (or names one that is gone) shows as a difference. Cluster-scoped kinds are
compared without the namespace a render may give them (the apiserver drops it: docs/controlplane.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boundary.kube import Kube
from harness.live.controlplane_install import InstallReport, install_on_controlplane, walk_on_controlplane
from harness.live.install import Installer
from harness.live.migration import lookup_orphans
from harness.manifests.yamlload import load_all
from harness.plan.build import NO_KUBELET
from harness.plan.migration import KEPT, MigrationPlan, plural
from harness.render.kustomize import resource_key
from harness.static.inventory import describe

Key = tuple[str, str, str, str]


@dataclass
class MoveReport:
    name: str
    walk: InstallReport
    orphans: list[dict[str, Any]]  # lookup_orphans: each predicted orphan with `exists`
    left_behind: list[str] = field(default_factory=list)  # found on the apiserver, not in the target render
    unpredicted: list[str] = field(default_factory=list)  # left behind, but not predicted (kept)
    predicted_gone: list[str] = field(default_factory=list)  # predicted kept, but not on the apiserver

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "walk": self.walk.to_dict(), "orphans": self.orphans,
                "left_behind": self.left_behind, "unpredicted": self.unpredicted,
                "predicted_gone": self.predicted_gone}


@dataclass
class MigrationReport:
    install: InstallReport
    moves: list[MoveReport] = field(default_factory=list)
    not_verified: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"install": self.install.to_dict(), "moves": [m.to_dict() for m in self.moves],
                "not_verified": self.not_verified}


def migrate_on_controlplane(plan: MigrationPlan, installer: Installer, mirror: Path, kube: Kube,
                            moves: tuple[str, ...] = ("upgrade", "rollback")) -> MigrationReport:
    """Install the old variant, then walk each planned move in place and look up its predicted orphans."""
    pair = plan.install.pairs[0]
    report = MigrationReport(install_on_controlplane(pair, installer, mirror, kube=kube))
    kubectl = list(pair.cluster.kubectl())
    files = {**plan.install.files, **plan.files}
    for move in plan.moves:
        if move.name not in moves:
            continue
        steps = [s for s in plan.steps if s.phase.split(":")[0] == move.name]
        report.not_verified += [f"{s.phase}: {s.description}: {NO_KUBELET}" for s in steps if s.action == "migration"]
        walk = walk_on_controlplane(steps, installer, mirror, kube)
        kinds = cluster_scoped_kinds(installer, kubectl)
        source, target = (_render(files, f"{v}.{plan.mode}") for v in (move.from_variant, move.to_variant))
        left = left_behind(source, target, kinds, kube)
        predicted = {_scoped((o["group"], o["kind"], o["namespace"], o["name"]), kinds)
                     for o in move.orphans if o["fate"] == KEPT}
        report.moves.append(MoveReport(move.name, walk, lookup_orphans(move, kube), [describe(k) for k in left],
                                       [describe(k) for k in sorted(set(left) - predicted)],
                                       [describe(k) for k in sorted(predicted - set(left))]))
    report.not_verified += [f"before: {s.description}: {NO_KUBELET}" for s in plan.steps if s.phase == "before"]
    return report


def _render(files: dict[str, str], pair: str) -> list[dict[str, Any]]:
    """What a variant's install applies from its render (what harness.static.orphans compares)."""
    return [d for name in ("cluster-scoped", "overlay")
            for d in load_all(files.get(f"rendered/{pair}/{name}.yaml", "")) if isinstance(d, dict)]


def cluster_scoped_kinds(installer: Installer, kubectl: list[str]) -> set[tuple[str, str]]:
    """(group, kind) of every cluster-scoped resource the apiserver serves (discovery, CRDs included)."""
    result = installer.runner.run([*kubectl, "api-resources", "--namespaced=false", "--no-headers"], timeout=60)
    kinds = set()
    for line in result.stdout.splitlines():
        fields = line.split()  # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        kinds.add((fields[-3].rpartition("/")[0], fields[-1]))
    return kinds


def _scoped(key: Key, kinds: set[tuple[str, str]]) -> Key:
    return (key[0], key[1], "" if (key[0], key[1]) in kinds else key[2], key[3])


def left_behind(source: list[dict[str, Any]], target: list[dict[str, Any]], kinds: set[tuple[str, str]],
                kube: Kube) -> list[Key]:
    """Objects of `source` that `target` does not hold and the apiserver still has, sorted."""
    wanted = {_scoped(resource_key(o), kinds) for o in target}
    objects = {_scoped(resource_key(o), kinds): o for o in source}
    found = []
    for key, obj in sorted(objects.items()):
        if key not in wanted and kube.find(obj["apiVersion"], plural(key[1]), key[3], key[2] or None) is not None:
            found.append(key)
    return found
