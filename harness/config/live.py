"""The optional `live:` section of the variants catalogue: versions, URLs and timeouts of the live tier.

Every value has a default here, so a catalogue without `live:` keeps loading. Facts cite
../shared/docs/kfp-variants.md §1-§2 (what KFP's own CI uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# kind v0.31.0 as in SC/CD CI. The node image digest is the one kind v0.30.0 published for v1.34.0 and that
# public repos pin; kind node images are taken by digest so a re-pushed tag cannot change the cluster.
DEFAULT_NODE_IMAGE = (
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
)
# `master` like KFP's deploy-kfp.sh: no kubeflow/manifests tag could be checked offline to hold all of
# common/istio/* and the profile-controller overlay at these paths. Pin a tag or commit in the config.
DEFAULT_MANIFESTS_REF = "master"

DEFAULT_TIMEOUTS: dict[str, int] = {
    "create-cluster": 600,   # kind create cluster --wait
    "delete-cluster": 300,
    "registry": 120,         # start/connect the local registry container
    "images": 900,           # docker tag/push/pull and kind load, per command
    "prerequisites": 600,    # applies of cert-manager / Istio / profile controller
    "apply": 300,            # one kubectl apply
    "crds": 180,             # CRDs Established
    "webhooks": 300,         # webhook Deployments Available (cert-manager, Istio)
    "deployments": 900,      # each KFP Deployment rolled out
    "pods": 900,             # wait_for_pods.py equivalent in namespace kubeflow
    "profile": 300,          # multi-user: profile namespace + Secret mlpipeline-minio-artifact
    "diagnostics": 60,       # each collector on failure
    "retry-pause": 10,       # pause before the one retry of a failed install apply (nick-fields/retry default)
}

LIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kind_version": {"type": "string"},
        # expected SHA-256 of the kind binary per os-arch (e.g. linux-amd64), for `run --fetch-tools`
        "kind_sha256": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "node_image": {"type": "string", "minLength": 1},
        "registry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "name": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "host_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "image": {"type": "string"},
            },
        },
        "cert_manager_url": {"type": "string"},
        "kubeflow_manifests_ref": {"type": "string"},
        "istio_kustomizations": {"type": "array", "items": {"type": "string"}},
        "profile_controller_kustomization": {"type": "string"},
        "metacontroller_crd": {"type": "string"},
        "test_profile": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"namespace": {"type": "string"}, "owner": {"type": "string"}},
        },
        "test_profile_files": {"type": "array", "items": {"type": "string"}},
        "preload_images": {"type": "array", "items": {"type": "string"}},
        "namespace": {"type": "string"},
        "readiness_skip": {"type": "array", "items": {"type": "string"}},
        "readiness_calm": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"polls": {"type": "integer", "minimum": 1}, "interval": {"type": "integer", "minimum": 1}},
        },
        "install_attempts": {"type": "integer", "minimum": 1, "maximum": 5},
        "timeouts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        "api_port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
}


@dataclass(frozen=True)
class RegistrySettings:
    """A local registry container reachable from the kind nodes as `<name>:<port>` (KFP CD's CI style)."""

    enabled: bool = True
    name: str = "kind-registry"
    port: int = 5000
    host_port: int = 5001  # where `docker push` reaches it on the host (5000 clashes with macOS AirPlay)
    image: str = "registry:2"

    @property
    def prefix(self) -> str:
        return f"{self.name}:{self.port}/"


@dataclass(frozen=True)
class LiveSettings:
    kind_version: str = "v0.31.0"
    kind_sha256: dict[str, str] = field(default_factory=dict)
    node_image: str = DEFAULT_NODE_IMAGE
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    cert_manager_url: str = "https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml"
    kubeflow_manifests_ref: str = DEFAULT_MANIFESTS_REF
    # `{ref}` is replaced by kubeflow_manifests_ref
    istio_kustomizations: tuple[str, ...] = (
        "https://github.com/kubeflow/manifests/common/istio/istio-crds/base?ref={ref}",
        "https://github.com/kubeflow/manifests/common/istio/istio-namespace/base?ref={ref}",
        "https://github.com/kubeflow/manifests/common/istio/istio-install/base?ref={ref}",
    )
    profile_controller_kustomization: str = (
        "https://github.com/kubeflow/manifests/applications/dashboard/upstream/profile-controller/overlays/kubeflow?ref={ref}"
    )
    metacontroller_crd: str = "manifests/kustomize/third-party/metacontroller/base/crd.yaml"  # in the KFP tree
    profile_namespace: str = "kubeflow-user-example-com"
    profile_owner: str = "user@example.com"
    # What KFP CI applies after KFP is ready in multi-user mode, in this order (deploy-kfp.sh@81fc181b1): the
    # tree's own files, each where the tree has it (droctothorpe's branch has no shared-pipeline-rbac.yaml).
    test_profile_files: tuple[str, ...] = (
        "test_data/kubernetes/seaweedfs/test-profiles.yaml",
        "test_data/kubernetes/seaweedfs/kubeflow-edit-clusterrole.yaml",
        "test_data/kubernetes/seaweedfs/allow-user-namespace-access.yaml",
        "test_data/kubernetes/seaweedfs/shared-pipeline-rbac.yaml",
    )
    # Runtime base images KFP CI loads into kind so component pods do not pull them: kubeflow/pipelines
    # .github/actions/deploy/action.yml@81fc181b1 ("Load Runtime Base Images Into Kind", the same in ntny's
    # central-driver-poc-backup; droctothorpe's branch loads none). The E2E corpus uses the UBI image.
    preload_images: tuple[str, ...] = ("python:3.11", "registry.access.redhat.com/ubi9/python-311:latest")
    namespace: str = "kubeflow"
    # wait_for_pods.py skips pods whose name contains `system`; SC/CD also skip names ending `-agent`.
    readiness_skip: tuple[str, ...] = ("*system*", "*-agent")
    # wait_for_pods.py check_pods(calm_time=10, retries_after_ready=5): the pod statuses must be identical
    # and all ready on 5 consecutive polls 10 s apart (after a first poll that matched), not ready once.
    readiness_calm_polls: int = 5
    readiness_calm_interval: int = 10
    # KFP CI runs deploy-kfp.sh under nick-fields/retry with max_attempts: 2 (.github/actions/deploy/action.yml
    # @81fc181b1): a failed apply (e.g. cert-manager's webhook not serving yet) is tried once more.
    install_attempts: int = 2
    timeouts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    api_port: int = 8888  # port-forward svc/ml-pipeline to localhost:8888 like KFP CI

    def timeout(self, step: str) -> int:
        return self.timeouts.get(step, DEFAULT_TIMEOUTS.get(step, 300))

    def url(self, template: str) -> str:
        return template.replace("{ref}", self.kubeflow_manifests_ref)


def parse_live_settings(raw: dict[str, Any] | None) -> LiveSettings:
    """Typed settings from the (already schema-validated) `live:` mapping; missing keys keep defaults."""
    raw = dict(raw or {})
    known = {f.name for f in fields(LiveSettings)}
    kwargs: dict[str, Any] = {}
    if "registry" in raw:
        kwargs["registry"] = RegistrySettings(**raw.pop("registry"))
    if "test_profile" in raw:
        profile = raw.pop("test_profile")
        if "namespace" in profile:
            kwargs["profile_namespace"] = profile["namespace"]
        if "owner" in profile:
            kwargs["profile_owner"] = profile["owner"]
    if "readiness_calm" in raw:
        calm = raw.pop("readiness_calm")
        if "polls" in calm:
            kwargs["readiness_calm_polls"] = calm["polls"]
        if "interval" in calm:
            kwargs["readiness_calm_interval"] = calm["interval"]
    if "timeouts" in raw:
        kwargs["timeouts"] = {**DEFAULT_TIMEOUTS, **raw.pop("timeouts")}
    for key, value in raw.items():
        if key in known:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return LiveSettings(**kwargs)
