"""Walk a pair's planned install on a `controlplane` cluster: same steps, same order, same manifests as on
kind, with the two things a control plane without kubelets cannot do made explicit.

1. Online prerequisites come from an offline mirror laid out like the kustomize remote-base mirror
   (`<mirror>/github.com/<org>/<repo>/<ref>/<path>`, e.g. ../shared/remote-bases/github.com/kubeflow/manifests/
   master/, see its SOURCE.md). The cert-manager release URL maps to the cert-manager Kubeflow vendors there
   (`common/cert-manager/base/upstream/cert-manager.yaml`, a different cert-manager version: recorded).
2. Admission webhooks whose servers cannot run (no container runs under kwok) would reject or time out
   every later request they match: after each apply, every Mutating/ValidatingWebhookConfiguration is
   recorded (accepted by the real apiserver) and then deleted, and reported as not verified. The same for
   conditions that need a real workload (the multi-user profile Secret made by KFP's sync hook).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.boundary.kube import Kube
from harness.cluster.prerequisites import mirror_location
from harness.live.install import INSTALL_PHASES, Installer
from harness.plan.build import PairPlan, PlanStep

_RELEASE = re.compile(r"^https://github\.com/cert-manager/cert-manager/releases/download/[^/]+/cert-manager\.yaml$")
CERT_MANAGER_IN_MIRROR = "github.com/kubeflow/manifests/master/common/cert-manager/base/upstream/cert-manager.yaml"
WEBHOOK_API = "admissionregistration.k8s.io/v1"
WEBHOOK_KINDS = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")


def offline_url(url: str, mirror: Path) -> tuple[str, str]:
    """(local path, note) for a URL a planned apply would fetch, or ("", why not) when the mirror lacks it."""
    if _RELEASE.match(url):
        local = mirror / CERT_MANAGER_IN_MIRROR
        note = f"{url} replaced by the cert-manager Kubeflow vendors ({CERT_MANAGER_IN_MIRROR})"
        return (str(local), note) if local.is_file() else ("", f"{url}: {local} missing")
    local = mirror / mirror_location(url)  # the mirror's one layout (harness.cluster.prerequisites)
    return (str(local), "") if local.exists() else ("", f"{url} is not in the mirror ({local} missing)")


def offline_step(step: PlanStep, mirror: Path) -> tuple[PlanStep, str]:
    """The step with its online URL replaced by the mirror's copy (steps without a URL are unchanged)."""
    argv = list(step.argv)
    urls = [i for i, a in enumerate(argv) if a.startswith("https://")]
    if not urls:
        return step, ""
    local, note = offline_url(argv[urls[0]], mirror)
    if not local:
        raise FileNotFoundError(note)
    argv[urls[0]] = local
    return replace(step, argv=tuple(argv), description=step.description.replace("(online)", "(offline mirror)")), note


@dataclass
class InstallReport:
    """What the install on a control plane showed: applied steps, and what could not be verified."""

    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)  # accepted by the apiserver, then deleted: not verified
    not_verified: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "notes": self.notes, "webhooks_neutralised": self.webhooks,
                "not_verified": self.not_verified, "seconds": round(self.seconds, 1)}


def neutralise_webhooks(kube: Kube) -> list[str]:
    """Delete every admission webhook configuration (their servers cannot run); returns `kind/name`s. Through
    the API client rather than kubectl: it runs after every apply (a kubectl process each was ~0.1 s CPU)."""
    names = []
    for plural in WEBHOOK_KINDS:
        for item in kube.list(WEBHOOK_API, plural):
            kube.delete(WEBHOOK_API, plural, item["metadata"]["name"])
            names.append(f"{item['kind']}/{item['metadata']['name']}")
    return names


# Conditions that need a real workload to act (the profile controller and KFP's sync hook create this Secret).
WORKLOAD_CONDITIONS = ("object-exists",)


def install_on_controlplane(pair: PairPlan, installer: Installer, mirror: Path,
                            phases: tuple[str, ...] = INSTALL_PHASES, kube: Kube | None = None) -> InstallReport:
    """Run the pair's install steps in plan order; raises what `Installer.run_step` raises on a failure."""
    installer.clusters.setdefault(pair.cluster.name, pair.cluster)  # conditions find the cluster by name
    return walk_on_controlplane(pair.phase_steps(*phases), installer, mirror,
                                kube or Kube.for_cluster(pair.cluster, secrets=installer.secrets))


def walk_on_controlplane(steps: list[PlanStep], installer: Installer, mirror: Path, kube: Kube,
                         report: InstallReport | None = None) -> InstallReport:
    """Planned command/apply/wait/condition steps in order, offline and with webhooks neutralised (a
    migration's moves walk their apply steps through here too); other actions are the caller's."""
    report = report or InstallReport()
    begin = time.monotonic()
    for number, planned in enumerate(steps, 1):
        if planned.action not in ("command", "apply", "wait", "condition"):
            continue
        if planned.action == "condition" and planned.condition.get("name") in WORKLOAD_CONDITIONS:
            report.not_verified.append(f"{planned.description}: needs a running workload (no containers run)")
            continue
        step, note = offline_step(planned, mirror)
        if note:
            report.notes.append(note)
        installer.progress(f"[{step.pair} {step.phase}] {step.description}")
        installer.run_step(step, number)
        if step.action == "apply":
            report.applied.append(step.description)
            for name in neutralise_webhooks(kube):
                report.webhooks.append(name)
                report.not_verified.append(f"{name}: accepted, then deleted (its server cannot run here)")
    report.seconds += time.monotonic() - begin
    return report
