"""Frozen data types shared by every stage: variants, modes, sources, renders and findings.

Pure data: no I/O here. Loaders live in config.py, sources.py and render.py.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

DRIVER_KINDS = ("pod", "executor-plugin", "central-service")

# `NAME:LABEL` names an instance of the config entry NAME: another build of the same variant (e.g. a pull
# request `central-driver:pr` against its base `central-driver:base`). Behaviour comes from the entry.
INSTANCE_SEP = ":"
INSTANCE_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")


def split_instance(name: str) -> tuple[str, str]:
    """`central-driver:pr` -> ("central-driver", "pr"); a plain entry name has the label ""."""
    entry, _, label = name.partition(INSTANCE_SEP)
    return entry, label


def instance_key(name: str) -> str:
    """The instance name where ':' is not allowed (cluster names are DNS labels, image tags, artifact names,
    directories): `central-driver:pr` -> `central-driver-pr`."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Identity:
    """A Kubernetes ServiceAccount. `namespace` may be the placeholder `{profile}` (each profile namespace)."""

    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def bind(self, profile_namespace: str) -> Identity:
        return Identity(self.namespace.replace("{profile}", profile_namespace), self.name)


@dataclass(frozen=True)
class DriverLogs:
    """Where a variant promises its driver logs (read by the live collector and the comparison)."""

    where: str  # pod | agent-pod | deployment
    container: str
    files: str = ""  # an in-container log directory, e.g. /kfp/log
    namespace: str = ""  # for where=deployment
    name: str = ""  # Deployment name for where=deployment


@dataclass(frozen=True)
class ImageOverride:
    name: str  # image reference as it appears in the render (without tag)
    new_name: str = ""
    new_tag: str = ""

    def apply(self, image: str) -> str:
        repo, tag = split_image(image)
        if repo != self.name:
            return image
        return f"{self.new_name or repo}:{self.new_tag or tag}" if (self.new_tag or tag) else (self.new_name or repo)


# The image reference grammar of github.com/distribution/reference (regexp.go), without IPv6 hosts:
# kustomize, kubelet and containerd parse images with it. Written out because no maintained Python
# package exposes it.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


@dataclass(frozen=True)
class ParsedImage:
    domain: str  # "" means Docker Hub
    path: str
    tag: str
    digest: str

    @property
    def repository(self) -> str:
        """The repository as written in the reference (registry host included when there is one)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path


def parse_image(image: str) -> ParsedImage | None:
    """Split a reference the way container runtimes do; None if it is not a valid reference."""
    match = _REFERENCE.match(image)
    if not match:
        return None
    domain, path = match["domain"] or "", match["path"]
    # Docker's rule: the first component is a registry only if it has a '.' or ':' or is localhost.
    if domain and "." not in domain and ":" not in domain and domain != "localhost":
        domain, path = "", f"{domain}/{path}"
    if domain and domain.lower() != domain and "." not in domain:
        return None
    return ParsedImage(domain, path, match["tag"] or "", match["digest"] or "")


def split_image(image: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repo, tag, or `@digest` when there is one); a port in the registry host is
    not a tag. A string that is no valid reference is all repository."""
    parsed = parse_image(image)
    if parsed is None:
        return image, ""
    return parsed.repository, f"@{parsed.digest}" if parsed.digest else parsed.tag


@dataclass(frozen=True)
class DriverSpec:
    kind: str  # one of DRIVER_KINDS
    identities: dict[str, tuple[Identity, ...]]  # mode id (or "*") -> identities the driver acts as
    logs: DriverLogs
    image: str  # the driver image reference as it appears in the product manifests
    image_required: bool = True  # the tree's driver image is a placeholder: live installs need an override
    # in-cluster objects that carry the driver (Deployment, ConfigMap) by kind/name, for reports
    carriers: tuple[str, ...] = ()

    def identities_for(self, mode: str) -> tuple[Identity, ...]:
        return self.identities.get(mode) or self.identities.get("*", ())


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    source: str  # path, git URL@ref, or "" (taken from --sources DIR/<name>)
    driver: DriverSpec
    images: tuple[ImageOverride, ...] = ()
    # per-profile-namespace objects the profile controller (sync.py) creates in multi-user mode, as manifests
    profile_resources: tuple[dict[str, Any], ...] = ()
    expected_differences: tuple[str, ...] = ()

    @property
    def entry(self) -> str:
        """The config entry this variant (or instance `NAME:LABEL`) takes its behaviour from."""
        return split_instance(self.name)[0]


@dataclass(frozen=True)
class Mode:
    name: str
    description: str
    ci_overlay: str  # path inside a KFP tree
    product_overlay: str
    cluster_scoped: str  # applied before the overlay
    prerequisites: tuple[str, ...] = ()
    multi_user: bool = False
    tls: bool = False
    user_namespace: str = "kubeflow"
    workflow_service_account: str = "pipeline-runner"
    timeouts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """A resolved KFP tree. `commit` is recorded in every output."""

    variant: str
    path: str
    origin: str  # path:..., git:URL@ref, sources-dir:...
    commit: str
    ref: str = ""
    repository: str = ""
    dirty: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    """One result of a check. `expected` marks a declared difference (e.g. the driver transport)."""

    id: str
    severity: Severity
    category: str
    mode: str
    variants: tuple[str, ...]
    subject: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    expected: bool = False
    accepted: str = ""  # why a known-findings file accepts it (harness.judge.decisions); never blocks then
    origin: str = ""  # with --base: branch | upstream-drift | both (harness.static.drift); "" when not attributed

    @property
    def not_verified(self) -> bool:
        """The check could not run (probes, migration steps): never a pass, whatever its severity."""
        return self.evidence.get("status") == "skipped"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["variants"] = list(self.variants)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=data["id"], severity=Severity(data["severity"]), category=data["category"], mode=data["mode"],
            variants=tuple(data["variants"]), subject=data["subject"], message=data["message"],
            evidence=data.get("evidence", {}), expected=data.get("expected", False),
            accepted=data.get("accepted", ""), origin=data.get("origin", ""),
        )

    @property
    def blocking(self) -> bool:
        """The one definition of blocking, used by every writer: an error neither declared nor accepted."""
        return self.severity is Severity.ERROR and not self.expected and not self.accepted


# The one image every catalogue component runs in (harness.catalogue.scenarios.component); the live plan
# builds it from fixtures/images/component/Dockerfile. Its name is part of every compiled scenario's IR.
COMPONENT_IMAGE = "kfp-conformance/python-kfp:3.11-2.17.3"
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
ORACLE = "oracle"  # expected value comes from the local kfp.local run
SAME_AS_BASELINE = "same-as-baseline"  # expected value is whatever the baseline variant produced


@dataclass(frozen=True)
class Scenario:
    """A pipeline every variant must run identically, from our catalogue or KFP's own corpus.

    `expected_outputs` maps a task path (e.g. `root/chain/add-2` or `for-loop-1[0]/print-op`) to
    {output name: literal value | ORACLE | SAME_AS_BASELINE}. `skips` maps `<variant>.<mode>` (either part
    may be `*`) to the reason it cannot run there: reported as skipped, never dropped.
    `expected_outputs == {"*": {"*": SAME_AS_BASELINE}}` (every task path, every output) is the corpus
    convention: no declared values exist, so each node output must equal the baseline variant's.
    """

    name: str
    origin: str  # "catalogue" or "corpus"
    pipeline_file: str  # compiled pipeline IR YAML that the live tier submits
    arguments: dict[str, Any] = field(default_factory=dict)
    expected_state: str = "SUCCEEDED"
    modes: tuple[str, ...] = ()  # empty = every mode
    tags: tuple[str, ...] = ()
    expected_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing_tasks: tuple[str, ...] = ()
    driver_outputs: tuple[str, ...] = ()  # pod-spec-patch, cached-decision, condition, iteration-count
    skips: dict[str, str] = field(default_factory=dict)
    upstream_path: str = ""  # for corpus scenarios: the file's path inside the KFP tree
    description: str = ""
    # objects (Secret, ConfigMap manifests) created in the user namespace before the run, deleted after
    setup: tuple[dict[str, Any], ...] = ()
    # caching scenarios: submit the same pipeline this many times; expected_cache maps a task path to
    # whether every repeat run must take it from the cache (driver output cached-decision)
    repeat_runs: int = 1
    expected_cache: dict[str, bool] = field(default_factory=dict)
    # the local oracle's result in the evidence bundle's `oracle` shape (harness/catalogue/oracle.py bundle_oracle)
    oracle: dict[str, Any] = field(default_factory=dict)

    def skip_reason(self, variant: str, mode: str) -> str | None:
        if self.modes and mode not in self.modes:
            return f"scenario applies to modes {', '.join(self.modes)} only"
        for key in (f"{variant}.{mode}", f"{variant}.*", f"*.{mode}", "*.*"):
            if key in self.skips:
                return self.skips[key]
        return None
