"""The `kind` provider: drives the kind CLI (and docker for the local registry) through `harness.boundary.proc`.

Why a local registry (KFP CD's CI style, `registry: true`) rather than `kind load docker-image`: the CI
overlays of all three trees reference `kind-registry:5000/<app>:latest`; a `:latest` tag makes the kubelet
default to `imagePullPolicy: Always`, so images side-loaded with `kind load` would still be pulled (and fail).
With a registry container named `kind-registry` on the `kind` network, those references resolve unchanged and
one mechanism serves every variant. Runtime base images (not `:latest`) are still side-loaded with
`kind load docker-image` (`load_argv`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.boundary.proc import Runner
from harness.cluster.base import CLUSTER_PREFIX, ClusterHandle
from harness.config.live import LiveSettings, RegistrySettings
from harness.errors import CommandFailedError, CommandTimeoutError


def kind_config(name: str, node_image: str, labels: dict[str, str], registry: RegistrySettings | None) -> str:
    """The kind cluster config YAML: one control-plane node with a pinned image and our labels."""
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": name,
        "nodes": [{"role": "control-plane", "image": node_image, "labels": dict(sorted(labels.items()))}],
    }
    if registry and registry.enabled:
        # containerd reads per-registry hosts.toml files (written after create, see registry_argv)
        config["containerdConfigPatches"] = [
            '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"'
        ]
    return yaml.safe_dump(config, sort_keys=False)


class KindProvider:
    name = "kind"
    owns_clusters = True

    def __init__(self, settings: LiveSettings, runner: Runner | None = None) -> None:
        self.settings = settings
        self.runner = runner or Runner()

    # -- pure: argv for the plan -----------------------------------------------------------------------
    def handle(self, name: str, kubeconfig: str) -> ClusterHandle:
        return ClusterHandle(name=name, provider=self.name, kubeconfig=kubeconfig, context=f"kind-{name}")

    def create_argv(self, handle: ClusterHandle, config_file: str, timeout: int) -> list[str]:
        return ["kind", "create", "cluster", "--name", handle.name, "--config", config_file,
                "--kubeconfig", handle.kubeconfig, "--wait", f"{timeout}s"]

    def delete_argv(self, name: str) -> list[str]:
        return ["kind", "delete", "cluster", "--name", name]

    def export_logs_argv(self, name: str, dest: str) -> list[str]:
        return ["kind", "export", "logs", dest, "--name", name]

    def load_argv(self, name: str, image: str) -> list[str]:
        return ["kind", "load", "docker-image", image, "--name", name]

    def registry_start_argv(self) -> list[str]:
        reg = self.settings.registry
        return ["docker", "run", "-d", "--restart=always", "-p", f"127.0.0.1:{reg.host_port}:{reg.port}",
                "--network", "bridge", "--name", reg.name, "--label", "app.kubernetes.io/managed-by=kfp-conformance",
                reg.image]

    def registry_connect_argv(self) -> list[str]:
        return ["docker", "network", "connect", "kind", self.settings.registry.name]

    def registry_hosts_argv(self, name: str) -> list[str]:
        """Tell the node's containerd to reach `<registry>:<port>` over plain HTTP (kind's local-registry recipe)."""
        reg = self.settings.registry
        host = f"{reg.name}:{reg.port}"
        directory = f"/etc/containerd/certs.d/{host}"
        return ["docker", "exec", f"{name}-control-plane", "sh", "-c",
                f"mkdir -p {directory} && printf '[host.\"http://{host}\"]\\n' > {directory}/hosts.toml"]

    # -- effects -------------------------------------------------------------------------------------
    def delete(self, name: str, timeout: int = 300) -> None:
        self.runner.run(self.delete_argv(name), timeout=timeout)

    def list_all(self) -> list[str]:
        result = self.runner.run(["kind", "get", "clusters"], timeout=60)
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def list_owned(self) -> list[str]:
        return [name for name in self.list_all() if name.startswith(CLUSTER_PREFIX)]

    def export_logs(self, name: str, dest: Path) -> Path | None:
        """Best effort (on failure paths): kind's node logs, or None if kind could not export them."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            self.runner.run(self.export_logs_argv(name, str(dest)), timeout=300)
        except (CommandFailedError, CommandTimeoutError):
            return None
        return dest

