"""The provider interface every cluster backend implements, and the names and labels we give clusters."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

# Every cluster and object the harness creates carries these, so `clusters prune` can find leftovers.
CLUSTER_PREFIX = "kfpc-"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kfp-conformance"
RUN_LABEL = "kfp-conformance/run"
# kind puts the name into container and host names (`<name>-control-plane`); keep it short.
MAX_NAME = 32


@dataclass(frozen=True)
class ClusterHandle:
    """How to reach one cluster. `kubeconfig` may be relative to the run's out dir (plans) or absolute."""

    name: str
    provider: str
    kubeconfig: str
    context: str

    def kubectl(self) -> list[str]:
        """The argv prefix every kubectl call against this cluster starts with."""
        return ["kubectl", "--kubeconfig", self.kubeconfig, "--context", self.context]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    """Eight hex characters: time-ordered, unique enough for concurrent runs on one host."""
    return f"{int(time.time()) % 16**6:06x}{secrets.token_hex(1)}"


def shared_run_id(explicit: str | None, xdist_testrun_uid: str | None) -> str | None:
    """A run id shared by every xdist worker of one pytest run (PYTEST_XDIST_TESTRUNUID), or the explicit one
    (KFPC_RUN_ID); the callers (CLI, pytest plugin) read the environment."""
    if explicit:
        return explicit
    return xdist_testrun_uid[:8] if xdist_testrun_uid else None


def cluster_name(run_id: str, variant: str, mode: str) -> str:
    """`kfpc-<run-id>-<variant>-<mode>`, or a deterministic short form with a hash when too long. An instance
    `NAME:LABEL` is written `NAME-LABEL`: kind names become DNS labels (node hostnames, kubeconfig contexts)."""
    from harness.models import instance_key

    variant = instance_key(variant)
    full = f"{CLUSTER_PREFIX}{run_id}-{variant}-{mode}"
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:4]
    short = f"{CLUSTER_PREFIX}{run_id[:8]}-{variant[:7]}-{mode[:5]}".rstrip("-")
    return f"{short[: MAX_NAME - 5]}-{digest}"


def cluster_labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_LABEL: run_id}


class ClusterProvider(Protocol):
    """A place clusters come from, as `harness.live.session` uses it (creation is a planned step, see `harness.plan.build`).
    Methods that touch the world run through `harness.boundary.proc.Runner`."""

    name: str
    owns_clusters: bool  # False for `existing`: we never delete a cluster we did not create

    def handle(self, name: str, kubeconfig: str) -> ClusterHandle: ...

    def delete(self, name: str, timeout: int) -> None: ...

    def export_logs(self, name: str, dest: Path) -> Path | None: ...
