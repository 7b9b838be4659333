"""Workload hardening: each workload's pod spec judged against the Kubernetes Pod Security Standards, and
compared per workload between two variants.

The controls and their allowed values follow the Pod Security Admission checks, one function per upstream
check ID (kubernetes/kubernetes `staging/src/k8s.io/pod-security-admission/policy/check_*.go`, read at
v1.34-era commits: check_capabilities_baseline.go@c004d3b, check_runAsNonRoot.go@77e0ade,
check_restrictedVolumes.go@b8ff6a4, check_sysctls.go@abd6065, check_hostProbesAndhostLifecycle.go@2e94b40,
check_seccompProfile_restricted.go@422c8fc, check_appArmorProfile.go@da0c8de) and the control tables of
kubernetes/website `content/en/docs/concepts/security/pod-security-standards.md`. Written by hand (no
Python implementation exists); the Kubernetes version the install tier pins is 1.34, so every check whose
minimum version is <= 1.34 applies. Pure: manifests in, data and Findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.manifests.workloads import POD_SPEC_PATHS, containers, pod_metadata, pod_metadata_path, pod_spec
from harness.models import Finding, Severity
from harness.render.kustomize import resource_key
from harness.static.inventory import describe

Manifest = dict[str, Any]
CATEGORY = "hardening"
LEVELS = ("privileged", "baseline", "restricted")  # from least to most restrictive

# check_capabilities_baseline.go: the container runtime's default capability set
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
# check_sysctls.go (1.0 list): namespaced sysctls isolated from other pods
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
# check_seLinuxOptions.go: types a baseline pod may set (user and role must stay unset)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# check_restrictedVolumes.go: the inline volume sources a restricted pod may use
RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
GOOD_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})


@dataclass(frozen=True)
class Violation:
    """One control a pod breaks, at one field: `container` is "" for pod-level fields."""

    control: str  # the upstream check ID, e.g. `hostNamespaces`, `runAsNonRoot`
    level: str  # the level whose control this is: baseline | restricted
    container: str
    path: str  # field path from the object root, e.g. `spec.template.spec.containers[x].securityContext.privileged`
    value: Any

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.control, self.container, self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "level": self.level, "container": self.container, "path": self.path,
                "value": self.value}


@dataclass(frozen=True)
class _Pod:
    obj: Manifest
    spec: dict[str, Any]
    annotations: dict[str, Any]
    base: str  # path of the pod spec, e.g. `spec.template.spec`
    meta: str  # path of the pod metadata

    def containers(self) -> Iterator[tuple[dict[str, Any], str]]:
        """(container, its path), as upstream's visitContainers: init, regular and ephemeral containers."""
        yield from containers(self.obj)

    @property
    def security(self) -> dict[str, Any]:
        return self.spec.get("securityContext") or {}

    @property
    def windows(self) -> bool:
        return (self.spec.get("os") or {}).get("name") == "windows"


def _csc(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


Rule = Callable[[_Pod], Iterator[Violation]]


def _host_process(pod: _Pod) -> Iterator[Violation]:
    if (pod.security.get("windowsOptions") or {}).get("hostProcess"):
        yield Violation("windowsHostProcess", "baseline", "", f"{pod.base}.securityContext.windowsOptions.hostProcess", True)
    for c, path in pod.containers():
        if (_csc(c).get("windowsOptions") or {}).get("hostProcess"):
            yield Violation("windowsHostProcess", "baseline", c.get("name", ""),
                            f"{path}.securityContext.windowsOptions.hostProcess", True)


def _host_namespaces(pod: _Pod) -> Iterator[Violation]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(field):
            yield Violation("hostNamespaces", "baseline", "", f"{pod.base}.{field}", True)


def _privileged(pod: _Pod) -> Iterator[Violation]:
    for c, path in pod.containers():
        if _csc(c).get("privileged"):
            yield Violation("privileged", "baseline", c.get("name", ""), f"{path}.securityContext.privileged", True)


def _capabilities_baseline(pod: _Pod) -> Iterator[Violation]:
    for c, path in pod.containers():
        added = [str(a) for a in (_csc(c).get("capabilities") or {}).get("add") or []]
        bad = sorted(a for a in added if a not in BASELINE_CAPABILITIES)
        if bad:
            yield Violation("capabilities_baseline", "baseline", c.get("name", ""),
                            f"{path}.securityContext.capabilities.add", bad)


def _host_path_volumes(pod: _Pod) -> Iterator[Violation]:
    for v in pod.spec.get("volumes") or []:
        if isinstance(v, dict) and v.get("hostPath") is not None:
            yield Violation("hostPathVolumes", "baseline", "", f"{pod.base}.volumes[{v.get('name')}].hostPath",
                            (v.get("hostPath") or {}).get("path"))


def _host_ports(pod: _Pod) -> Iterator[Violation]:
    for c, path in pod.containers():
        for port in c.get("ports") or []:
            if isinstance(port, dict) and port.get("hostPort"):
                yield Violation("hostPorts", "baseline", c.get("name", ""),
                                f"{path}.ports[{port.get('name') or port.get('containerPort')}].hostPort",
                                port["hostPort"])


def _app_armor(pod: _Pod) -> Iterator[Violation]:
    kind = (pod.security.get("appArmorProfile") or {}).get("type")
    if kind is not None and kind not in GOOD_PROFILE_TYPES:
        yield Violation("appArmorProfile", "baseline", "", f"{pod.base}.securityContext.appArmorProfile.type", kind)
    for c, path in pod.containers():
        kind = (_csc(c).get("appArmorProfile") or {}).get("type")
        if kind is not None and kind not in GOOD_PROFILE_TYPES:
            yield Violation("appArmorProfile", "baseline", c.get("name", ""),
                            f"{path}.securityContext.appArmorProfile.type", kind)
    for key, value in sorted(pod.annotations.items()):
        if key.startswith(APPARMOR_ANNOTATION) and value and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            yield Violation("appArmorProfile", "baseline", key[len(APPARMOR_ANNOTATION):],
                            f'{pod.meta}.annotations["{key}"]', value)


def _selinux(pod: _Pod) -> Iterator[Violation]:
    def bad(options: dict[str, Any]) -> bool:
        return options.get("type", "") not in SELINUX_TYPES or bool(options.get("user")) or bool(options.get("role"))

    if bad(pod.security.get("seLinuxOptions") or {}):
        yield Violation("seLinuxOptions", "baseline", "", f"{pod.base}.securityContext.seLinuxOptions",
                        pod.security.get("seLinuxOptions"))
    for c, path in pod.containers():
        if bad(_csc(c).get("seLinuxOptions") or {}):
            yield Violation("seLinuxOptions", "baseline", c.get("name", ""), f"{path}.securityContext.seLinuxOptions",
                            _csc(c).get("seLinuxOptions"))


def _proc_mount(pod: _Pod) -> Iterator[Violation]:
    for c, path in pod.containers():
        mount = _csc(c).get("procMount")
        if mount not in (None, "", "Default"):
            yield Violation("procMount", "baseline", c.get("name", ""), f"{path}.securityContext.procMount", mount)


def _seccomp_baseline(pod: _Pod) -> Iterator[Violation]:
    if (pod.security.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield Violation("seccompProfile_baseline", "baseline", "", f"{pod.base}.securityContext.seccompProfile.type",
                        "Unconfined")
    for c, path in pod.containers():
        if (_csc(c).get("seccompProfile") or {}).get("type") == "Unconfined":
            yield Violation("seccompProfile_baseline", "baseline", c.get("name", ""),
                            f"{path}.securityContext.seccompProfile.type", "Unconfined")


def _sysctls(pod: _Pod) -> Iterator[Violation]:
    for s in pod.security.get("sysctls") or []:
        if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS:
            yield Violation("sysctls", "baseline", "", f"{pod.base}.securityContext.sysctls[{s.get('name')}]",
                            s.get("name"))


def _host_probes(pod: _Pod) -> Iterator[Violation]:
    for c, path in pod.containers():
        handlers = [(p, c.get(p)) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(f"lifecycle.{h}", (c.get("lifecycle") or {}).get(h)) for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = ((handler or {}).get(action) or {}).get("host") if isinstance(handler, dict) else None
                if host:
                    yield Violation("hostProbesAndHostLifecycle", "baseline", c.get("name", ""),
                                    f"{path}.{where}.{action}.host", host)


def _restricted_volumes(pod: _Pod) -> Iterator[Violation]:
    for v in pod.spec.get("volumes") or []:
        if not isinstance(v, dict) or v.get("hostPath") is not None:
            continue  # hostPath is the baseline control (upstream overrides it with this one at restricted)
        sources = [k for k in v if k != "name"]
        if not any(s in RESTRICTED_VOLUME_SOURCES for s in sources):
            yield Violation("restrictedVolumes", "restricted", "", f"{pod.base}.volumes[{v.get('name')}]",
                            sources[0] if sources else "unknown")


def _privilege_escalation(pod: _Pod) -> Iterator[Violation]:
    if pod.windows:  # exempt since 1.25 (check_allowPrivilegeEscalation.go)
        return
    for c, path in pod.containers():
        if _csc(c).get("allowPrivilegeEscalation") is not False:
            yield Violation("allowPrivilegeEscalation", "restricted", c.get("name", ""),
                            f"{path}.securityContext.allowPrivilegeEscalation", _csc(c).get("allowPrivilegeEscalation"))


def _run_as_non_root(pod: _Pod) -> Iterator[Violation]:
    pod_value = pod.security.get("runAsNonRoot")
    if pod_value is False:
        yield Violation("runAsNonRoot", "restricted", "", f"{pod.base}.securityContext.runAsNonRoot", False)
    for c, path in pod.containers():
        value = _csc(c).get("runAsNonRoot")
        if value is False or (value is None and pod_value is not True):
            yield Violation("runAsNonRoot", "restricted", c.get("name", ""), f"{path}.securityContext.runAsNonRoot",
                            value)


def _run_as_user(pod: _Pod) -> Iterator[Violation]:
    if pod.security.get("runAsUser") == 0:
        yield Violation("runAsUser", "restricted", "", f"{pod.base}.securityContext.runAsUser", 0)
    for c, path in pod.containers():
        if _csc(c).get("runAsUser") == 0:
            yield Violation("runAsUser", "restricted", c.get("name", ""), f"{path}.securityContext.runAsUser", 0)


def _seccomp_restricted(pod: _Pod) -> Iterator[Violation]:
    if pod.windows:
        return
    pod_type = (pod.security.get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in GOOD_PROFILE_TYPES:
        yield Violation("seccompProfile_restricted", "restricted", "", f"{pod.base}.securityContext.seccompProfile.type",
                        pod_type)
    pod_ok = pod_type in GOOD_PROFILE_TYPES
    for c, path in pod.containers():
        profile = _csc(c).get("seccompProfile")
        kind = (profile or {}).get("type") if profile is not None else None
        if (profile is not None and kind not in GOOD_PROFILE_TYPES) or (profile is None and not pod_ok):
            yield Violation("seccompProfile_restricted", "restricted", c.get("name", ""),
                            f"{path}.securityContext.seccompProfile.type", kind)


def _capabilities_restricted(pod: _Pod) -> Iterator[Violation]:
    if pod.windows:
        return
    for c, path in pod.containers():
        caps = _csc(c).get("capabilities") or {}
        if "ALL" not in [str(d) for d in caps.get("drop") or []]:
            yield Violation("capabilities_restricted", "restricted", c.get("name", ""),
                            f"{path}.securityContext.capabilities.drop", caps.get("drop"))
        extra = sorted(str(a) for a in caps.get("add") or [] if a != "NET_BIND_SERVICE")
        if extra:
            yield Violation("capabilities_restricted", "restricted", c.get("name", ""),
                            f"{path}.securityContext.capabilities.add", extra)


RULES: tuple[Rule, ...] = (
    _host_process, _host_namespaces, _privileged, _capabilities_baseline, _host_path_volumes, _host_ports,
    _app_armor, _selinux, _proc_mount, _seccomp_baseline, _sysctls, _host_probes,
    _restricted_volumes, _privilege_escalation, _run_as_non_root, _run_as_user, _seccomp_restricted,
    _capabilities_restricted,
)


def _pod_of(obj: Manifest) -> _Pod | None:
    spec = pod_spec(obj)
    if spec is None:
        return None
    annotations = pod_metadata(obj).get("annotations") or {}
    return _Pod(obj, spec, dict(annotations), ".".join(POD_SPEC_PATHS[obj["kind"]]), ".".join(pod_metadata_path(obj)))


def pod_violations(obj: Manifest) -> list[Violation]:
    """Every Pod Security Standards control the object's pod template breaks (empty for non-workloads)."""
    pod = _pod_of(obj)
    if pod is None:
        return []
    return [v for rule in RULES for v in rule(pod)]


def level_of(violations: Iterable[Violation]) -> str:
    """The most restrictive level the pod satisfies: restricted, baseline or privileged."""
    levels = {v.level for v in violations}
    return "privileged" if "baseline" in levels else "baseline" if "restricted" in levels else "restricted"


@dataclass(frozen=True)
class WorkloadPosture:
    subject: str
    level: str
    violations: tuple[Violation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "violations": [v.to_dict() for v in self.violations]}


def postures(manifests: Iterable[Manifest]) -> dict[tuple[str, str, str, str], WorkloadPosture]:
    """Resource key -> the workload's level and violations, for every object with a pod template."""
    out = {}
    for obj in manifests:
        if obj.get("kind") not in POD_SPEC_PATHS:
            continue
        found = pod_violations(obj)
        key = resource_key(obj)
        out[key] = WorkloadPosture(describe(key), level_of(found), tuple(found))
    return out


def hardening_findings(base: list[Manifest], other: list[Manifest], *, mode: str,
                       variants: tuple[str, str]) -> list[Finding]:
    """Each control `other` newly breaks for a workload, one finding per (workload, control, container).

    Error when the workload's level in `other` is below its level in `base`; a workload only `other` installs
    is held to the lowest level `base`'s workloads keep in that namespace (restricted when there are none),
    since a namespace enforcing that level would reject it. Warning otherwise.
    """
    before, after = postures(base), postures(other)
    floor: dict[str, str] = {}
    for key, post in before.items():
        current = floor.get(key[2], "restricted")
        floor[key[2]] = min(current, post.level, key=LEVELS.index)
    base_name, other_name = variants
    findings = []
    for key, post in sorted(after.items()):
        old = before.get(key)
        old_keys = {v.key for v in old.violations} if old else set()
        reference = old.level if old else floor.get(key[2], "restricted")
        new = [v for v in post.violations if v.key not in old_keys]
        if not new:
            continue
        crossed = LEVELS.index(post.level) < LEVELS.index(reference)
        grouped: dict[tuple[str, str], list[Violation]] = {}
        for v in new:
            grouped.setdefault((v.control, v.container), []).append(v)
        for (control, container), items in sorted(grouped.items()):
            where = f"container {container}" if container else "the pod"
            was = f"{old.level} in {base_name}" if old else \
                f"not installed by {base_name}, whose workloads in {key[2] or 'the cluster'} are {reference}"
            message = (f"{post.subject}: {where} breaks the Pod Security Standards `{control}` control "
                       f"({items[0].level} level) in {other_name} at {', '.join(v.path for v in items)}; "
                       f"workload level {post.level} in {other_name}, {was}")
            findings.append(Finding(
                f"hardening.{control}", Severity.ERROR if crossed else Severity.WARNING, CATEGORY, mode, variants,
                post.subject, message,
                {"variant": other_name, "baseline": base_name, "control": control, "control_level": items[0].level,
                 "container": container, "fields": [v.to_dict() for v in items], "level": post.level,
                 "baseline_level": reference, "new_workload": old is None, "crossed_level": crossed},
            ))
    return findings
