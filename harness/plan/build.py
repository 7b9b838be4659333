"""PURE: selection x scenarios x options -> an ordered, serialisable `Plan` of live-tier steps.

Nothing here runs a command or touches a cluster. Every step carries its argv (or the manifest file it
applies, with a digest) and its effective timeout; `harness.live.install` executes exactly these steps, so the
plan printed by `kfp-conformance run --plan` is what a run does. Paths are relative to the run's out dir
(commands run with it as the working directory) and no times or temp paths appear, so plans are golden-
testable. Install order follows KFP CI (`.github/resources/scripts/deploy-kfp.sh`, kubeflow/pipelines@81fc181b1,
the same in both PoC branches): cluster-scoped resources first (they create Namespace `kubeflow`, which the
kubeflow/manifests Profile controller overlay deletes from its own render), then the mode's prerequisites,
the overlay, readiness, then the tree's multi-user test files.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from harness import DATA_DIR
from harness.cluster.base import ClusterHandle, cluster_labels, cluster_name
from harness.cluster.controlplane import K8S_VERSION, ControlPlaneProvider
from harness.cluster.images import override_images, referenced_images
from harness.cluster.kind import KindProvider, kind_config
from harness.cluster.prerequisites import Fetched
from harness.config import Config
from harness.config.live import LiveSettings
from harness.errors import ConfigError, HarnessError
from harness.manifests.yamltext import DumpMemo, dump_documents
from harness.models import COMPONENT_IMAGE as BASE_IMAGE
from harness.models import Mode, Scenario, Source, Variant, instance_key, split_image
from harness.plan.images import (
    BUILD_TIMEOUT,
    COMPONENT_IMAGE_DOCKERFILE,
    ImageBuild,
    build_commands,
    load_image_builds,
)
from harness.render.kustomize import load_manifests

PLAN_VERSION = "1.0"
KEEP_CHOICES = ("never", "on-failure", "always")
FIELD_MANAGER = "kfp-conformance"
_TEMPLATES = DATA_DIR


@dataclass(frozen=True)
class PlanStep:
    """One thing the live tier does. `action` says how `harness.live.install` runs it:
    command/apply/wait: run argv; condition: a named poll in `harness.live.wait`; access/scenario/skip/note/
    controlplane (start a local control plane): carried out by `harness.live.session` (or only informative);
    cleanup: argv run per the keep policy."""

    pair: str
    cluster: str
    phase: str
    action: str
    description: str
    argv: tuple[str, ...] = ()
    manifest: str = ""
    digest: str = ""
    objects: int = 0
    timeout: int = 0
    target: str = ""  # what a wait waits for (kind/namespace/name), named in errors and diagnostics
    namespace: str = ""
    tolerate: tuple[str, ...] = ()  # stderr fragments that still mean success ("already in use")
    condition: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # >1: a failed command is tried again after `pause` seconds (KFP CI retries its deploy once)
    pause: int = 0
    skip_if: tuple[str, ...] = ()  # a command whose success means the step is already done (an image exists)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        data["tolerate"] = list(self.tolerate)
        data["skip_if"] = list(self.skip_if)
        return {k: v for k, v in data.items() if v not in ("", 0, [], {}, ())}


@dataclass
class PlanMemo:
    """The YAML work of one run's plans, done once: each pair of a mode applies the same multi-megabyte Istio and
    cert-manager copies, a variant's objects recur in every mode, most objects in every variant, and a migration
    builds the install plan again for each move. Made per run, never process-wide."""

    parsed: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)  # file text -> its objects
    dumped: DumpMemo = field(default_factory=dict)  # harness.manifests.yamltext's memo

    def objects(self, text: str) -> tuple[dict[str, Any], ...]:
        """The objects of a file the plan applies verbatim (a mirrored prerequisite, a file of the tree); shared
        by every plan of the run, so read-only."""
        if text not in self.parsed:
            self.parsed[text] = tuple(load_manifests(text))
        return self.parsed[text]


@dataclass(frozen=True)
class PairInput:
    """What the plan needs for one (variant, mode): the resolved tree and its rendered install."""

    variant: Variant
    mode: Mode
    source: Source
    cluster_scoped: list[dict[str, Any]]
    overlay: list[dict[str, Any]]
    render_digests: dict[str, str]  # {"cluster-scoped": digest, "overlay": digest}
    tree_files: dict[str, str] = field(default_factory=dict)  # path in the tree -> text (e.g. metacontroller CRD)
    fetched: dict[str, Fetched] = field(default_factory=dict)  # prerequisite URL -> its copy in the offline mirror
    # one per run, shared by every pair of the selection (harness.live.session.pair_inputs), so by every plan a run
    # or migration builds from them
    memo: PlanMemo = field(default_factory=PlanMemo, compare=False, repr=False)


@dataclass(frozen=True)
class PlanOptions:
    run_id: str
    provider: str = "kind"  # kind | existing | controlplane
    keep: str = "never"
    reuse: bool = False
    max_clusters: int = 2
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # variant -> {repository: new ref}
    driver_images: dict[str, str] = field(default_factory=dict)  # variant -> ref
    existing: ClusterHandle | None = None  # provider=existing: the user's kubeconfig and context
    # Tag for locally built images under the registry prefix; "" means DEFAULT_LOCAL_TAG. Every CI overlay maps
    # its images to `kind-registry:5000/<app>:latest`, and every cluster on a host shares one registry, so
    # without a per-variant tag two variants would silently run one build. "latest" opts out.
    local_tag: str = ""
    # provider=controlplane: the caller's environment, where the control plane's state (and so its admin
    # kubeconfig) lives (harness.cluster.controlplane.state_root); the library never reads os.environ
    env: dict[str, str] = field(default_factory=dict)


DEFAULT_LOCAL_TAG = "{variant}"


@dataclass
class PairPlan:
    variant: str
    mode: str
    cluster: ClusterHandle
    source: dict[str, Any]
    renders: dict[str, str]
    image_changes: list[str]
    steps: list[PlanStep]
    install_digest: str = ""
    local_images: list[str] = field(default_factory=list)  # pushed from local Docker to the kind registry
    refusal: tuple[str, str] = ("", "")  # (problem, fix): why this pair cannot install; refused before any cluster

    @property
    def key(self) -> str:
        return f"{self.variant}.{self.mode}"

    def phase_steps(self, *phases: str) -> list[PlanStep]:
        return [s for s in self.steps if s.phase in phases]

    def to_dict(self) -> dict[str, Any]:
        data = {"pair": self.key, "variant": self.variant, "mode": self.mode, "cluster": self.cluster.to_dict(),
                "source": self.source, "renders": self.renders, "install_digest": self.install_digest,
                "image_changes": self.image_changes, "local_images": self.local_images,
                "steps": [s.to_dict() for s in self.steps]}
        return data | ({"refusal": list(self.refusal)} if self.refusal[0] else {})


@dataclass
class Plan:
    run_id: str
    options: dict[str, Any]
    preflight: list[PlanStep]
    pairs: list[PairPlan]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> content (written by harness.live.session)

    def to_dict(self) -> dict[str, Any]:
        return {"plan_version": PLAN_VERSION, "run_id": self.run_id, "options": self.options,
                "preflight": [s.to_dict() for s in self.preflight], "pairs": [p.to_dict() for p in self.pairs],
                "files": {path: digest_text(text) for path, text in sorted(self.files.items())}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_text(self) -> str:
        return plan_text(self)


def digest_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]




class _PairBuilder:
    """Accumulates the steps of one (variant, mode)."""

    def __init__(self, pair: str, handle: ClusterHandle, settings: LiveSettings, files: dict[str, str],
                 memo: PlanMemo) -> None:
        self.pair, self.handle, self.settings, self.files, self.memo = pair, handle, settings, files, memo
        self.steps: list[PlanStep] = []
        self.kubectl = handle.kubectl()

    def add(self, phase: str, action: str, description: str, **kwargs: Any) -> None:
        if "argv" in kwargs:
            kwargs["argv"] = tuple(kwargs["argv"])
        if "tolerate" in kwargs:
            kwargs["tolerate"] = tuple(kwargs["tolerate"])
        self.steps.append(PlanStep(self.pair, self.handle.name, phase, action, description, **kwargs))

    def file(self, name: str, text: str) -> str:
        path = f"rendered/{self.pair}/{name}"
        self.files[path] = text
        return path

    def _apply_argv(self, flag: str, target: str) -> list[str]:
        return [*self.kubectl, "apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
                flag, target]

    def _retry(self) -> dict[str, int]:
        """Install applies are tried `install_attempts` times, like KFP CI's retried deploy-kfp.sh."""
        s = self.settings
        return {"attempts": s.install_attempts, "pause": s.timeout("retry-pause")} if s.install_attempts > 1 else {}

    def apply_file(self, phase: str, name: str, manifests: Sequence[dict[str, Any]], what: str, timeout: int,
                   text: str | None = None) -> None:
        """Apply `manifests` (written as YAML), or `text` verbatim (a file of the tree, a mirrored render)."""
        text = dump_documents(manifests, memo=self.memo.dumped) if text is None else text
        path = self.file(name, text)
        self.add(phase, "apply", f"apply {what} ({len(manifests)} objects)", argv=self._apply_argv("-f", path),
                 manifest=path, digest=digest_text(text), objects=len(manifests), timeout=timeout, **self._retry())

    def apply_url(self, phase: str, flag: str, url: str, fetched: dict[str, Fetched], name: str, what: str,
                  timeout: int) -> Sequence[dict[str, Any]]:
        """A prerequisite URL: its offline-mirror copy when there is one (applied as a file), else online."""
        copy = fetched.get(url)
        if copy is None:
            self.add(phase, "apply", f"apply {what} (online)", argv=self._apply_argv(flag, url), timeout=timeout,
                     **self._retry())
            return []
        manifests = self.memo.objects(copy.text)
        self.apply_file(phase, name, manifests, f"{what} (offline mirror {copy.mirror_path})", timeout, copy.text)
        return manifests

    def wait_crds(self, phase: str, crds: list[str], timeout: int) -> None:
        if crds:
            self.add(phase, "wait", f"wait for {len(crds)} CRD(s) Established",
                     argv=[*self.kubectl, "wait", "--for=condition=Established", f"--timeout={timeout}s",
                           *[f"crd/{name}" for name in crds]],
                     timeout=timeout, target="crd/" + ",".join(crds))

    def wait_all_available(self, phase: str, namespace: str, what: str, timeout: int) -> None:
        self.add(phase, "wait", f"wait for every Deployment in {namespace} Available ({what})",
                 argv=[*self.kubectl, "wait", "--for=condition=Available", "deployment", "--all", "-n", namespace,
                       f"--timeout={timeout}s"],
                 timeout=timeout, target=f"deployment/{namespace}/*", namespace=namespace)

    def wait_pods(self, phase: str, namespace: str, what: str, timeout: int, selector: str = "") -> None:
        """Pods Ready, polled (a `kubectl wait pods --all` right after an apply fails on "no matching resources"
        before the controllers have made any pod)."""
        which = f"pods -l {selector}" if selector else "every pod"
        self.add(phase, "condition", f"wait for {which} in {namespace} Ready ({what})", timeout=timeout,
                 target=f"pods/{namespace}", namespace=namespace,
                 condition={"name": "pods-ready", "namespace": namespace, "selector": selector})

    def rollout(self, phase: str, kind: str, namespace: str, name: str, timeout: int) -> None:
        self.add(phase, "wait", f"wait for {kind} {namespace}/{name} rolled out",
                 argv=[*self.kubectl, "rollout", "status", f"{kind.lower()}/{name}", "-n", namespace,
                       f"--timeout={timeout}s"],
                 timeout=timeout, target=f"{kind.lower()}/{namespace}/{name}", namespace=namespace)


def _crd_names(manifests: Sequence[dict[str, Any]]) -> list[str]:
    return [m["metadata"]["name"] for m in manifests if m.get("kind") == "CustomResourceDefinition"]


# -- prerequisites: mode data names them, these functions say how each is installed -------------------
def _cert_manager(b: _PairBuilder, pair: PairInput) -> None:
    s = b.settings
    applied = b.apply_url("prerequisites", "-f", s.cert_manager_url, pair.fetched, "cert-manager.yaml",
                          "cert-manager", s.timeout("prerequisites"))
    b.wait_crds("prerequisites", _crd_names(applied), s.timeout("crds"))
    b.wait_all_available("prerequisites", "cert-manager", "cert-manager, its cainjector and webhook",
                         s.timeout("webhooks"))
    # backend/Makefile install-cert-manager@81fc181b1 then waits for the pods Ready: an Available webhook
    # Deployment can still refuse Certificates until its pod serves (the overlay apply is retried too).
    b.wait_pods("prerequisites", "cert-manager", "like KFP's `make install-cert-manager`", s.timeout("webhooks"),
                "app.kubernetes.io/instance=cert-manager")


def _istio(b: _PairBuilder, pair: PairInput) -> None:
    s = b.settings
    for template in s.istio_kustomizations:
        url = s.url(template)
        part = url.split("/common/istio/")[-1].split("?")[0]
        applied = b.apply_url("prerequisites", "-k", url, pair.fetched, f"{part.replace('/', '-')}.yaml",
                              "Istio " + part, s.timeout("prerequisites"))
        b.wait_crds("prerequisites", _crd_names(applied), s.timeout("crds"))
    # deploy-kfp.sh@81fc181b1: kubectl wait --for=condition=Ready pods --all -n istio-system
    b.wait_pods("prerequisites", "istio-system", "istiod and its webhook, like KFP CI", s.timeout("webhooks"))


def _metacontroller_crd(b: _PairBuilder, pair: PairInput) -> None:
    s = b.settings
    text = pair.tree_files.get(s.metacontroller_crd)
    if text is None:
        raise ConfigError(s.metacontroller_crd, f"not found in the {pair.variant.name} tree",
                          "point live.metacontroller_crd at the CRD file inside the KFP tree")
    manifests = b.memo.objects(text)
    b.apply_file("prerequisites", "metacontroller-crd.yaml", manifests,
                 f"metacontroller CRD from the tree ({s.metacontroller_crd})", s.timeout("apply"), text)
    b.wait_crds("prerequisites", _crd_names(manifests), s.timeout("crds"))


def _profile_controller(b: _PairBuilder, pair: PairInput) -> None:
    s = b.settings
    applied = b.apply_url("prerequisites", "-k", s.url(s.profile_controller_kustomization), pair.fetched,
                          "profile-controller.yaml", "Kubeflow Profile controller", s.timeout("prerequisites"))
    b.wait_crds("prerequisites", _crd_names(applied), s.timeout("crds"))
    # deploy-kfp.sh@81fc181b1: kubectl -n kubeflow wait --for=condition=Ready pods -l app.kubernetes.io/name=profile-controller
    b.wait_pods("prerequisites", s.namespace, "the Profile controller, like KFP CI", s.timeout("webhooks"),
                "app.kubernetes.io/name=profile-controller")


def _test_profile(b: _PairBuilder, pair: PairInput, run_id: str) -> None:
    """Runs after KFP is ready (the profile controller and KFP's sync hook must both be up). Applies the tree's own
    test_data/kubernetes files in KFP CI's order; only a tree without any of them gets the harness template."""
    s = b.settings
    present = [path for path in s.test_profile_files if path in pair.tree_files]
    if present:
        for path in present:
            text = pair.tree_files[path]
            manifests = b.memo.objects(text)
            _check_profile_namespace(path, manifests, pair, s)
            b.apply_file("profile", path, manifests, f"{path} from the {pair.variant.name} tree", s.timeout("apply"),
                         text)
        missing = [path for path in s.test_profile_files if path not in pair.tree_files]
        if missing:
            b.add("profile", "note", f"not applied: the {pair.variant.name} tree has no {', '.join(missing)} "
                  "(its CI applies only the files it has)")
    else:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), undefined=jinja2.StrictUndefined,
                                 autoescape=False, keep_trailing_newline=True)
        text = env.get_template("multi-user-test-profile.yaml.j2").render(
            namespace=s.profile_namespace, owner=s.profile_owner, kfp_namespace=s.namespace,
            labels=cluster_labels(run_id))
        manifests = load_manifests(text)
        b.apply_file("profile", "test-profile.yaml", manifests,
                     f"FALLBACK harness/data/multi-user-test-profile.yaml.j2: the {pair.variant.name} tree has none of "
                     f"{', '.join(s.test_profile_files)} (test profile {s.profile_namespace}, owner {s.profile_owner})",
                     s.timeout("apply"))
    b.add("profile", "condition", f"wait for Secret {s.profile_namespace}/mlpipeline-minio-artifact "
          "(the profile controller and KFP's sync hook made the namespace usable)",
          timeout=s.timeout("profile"), target=f"secret/{s.profile_namespace}/mlpipeline-minio-artifact",
          namespace=s.profile_namespace,
          condition={"name": "object-exists", "kind": "secret", "object": "mlpipeline-minio-artifact",
                     "namespace": s.profile_namespace})


def _check_profile_namespace(path: str, manifests: Sequence[dict[str, Any]], pair: PairInput, s: LiveSettings) -> None:
    """The tree's Profile names the namespace every later step uses; a different setting would wait forever."""
    profiles = [(o.get("metadata") or {}).get("name", "") for o in manifests if o.get("kind") == "Profile"]
    wrong = [n for n in (s.profile_namespace, pair.mode.user_namespace) if profiles and n not in profiles]
    if wrong:
        raise ConfigError("live.test_profile.namespace", f"{wrong[0]} is not the Profile {', '.join(profiles)} "
                          f"that the {pair.variant.name} tree's {path} creates",
                          f"set live.test_profile.namespace and the {pair.mode.name} mode's user_namespace to "
                          f"{profiles[0]}")


PREREQUISITES: dict[str, Callable[[_PairBuilder, PairInput], None]] = {
    "cert-manager": _cert_manager,
    "istio": _istio,
    "metacontroller-crd": _metacontroller_crd,
    "profile-controller": _profile_controller,
}
POST_INSTALL = {"test-profile"}  # prerequisites that run after KFP is ready
# Scenarios need pods that run containers; a control plane has no kubelet (kwok only fakes pod status).
NO_KUBELET = "not verified: no kubelet on a control-plane cluster"


def driver_repositories(variant: Variant, settings: LiveSettings) -> dict[str, str]:
    """Where a driver image can appear: the product reference and the CI overlays' local-registry name."""
    return {variant.driver.image: "", settings.registry.prefix + "driver": ""}


def local_tag(options: PlanOptions, variant: str, mode: str) -> str:
    """The tag of `variant`'s local builds under the registry prefix (per variant unless --local-tag says else)."""
    template = options.local_tag or DEFAULT_LOCAL_TAG
    try:
        # a tag cannot hold ':' (distribution/reference): the instance `NAME:LABEL` tags as `NAME-LABEL`
        return template.format(variant=instance_key(variant), mode=mode)
    except (KeyError, IndexError, ValueError):
        raise HarnessError(f"--local-tag {template!r} is not a valid template",
                           "use text with {variant} and/or {mode}, e.g. --local-tag '{variant}'") from None


def image_overrides(variant: Variant, settings: LiveSettings, options: PlanOptions,
                    manifests: list[dict[str, Any]] | None = None, mode: str = "") -> dict[str, str]:
    """repository -> new reference for one variant: config `images:`, --image, --driver-image, then (given the
    manifests it installs) a per-variant tag for every image under the local registry prefix that nothing above
    set. The registry is shared by every cluster of the host (kind provider), so two variants meet there in any
    run or migration; with provider existing only an explicit --local-tag retags."""
    overrides: dict[str, str] = {}
    for override in variant.images:
        if override.new_name or override.new_tag:
            overrides[override.name] = f"{override.new_name or override.name}:{override.new_tag or 'latest'}"
    overrides.update(options.images.get(variant.name, {}))
    driver = options.driver_images.get(variant.name)
    if driver:
        overrides.update({repo: driver for repo in driver_repositories(variant, settings)})
    if manifests and settings.registry.enabled and (options.provider == "kind" or options.local_tag):
        tag = local_tag(options, variant.name, mode)
        for image in referenced_images(manifests):
            repo = split_image(image)[0]
            if repo.startswith(settings.registry.prefix):
                overrides.setdefault(repo, f"{repo}:{tag}")
    return overrides


def can_build_locally(options: PlanOptions, settings: LiveSettings) -> bool:
    """Local builds reach a cluster only through the kind provider's local registry."""
    return options.provider == "kind" and settings.registry.enabled


def buildable_images(tree: Path, builds: list[ImageBuild] | None = None) -> list[ImageBuild]:
    """The images of fixtures/images.yaml whose Dockerfile the tree has (a full checkout has all of them; the
    static data trees none)."""
    return [b for b in builds or load_image_builds() if (tree / b.dockerfile).is_file()]


def local_driver_images(variants: list[Variant], trees: dict[str, Path], options: PlanOptions,
                        settings: LiveSettings) -> dict[str, str]:
    """variant -> the driver ref `run` builds from the variant's own tree, for each variant whose tree only has a
    placeholder driver image, has no --driver-image and holds backend/Dockerfile.driver (KFP CI builds every image,
    the driver included, from the checked-out tree: .github/workflows/image-builds.yml@81fc181b1)."""
    if not can_build_locally(options, settings):
        return {}
    driver = [b for b in load_image_builds() if b.name == "driver"]
    return {v.name: f"{settings.registry.prefix}driver:{local_tag(options, v.name, '')}"
            for v in variants if v.driver.image_required and v.name not in options.driver_images
            and v.name in trees and buildable_images(trees[v.name], driver)}


def check_driver_images(variants: list[Variant], options: PlanOptions, trees: dict[str, Path] | None = None,
                        settings: LiveSettings | None = None) -> None:
    """A variant whose tree only has a placeholder driver image cannot be installed without an override, unless
    `run` can build the driver from the tree (given `trees` and `settings`)."""
    built = local_driver_images(variants, trees or {}, options, settings) if settings is not None else {}
    missing = [v.name for v in variants if v.driver.image_required and v.name not in options.driver_images
               and v.name not in built]
    if missing:
        example = " ".join(f"--driver-image {name}=REF" for name in missing)
        raise HarnessError(f"no driver image for {', '.join(missing)}: the tree only has a placeholder "
                           f"({variants[0].driver.image}:dummy or a CI-only tag) and no backend/Dockerfile.driver "
                           "to build it from",
                           f"use a full checkout of the branch (--variant NAME=PATH or a git URL@ref; `run` then "
                           f"builds the driver), or pass {example} (a kind-registry:5000/... ref is pushed from "
                           "your local Docker)")


def build_plan(*, config: Config, pairs: list[PairInput], scenarios: list[Scenario], options: PlanOptions) -> Plan:
    if options.keep not in KEEP_CHOICES:
        raise HarnessError(f"--keep-clusters {options.keep!r} is not valid", f"choose {', '.join(KEEP_CHOICES)}")
    if options.max_clusters < 1:
        raise HarnessError(f"--max-clusters {options.max_clusters} must be at least 1", "pass --max-clusters 1..3")
    if options.provider == "controlplane" and (options.keep != "never" or options.reuse):
        # its processes die with the harness (PR_SET_PDEATHSIG, harness.cluster.controlplane): nothing to keep
        raise HarnessError("--provider controlplane cannot keep or reuse clusters (its processes end with the run)",
                           "drop --keep-clusters/--reuse-clusters")
    if options.provider == "existing" and options.existing is None:
        raise HarnessError("--provider existing needs a kubeconfig", "pass --kubeconfig PATH [--context NAME]")
    settings = config.live
    trees = {p.variant.name: Path(p.source.path) for p in pairs}
    check_driver_images([p.variant for p in pairs], options, trees, settings)
    built_drivers = local_driver_images([p.variant for p in pairs], trees, options, settings)
    if built_drivers:
        options = replace(options, driver_images={**options.driver_images, **built_drivers})
    files: dict[str, str] = {}
    plans = [_pair_plan(p, scenarios, options, settings, files) for p in pairs]
    preflight = _preflight(plans, options, settings, trees)
    if options.provider == "kind" and _needs_component_image(scenarios):
        # Catalogue components run on one image with kfp preinstalled (no pip at run time, no internet):
        # build it once from the harness's Dockerfile; each cluster then side-loads it (see _pair_plan).
        files[COMPONENT_DOCKERFILE] = COMPONENT_IMAGE_DOCKERFILE.read_text()
        preflight.append(PlanStep("", "", "preflight", "command",
                                  f"build the catalogue's component image {BASE_IMAGE}",
                                  argv=("docker", "build", "-t", BASE_IMAGE, str(Path(COMPONENT_DOCKERFILE).parent)),
                                  manifest=COMPONENT_DOCKERFILE, digest=digest_text(files[COMPONENT_DOCKERFILE]),
                                  timeout=settings.timeout("images")))
    opts = {"provider": options.provider, "keep_clusters": options.keep, "reuse_clusters": options.reuse,
            "max_clusters": options.max_clusters, "kind_version": settings.kind_version,
            "node_image": settings.node_image, "registry": settings.registry.prefix if settings.registry.enabled else "",
            "scenarios": [s.name for s in scenarios]}
    return Plan(options.run_id, opts, preflight, plans, files)


COMPONENT_DOCKERFILE = "images/component/Dockerfile"


def _needs_component_image(scenarios: list[Scenario]) -> bool:
    return any(s.origin == "catalogue" for s in scenarios)


def _image_builds(plans: list[PairPlan], options: PlanOptions, settings: LiveSettings,
                  trees: dict[str, Path]) -> list[PlanStep]:
    """Per variant, a `docker build` from its own tree (harness.plan.images, the Dockerfiles of fixtures/images.yaml)
    for each local image its installs use, skipped when the image already exists locally: KFP CI builds every
    image from the checked-out tree before it deploys (.github/workflows/image-builds.yml@81fc181b1)."""
    steps: list[PlanStep] = []
    registry = settings.registry.prefix.rstrip("/")
    for variant in dict.fromkeys(p.variant for p in plans):
        wanted = {image for p in plans if p.variant == variant for image in p.local_images}
        builds = load_image_builds(registry=registry, tag=local_tag(options, variant, ""))
        for build in buildable_images(trees[variant], builds):
            if build.reference not in wanted:
                continue
            (argv,) = build_commands(trees[variant], [build])
            steps.append(PlanStep("", "", "preflight", "command",
                                  f"build {build.reference} from the {variant} tree ({build.dockerfile}) unless it "
                                  "exists locally", argv=tuple(argv), timeout=BUILD_TIMEOUT,
                                  skip_if=("docker", "image", "inspect", "--format", "{{.Id}}", build.reference)))
    return steps


def _preflight(plans: list[PairPlan], options: PlanOptions, settings: LiveSettings,
               trees: dict[str, Path]) -> list[PlanStep]:
    """Checks run before any cluster exists: no pair is known to be uninstallable, and the local images the
    registry will serve are built."""
    steps = [PlanStep(p.key, p.cluster.name, "preflight", "refuse", p.refusal[0], condition={"fix": p.refusal[1]})
             for p in plans if p.refusal[0]]
    if not can_build_locally(options, settings):
        return steps
    local = sorted({image for p in plans for image in p.local_images})
    if not local:
        return steps
    steps.extend(_image_builds(plans, options, settings, trees))
    return [*steps, PlanStep("", "", "preflight", "command",
                             f"check {len(local)} locally built image(s) exist before creating anything (build "
                             "each variant's with `kfp-conformance images build --tag <variant>`)",
                             argv=("docker", "image", "inspect", "--format", "{{.Id}}", *local), timeout=120)]


def placeholder_code(manifests: list[dict[str, Any]]) -> list[str]:
    """ConfigMap keys holding a Python file without a single statement, like the `sync.py` of the shared data
    trees: the multi-user profile controller runs `python /hooks/sync.py` from it, exits at once, and the
    install then times out with no hint of why."""
    found = []
    for obj in manifests:
        if obj.get("kind") != "ConfigMap":
            continue
        meta = obj.get("metadata") or {}
        for key, value in (obj.get("data") or {}).items():
            code = [line for line in str(value).splitlines() if line.strip() and not line.strip().startswith("#")]
            if key.endswith(".py") and not code:
                found.append(f"ConfigMap {meta.get('namespace', '')}/{meta.get('name', '')} key {key}")
    return found


def _pair_plan(pair: PairInput, scenarios: list[Scenario], options: PlanOptions, settings: LiveSettings,
               files: dict[str, str]) -> PairPlan:
    variant, mode = pair.variant, pair.mode
    key = f"{variant.name}.{mode.name}"
    kind = KindProvider(settings)
    if options.provider == "kind":
        name = cluster_name(options.run_id, variant.name, mode.name)
        handle = kind.handle(name, f"clusters/{name}/kubeconfig")
    elif options.provider == "controlplane":
        handle = ControlPlaneProvider(env=options.env).handle(cluster_name(options.run_id, variant.name, mode.name))
    else:
        assert options.existing is not None
        handle = options.existing
    b = _PairBuilder(key, handle, settings, files, pair.memo)
    overrides = image_overrides(variant, settings, options, pair.cluster_scoped + pair.overlay, mode.name)
    cluster_scoped, changes = override_images(pair.cluster_scoped, overrides)
    overlay, more = override_images(pair.overlay, overrides)
    changes = sorted(set(changes + more))
    images = referenced_images(cluster_scoped + overlay)
    local = [i for i in images if settings.registry.enabled and i.startswith(settings.registry.prefix)]

    # -- cluster --------------------------------------------------------------------------------------
    if options.provider == "kind":
        config_path = f"clusters/{handle.name}/kind-config.yaml"
        registry = settings.registry if settings.registry.enabled else None
        files[config_path] = kind_config(handle.name, settings.node_image, cluster_labels(options.run_id), registry)
        create = kind.create_argv(handle, config_path, settings.timeout("create-cluster"))
        b.add("cluster", "command", f"create kind cluster {handle.name} ({settings.node_image.split('@')[0]})",
              argv=create, manifest=config_path, digest=digest_text(files[config_path]),
              timeout=settings.timeout("create-cluster") + 60)
        if registry:
            b.add("registry", "command", f"start the local registry {registry.prefix} (shared by every cluster)",
                  argv=kind.registry_start_argv(), timeout=settings.timeout("registry"), tolerate=["already in use"])
            b.add("registry", "command", "connect the registry to the kind network",
                  argv=kind.registry_connect_argv(), timeout=settings.timeout("registry"),
                  tolerate=["already exists"])
            b.add("registry", "command", f"let the node pull {registry.prefix}... over HTTP",
                  argv=kind.registry_hosts_argv(handle.name), timeout=settings.timeout("registry"))
        for image in local:
            host_ref = image.replace(settings.registry.prefix, f"localhost:{settings.registry.host_port}/", 1)
            b.add("images", "command", f"tag the local build {image} for the registry's host port",
                  argv=["docker", "tag", image, host_ref], timeout=settings.timeout("images"))
            b.add("images", "command", f"push it; nodes pull it as {image}", argv=["docker", "push", host_ref],
                  timeout=settings.timeout("images"))
        if _needs_component_image(scenarios):
            b.add("images", "command", f"load the component image {BASE_IMAGE} onto the node",
                  argv=kind.load_argv(handle.name, BASE_IMAGE), timeout=settings.timeout("images"))
        for image in settings.preload_images:
            b.add("images", "command", f"pull runtime base image {image}", argv=["docker", "pull", image],
                  timeout=settings.timeout("images"))
            b.add("images", "command", f"load {image} onto the node", argv=kind.load_argv(handle.name, image),
                  timeout=settings.timeout("images"))
    elif options.provider == "controlplane":
        # Started by harness.live.session through ControlPlaneProvider.create (processes, not a command); no
        # container runs, so no image is built, pushed or loaded: images are only names to the apiserver.
        b.add("cluster", "controlplane", f"start a local control plane {handle.name} (etcd, kube-apiserver, "
              "kube-controller-manager, kube-scheduler, kwok node; no kubelet, no container runs)",
              timeout=settings.timeout("create-cluster"))
    else:
        argv = [*handle.kubectl(), "version", "-o", "json", "--request-timeout=60s"]
        b.add("cluster", "command", f"check context {handle.context} answers (existing cluster: never created "
              "or deleted)", argv=argv, timeout=90)
        if local:
            b.add("images", "note", f"{len(local)} image(s) under {settings.registry.prefix} must be pullable by "
                  "the existing cluster: " + ", ".join(local))

    # -- install, in deploy-kfp.sh's order (@81fc181b1; unchanged in both PoC branches) -----------------------
    # Cluster-scoped resources come first: they create Namespace `kubeflow`, which the Profile controller and
    # the metacontroller need, and the kubeflow/manifests Profile controller overlay deletes its own Namespace
    # (applications/dashboard/upstream/profile-controller/overlays/kubeflow/patches/remove-namespace.yaml).
    b.apply_file("cluster-scoped", "cluster-scoped.yaml", cluster_scoped,
                 f"cluster-scoped resources ({mode.cluster_scoped})", settings.timeout("apply"))
    b.wait_crds("cluster-scoped", _crd_names(cluster_scoped), settings.timeout("crds"))
    for name in mode.prerequisites:
        if name in POST_INSTALL:
            continue
        if name not in PREREQUISITES:
            raise ConfigError("modes", f"{mode.name}: unknown prerequisite {name!r}",
                              f"use one of {', '.join([*PREREQUISITES, *POST_INSTALL])}")
        PREREQUISITES[name](b, pair)
    b.apply_file("overlay", "overlay.yaml", overlay, f"the {mode.name} overlay ({mode.ci_overlay})",
                 settings.timeout("apply"))
    overlay_crds = [n for n in _crd_names(overlay) if n not in _crd_names(cluster_scoped)]
    b.wait_crds("overlay", overlay_crds, settings.timeout("crds"))
    for obj in overlay:
        if obj.get("kind") in ("Deployment", "StatefulSet"):
            meta = obj["metadata"]
            b.rollout("readiness", obj["kind"], meta.get("namespace") or settings.namespace, meta["name"],
                      settings.timeout("deployments"))
    calm = settings.readiness_calm_polls
    b.add("readiness", "condition", f"wait for pods in {settings.namespace} ready and unchanged over {calm} more "
          f"polls {settings.readiness_calm_interval}s apart (KFP's wait_for_pods.py; skipping "
          f"{', '.join(settings.readiness_skip)})", timeout=settings.timeout("pods"),
          target=f"pods/{settings.namespace}", namespace=settings.namespace,
          condition={"name": "pods-calm", "namespace": settings.namespace, "skip": list(settings.readiness_skip),
                     "polls": calm, "interval": settings.readiness_calm_interval})
    if "test-profile" in mode.prerequisites:
        _test_profile(b, pair, options.run_id)
    install_digest = digest_text(json.dumps([s.to_dict() for s in b.steps], sort_keys=True)
                                 + "".join(files[s.manifest] for s in b.steps if s.manifest in files))

    # -- access, scenarios, cleanup ---------------------------------------------------------------------------
    if options.provider == "controlplane":
        b.add("access", "skip", f"no KFP API access ({_access_description(mode, overlay, settings)}): {NO_KUBELET}")
    else:
        b.add("access", "access", _access_description(mode, overlay, settings))
    for scenario in scenarios:
        reason = NO_KUBELET if options.provider == "controlplane" else scenario.skip_reason(variant.name, mode.name)
        if reason:
            b.add("scenario", "skip", f"skip {scenario.name}: {reason}")
            continue
        args = json.dumps(scenario.arguments, sort_keys=True)
        b.add("scenario", "scenario", f"run {scenario.name} ({Path(scenario.pipeline_file).name}, arguments {args}); "
              f"write bundles/{scenario.name}/{key}/", timeout=mode.timeouts.get("run", 900),
              condition={"scenario": scenario.name})
    if options.provider == "kind":
        keep = {"never": "always delete", "on-failure": "delete unless something failed",
                "always": "keep (record in the ledger)"}[options.keep]
        b.add("cleanup", "cleanup", f"on failure: kind export logs to diagnostics/{key}/kind-logs; then {keep}",
              argv=kind.delete_argv(handle.name), timeout=settings.timeout("delete-cluster"))
    elif options.provider == "controlplane":
        b.add("cleanup", "note", "on any exit (error, Ctrl-C, SIGTERM): stop the control plane's processes and "
              "remove its state; the install report goes to controlplane/" + f"{key}.json")
    else:
        b.add("cleanup", "note", "existing cluster: nothing is deleted")
    source = {"commit": pair.source.commit, "ref": pair.source.ref, "repository": pair.source.repository}
    placeholders = placeholder_code(overlay)
    refusal = ("", "")
    if placeholders:
        refusal = (f"{key}: {placeholders[0]} in the {mode.name} overlay is a placeholder without code, so the "
                   "profile controller would exit at once and the install time out",
                   f"use a full checkout of {variant.name}'s branch (--variant {variant.name}=PATH or a git URL@ref)"
                   f", or drop --mode {mode.name}")
    return PairPlan(variant.name, mode.name, handle, source, dict(pair.render_digests), changes, b.steps,
                    install_digest, local, refusal)


def _access_description(mode: Mode, overlay: list[dict[str, Any]], settings: LiveSettings) -> str:
    from harness.boundary.kfpapi import ca_secret  # RUNS' rule for the CA secret, so plan and run agree

    who = f"{mode.user_namespace}/{mode.workflow_service_account}"
    parts = [f"port-forward svc/ml-pipeline {settings.api_port}",
             f"TokenRequest for {who}" + (" (audience pipelines.kubeflow.org)" if mode.multi_user else "")]
    if mode.tls:
        secret = ca_secret(overlay)
        parts.append(f"CA from Secret {secret[0]}/{secret[1]} key ca.crt" if secret
                     else "CA: no cert-manager Certificate for ml-pipeline in the render")
    return "; ".join(parts) + "; the token is never written anywhere"


def plan_text(plan: Plan) -> str:
    o = plan.options
    lines = [f"kfp-conformance run plan {plan.run_id}: provider {o['provider']}, keep clusters {o['keep_clusters']}, "
             f"reuse {str(o['reuse_clusters']).lower()}, max clusters {o['max_clusters']}",
             (f"control plane {K8S_VERSION} as local processes (binaries from scripts/controlplane-build.sh; no "
              "Docker, no kind, no registry)" if o["provider"] == "controlplane" else
              f"kind {o['kind_version']}, node image {o['node_image']}" + (f", registry {o['registry']}" if o["registry"] else "")),
             f"scenarios: {', '.join(o['scenarios']) or '(none)'}", ""]
    if plan.preflight:
        lines.append("preflight (before any cluster exists):")
        lines.extend(_step_lines(plan.preflight))
        lines.append("")
    for pair in plan.pairs:
        src = pair.source
        if pair.refusal[0]:
            lines.append(f"REFUSED {pair.refusal[0]} ({pair.refusal[1]})")
        lines.append(f"{pair.key} on cluster {pair.cluster.name} (source {src['repository']}@{src['commit'][:9]}, "
                     f"renders {pair.renders.get('cluster-scoped', '')[:12]}/{pair.renders.get('overlay', '')[:12]}, "
                     f"install {pair.install_digest})")
        for change in pair.image_changes:
            lines.append(f"  image: {change}")
        lines.extend(_step_lines(pair.steps))
        lines.append("")
    return "\n".join(lines)


def _step_lines(steps: list[PlanStep]) -> list[str]:
    lines = []
    for number, step in enumerate(steps, 1):
        extras = [f"timeout {step.timeout}s"] if step.timeout else []
        if step.attempts > 1:
            extras.append(f"{step.attempts} attempts {step.pause}s apart")
        timeout = f" ({', '.join(extras)})" if extras else ""
        lines.append(f"  {number:2d}. [{step.phase}] {step.description}{timeout}")
        if step.argv:
            lines.append("      $ " + shlex.join(step.argv))
        if step.skip_if:
            lines.append("      skipped if $ " + shlex.join(step.skip_if) + " succeeds")
        if step.manifest:
            lines.append(f"      file {step.manifest} {step.digest}")
    return lines
