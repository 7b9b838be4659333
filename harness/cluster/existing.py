"""The `existing` provider: a kubeconfig context the user already has. We never create or delete it."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.cluster.base import ClusterHandle
from harness.errors import HarnessError
from harness.manifests.yamlload import load as load_yaml


def validate_kubeconfig(kubeconfig: str, context: str | None) -> str:
    """Check the file parses and names the context (or has a current one) before anything runs.

    Returns the context to use. Reads the file only; no cluster is contacted here.
    """
    path = Path(kubeconfig).expanduser()
    if not path.is_file():
        raise HarnessError(f"kubeconfig {kubeconfig} does not exist", "pass --kubeconfig PATH (or set KUBECONFIG)")
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError:
        raise HarnessError(f"kubeconfig {kubeconfig} is not valid YAML", "point --kubeconfig at a kubeconfig file") from None
    if not isinstance(data, dict) or data.get("kind", "Config") != "Config":
        raise HarnessError(f"kubeconfig {kubeconfig} is not a kubeconfig (kind: Config)",
                           "point --kubeconfig at a kubeconfig file")
    contexts = [c.get("name") for c in data.get("contexts") or [] if isinstance(c, dict)]
    chosen = context or data.get("current-context") or ""
    if not chosen:
        raise HarnessError(f"kubeconfig {kubeconfig} has no current-context", "pass --context NAME")
    if chosen not in contexts:
        raise HarnessError(f"context {chosen!r} is not in {kubeconfig}",
                           f"choose one of: {', '.join(c for c in contexts if c) or 'none defined'}")
    return chosen


class ExistingProvider:
    name = "existing"
    owns_clusters = False

    def __init__(self, kubeconfig: str, context: str | None) -> None:
        self.kubeconfig_path = str(Path(kubeconfig).expanduser())
        self.context = validate_kubeconfig(self.kubeconfig_path, context)

    def handle(self, name: str, kubeconfig: str = "") -> ClusterHandle:
        return ClusterHandle(name=name, provider=self.name, kubeconfig=self.kubeconfig_path, context=self.context)

    def delete(self, name: str, timeout: int = 300) -> None:
        """Never deletes a cluster we did not create."""

    def export_logs(self, name: str, dest: Path) -> Path | None:
        return None
