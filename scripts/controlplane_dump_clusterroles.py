"""Dump the built-in ClusterRoles of a fresh real kube-apiserver (the RBAC bootstrap policy, aggregation
applied by the controller manager) to harness/data/builtin-clusterroles-<version>.yaml, for static checks.

  .venv/bin/python scripts/controlplane_dump_clusterroles.py

Volatile metadata (uid, resourceVersion, creationTimestamp, managedFields) is dropped so the file is stable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.boundary.proc import Runner  # noqa: E402
from harness.cluster.controlplane import ControlPlaneProvider  # noqa: E402

VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def main() -> int:
    runner = Runner()
    with ControlPlaneProvider(env=dict(os.environ)).cluster("kfpc-cp-clusterroles") as plane:
        kubectl = plane.handle().kubectl()
        version = json.loads(runner.run([*kubectl, "version", "-o", "json"], timeout=60).stdout)["serverVersion"]
        time.sleep(5)  # let the clusterrole-aggregation controller fill admin/edit/view
        roles = json.loads(runner.run([*kubectl, "get", "clusterroles", "-o", "json"], timeout=60).stdout)["items"]
    for role in roles:
        for key in VOLATILE:
            role["metadata"].pop(key, None)
        role.setdefault("apiVersion", "rbac.authorization.k8s.io/v1")
        role.setdefault("kind", "ClusterRole")
    roles.sort(key=lambda r: r["metadata"]["name"])
    target = REPO / "harness" / "data" / f"builtin-clusterroles-{version['gitVersion']}.yaml"
    header = (f"# Built-in ClusterRoles of kube-apiserver {version['gitVersion']} (a fresh control plane from\n"
              "# scripts/controlplane-build.sh, aggregation applied), dumped by scripts/controlplane_dump_clusterroles.py.\n")
    target.write_text(header + yaml.safe_dump_all(roles, sort_keys=True))
    print(f"{len(roles)} ClusterRoles -> {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
