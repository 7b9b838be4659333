"""A live RunContext against the fake Kubernetes/KFP API (harness.testing.fakeapi) and a fake `kubectl` on
PATH (port-forward and exec): shared by the run, collection and canary-token tests. Only the process and
HTTP boundaries are faked; connect, the kfp SDK, the kubernetes client and collection run for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.boundary.kfpapi import connect
from harness.boundary.kube import Kube
from harness.boundary.mlmd import MlmdReader
from harness.boundary.proc import Runner
from harness.cluster.base import ClusterHandle
from harness.config import load_config
from harness.live.runs import RunContext
from harness.models import Source
from harness.testing.fakeapi import FakeCluster
from harness.testing.fakekubectl import install_fake_kubectl
from harness.testing.fakemlmd import FakeMlmd

CONFIG = load_config()


def seed(fake: FakeCluster) -> None:
    """The ServiceAccounts the standalone and multi-user tokens are requested for."""
    for namespace, name in (("kubeflow", "pipeline-runner"), ("kubeflow-user-example-com", "default-editor")):
        fake.add({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
    # the profile controller binds default-editor to kubeflow-edit in its namespace, which aggregates
    # kubeflow-pipelines-edit (manifests/kustomize/base/installs/multi-user/view-edit-cluster-roles.yaml)
    fake.allow("kubeflow-user-example-com/default-editor", "*", "*", group="pipelines.kubeflow.org",
               namespace="kubeflow-user-example-com")


@contextmanager
def fake_session(tmp_path: Path, variant: str, mode: str, fake: FakeCluster, *, renders=None, timeouts=None,
                 run_id: str = "r1", mlmd: FakeMlmd | None = None) -> Iterator[tuple[RunContext, Path]]:
    """`mlmd`: a running FakeMlmd the session reads task outputs from (a real MlmdReader over gRPC)."""
    bin_dir = tmp_path / "bin"
    install_fake_kubectl(bin_dir)
    runner = Runner(env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    kube = Kube(str(kubeconfig), "fake", runner=runner)
    cluster = ClusterHandle("kfpc-test", "existing", str(kubeconfig), "fake")
    reader = MlmdReader(mlmd.address) if mlmd is not None else None
    try:
        with connect(cluster, CONFIG.mode(mode), kube, runner=runner, renders=renders, timeout=20) as session:
            yield RunContext(cluster=cluster, variant=CONFIG.variant(variant), mode=CONFIG.mode(mode),
                             source=Source(variant, "/trees/x", "path:/trees/x", "abc123"), kube=kube, kfp=session,
                             run_id=run_id, timeouts=timeouts or {}, poll_interval=0.01, mlmd=reader), bin_dir
    finally:
        if reader is not None:
            reader.close()
