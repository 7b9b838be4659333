"""Static RBAC: effective ServiceAccount permissions from rendered manifests, and driver-identity diffs.

Follows the Kubernetes RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`, `pkg/apis/rbac/v1/
evaluation_helpers.go`) and the ClusterRole aggregation controller rule for rule. Written by hand because no
maintained Python library evaluates RBAC offline; it is pure (manifests in, data and Findings out).

- `index_manifests(manifests)` -> `RbacIndex` (aggregation resolved, dangling bindings recorded)
- `can(index, sa, verb, resource, namespace, ...)` -> bool, the authorizer's answer
- `grants(index, sa)` -> normalised `Grant`s; `permission_matrix(...)` -> JSON-able dict for static.json
- `compare_driver_permissions(baseline, other, mode)` -> `rbac.permission-*` Findings
- `cluster_scoped_grants(...)`, `cluster_wide_grants(...)` -> `rbac.cluster-*` Findings
- `static_rbac(config, mode, pairs, manifests)` -> the static tier's findings and static.json data
- `predict_access(index, checks)` -> the static answer to each live (SubjectAccessReview) check
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import DATA_DIR
from harness.manifests.labels import selector_matches
from harness.manifests.yamlload import load_all
from harness.models import Finding, Identity, Mode, Severity, Variant

if TYPE_CHECKING:
    from harness.config import Config

CATEGORY = "rbac"
ALL = "*"
CLUSTER = "cluster"
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    origin: str = field(default="", compare=False)  # the ClusterRole an aggregated rule came from

    @classmethod
    def parse(cls, raw: Mapping[str, Any], origin: str = "") -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in (raw.get(key) or ()))

        return cls(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"),
                   strings("nonResourceURLs"), origin)


@dataclass(frozen=True)
class Role:
    kind: str  # Role | ClusterRole
    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    rules: tuple[Rule, ...] = ()
    selectors: tuple[Mapping[str, Any], ...] | None = None  # aggregationRule.clusterRoleSelectors

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Subject:
    kind: str  # ServiceAccount | User | Group
    name: str
    namespace: str = ""  # resolved: a RoleBinding's SA subject defaults to the binding's namespace

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str  # "" for ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def role_ref(self) -> str:
        return f"{self.role_kind} {self.namespace}/{self.role_name}" if self.role_kind == "Role" \
            else f"{self.role_kind} {self.role_name}"


@dataclass(frozen=True)
class RbacIndex:
    roles: Mapping[tuple[str, str], Role]  # (namespace, name)
    cluster_roles: Mapping[str, Role]  # rules already aggregated
    bindings: tuple[Binding, ...]  # RoleBindings and ClusterRoleBindings
    dangling: tuple[Binding, ...]  # bindings whose roleRef does not exist in the manifests: they grant nothing
    service_accounts: frozenset[Identity]  # declared ServiceAccount objects
    problems: tuple[str, ...] = ()  # e.g. an invalid aggregation selector

    def role_for(self, binding: Binding) -> Role | None:
        if binding.role_kind == "ClusterRole":
            return self.cluster_roles.get(binding.role_name)
        if binding.role_kind == "Role" and binding.kind == "RoleBinding":
            return self.roles.get((binding.namespace, binding.role_name))
        return None  # a ClusterRoleBinding cannot reference a Role


@dataclass(frozen=True, order=True)
class Grant:
    """One normalised permission: `verb` on `resource` (`x/sub` for subresources) in `scope`."""

    scope: str  # "cluster" | "namespace:<ns>"
    api_group: str
    resource: str  # a resource, `res/sub`, `*`, `*/sub`, or for non_resource a URL path
    verb: str
    resource_names: tuple[str, ...] = ()  # empty = every object
    via: str = ""  # "<binding ref> -> <role ref>" (plus aggregation origin / group subject)
    non_resource: bool = False

    @property
    def key(self) -> tuple[str, str, str, str, tuple[str, ...], bool]:
        return (self.scope, self.api_group, self.resource, self.verb, self.resource_names, self.non_resource)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"scope": self.scope, "api_group": self.api_group, "resource": self.resource,
                                "verb": self.verb, "resource_names": list(self.resource_names), "via": self.via}
        if self.non_resource:
            data["non_resource_url"] = True
        return data

    def describe(self) -> str:
        group = f"{self.api_group}/" if self.api_group else ""
        names = f" [{', '.join(self.resource_names)}]" if self.resource_names else ""
        return f"{self.verb} {group}{self.resource}{names} in {self.scope} via {self.via}"


def scope_of(namespace: str) -> str:
    return f"namespace:{namespace}" if namespace else CLUSTER


# ---------------------------------------------------------------- built-in ClusterRoles

# The default ClusterRoles a real API server creates (cluster-admin, admin, edit, view, system:*), dumped from
# the control plane the install tier builds (harness/cluster/controlplane.py) as
# `harness/data/builtin-clusterroles-<kubernetes version>.yaml`: data from a real server, never hand-written.
BUILTIN_ROLES_DIR = DATA_DIR
BUILTIN_ROLE_NAMES = ("cluster-admin", "admin", "edit", "view")  # plus every `system:` role


def is_builtin_role_name(name: str) -> bool:
    return name in BUILTIN_ROLE_NAMES or name.startswith("system:")


@dataclass(frozen=True)
class BuiltinRoles:
    version: str  # "" when no dump is present: bindings to built-in roles are then not verified
    source: str
    cluster_roles: tuple[Mapping[str, Any], ...] = ()
    @cached_property
    def parsed(self) -> Mapping[str, Role]:
        """The same roles parsed once: every index starts from them (60 indexes per static run)."""
        return {str((r.get("metadata") or {}).get("name", "")): _role(r, "ClusterRole") for r in self.cluster_roles}

    def summary(self) -> dict[str, Any]:
        return {"version": self.version or None, "source": self.source or None, "count": len(self.cluster_roles)}


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.stem))


# cached: constant data of the installed package (harness/data), read once like an import; no run data
@cache
def builtin_cluster_roles() -> BuiltinRoles:
    """The newest `builtin-clusterroles-<version>.yaml` dump shipped in harness/data (a List, a ClusterRoleList
    or a YAML stream)."""
    files = sorted(BUILTIN_ROLES_DIR.glob("builtin-clusterroles-*.yaml"), key=_version_key)
    if not files:
        return BuiltinRoles("", "")
    path = files[-1]
    roles: list[Mapping[str, Any]] = []
    for doc in load_all(path.read_text()):
        if isinstance(doc, Mapping):
            items = doc.get("items") if isinstance(doc.get("items"), list) else [doc]
            roles += [i for i in items if isinstance(i, Mapping) and i.get("kind", "ClusterRole") == "ClusterRole"]
    roles = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", **r} for r in roles]
    return BuiltinRoles(path.stem.removeprefix("builtin-clusterroles-"), str(path), tuple(roles))


# ---------------------------------------------------------------- index


def index_manifests(manifests: Iterable[Mapping[str, Any]], builtins: BuiltinRoles | None = None) -> RbacIndex:
    """Index the RBAC objects of a render. Later duplicates of kind/namespace/name win, as with apply.

    The cluster's built-in ClusterRoles (`builtin_cluster_roles()`, or `builtins`) come first, so a binding
    to `edit` or `system:...` reports what it grants and a render's own ClusterRole of that name wins.
    """
    builtins = builtin_cluster_roles() if builtins is None else builtins
    roles: dict[tuple[str, str], Role] = {}
    cluster_roles: dict[str, Role] = dict(builtins.parsed)  # first: a render's own role of that name wins
    bindings: dict[tuple[str, str, str], Binding] = {}
    service_accounts: set[Identity] = set()
    for doc in manifests:
        if not isinstance(doc, Mapping):
            continue
        kind = doc.get("kind")
        api_version = str(doc.get("apiVersion", ""))
        if (kind == "ServiceAccount" and api_version != "v1") or (
                kind in RBAC_KINDS and not api_version.startswith("rbac.authorization.k8s.io/")):
            continue
        meta = doc.get("metadata") or {}
        name = str(meta.get("name", ""))
        # kubectl apply puts an object without a namespace into the context's namespace, normally `default`
        namespace = str(meta.get("namespace") or "default")
        if kind == "ServiceAccount":
            service_accounts.add(Identity(namespace, name))
        elif kind == "Role":
            roles[(namespace, name)] = _role(doc, kind, namespace)
        elif kind == "ClusterRole":
            cluster_roles[name] = _role(doc, kind)
        elif kind in ("RoleBinding", "ClusterRoleBinding"):
            ns = namespace if kind == "RoleBinding" else ""
            ref = doc.get("roleRef") or {}
            subjects = tuple(_subject(s, ns) for s in doc.get("subjects") or ())
            bindings[(kind, ns, name)] = Binding(kind, name, ns, str(ref.get("kind", "")),
                                                 str(ref.get("name", "")), subjects)
    aggregated, problems = _aggregate(cluster_roles)
    partial = RbacIndex(roles, aggregated, (), (), frozenset())
    ordered = tuple(sorted(bindings.values(), key=lambda b: (b.kind, b.namespace, b.name)))
    dangling = tuple(b for b in ordered if partial.role_for(b) is None)
    return RbacIndex(roles, aggregated, ordered, dangling, frozenset(service_accounts), tuple(problems))


def _role(doc: Mapping[str, Any], kind: str, namespace: str = "") -> Role:
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", ""))
    aggregation = doc.get("aggregationRule")
    selectors = None
    if kind == "ClusterRole" and aggregation is not None:
        selectors = tuple((aggregation or {}).get("clusterRoleSelectors") or ())
    return Role(kind, name, namespace, dict(meta.get("labels") or {}),
                tuple(Rule.parse(r, name) for r in doc.get("rules") or ()), selectors)


def _subject(raw: Mapping[str, Any], binding_namespace: str) -> Subject:
    kind = str(raw.get("kind", ""))
    namespace = str(raw.get("namespace") or "")
    if kind == "ServiceAccount" and not namespace:
        namespace = binding_namespace  # the authorizer's rule; "" for a ClusterRoleBinding matches no SA
    return Subject(kind, str(raw.get("name", "")), namespace)


def _aggregate(cluster_roles: dict[str, Role]) -> tuple[dict[str, Role], list[str]]:
    """The aggregation controller, run to its fixed point (aggregated roles may select aggregated roles).

    Like the controller, an aggregated ClusterRole's rules are replaced by the union of the rules of every
    other ClusterRole matching any selector (itself excluded), deduplicated, sorted by role name.
    """
    current = dict(cluster_roles)
    problems: list[str] = []
    for _ in range(len(current) + 1):
        changed = False
        for name, role in sorted(current.items()):
            if role.selectors is None:
                continue
            rules: list[Rule] = []
            for selector in role.selectors:
                try:
                    matched = [r for n, r in sorted(current.items())
                               if n != name and selector_matches(selector, r.labels)]
                except ValueError as exc:
                    problems.append(f"ClusterRole {name}: {exc}")
                    continue
                for other in matched:
                    rules.extend(rule for rule in other.rules if rule not in rules)
            if tuple(rules) != role.rules:
                current[name] = Role(role.kind, role.name, "", role.labels, tuple(rules), role.selectors)
                changed = True
        if not changed:
            break
    return current, sorted(set(problems))


# ---------------------------------------------------------------- authorizer


def subject_applies(subject: Subject, sa: Identity) -> bool:
    """Does a binding subject cover this ServiceAccount? (rbac.appliesToUser for SA user info)."""
    if subject.kind == "ServiceAccount":
        return subject.name == sa.name and subject.namespace == sa.namespace
    if subject.kind == "User":
        return subject.name == f"system:serviceaccount:{sa.namespace}:{sa.name}"
    if subject.kind == "Group":
        return subject.name in ("system:serviceaccounts", f"system:serviceaccounts:{sa.namespace}",
                                "system:authenticated")
    return False


def _applicable(index: RbacIndex, sa: Identity, namespace: str | None) -> Iterable[tuple[Binding, Subject, Role]]:
    """(binding, matching subject, role) for every live binding naming `sa`; namespace None = all scopes."""
    for binding in index.bindings:
        if binding.kind == "RoleBinding" and namespace is not None and binding.namespace != namespace:
            continue
        role = index.role_for(binding)
        if role is None:
            continue
        subject = next((s for s in binding.subjects if subject_applies(s, sa)), None)
        if subject is not None:
            yield binding, subject, role


def verb_matches(rule: Rule, verb: str) -> bool:
    return any(v in (ALL, verb) for v in rule.verbs)


def api_group_matches(rule: Rule, group: str) -> bool:
    return any(g in (ALL, group) for g in rule.api_groups)


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """`*` matches everything (subresources too); `*/sub` matches any resource's `sub`."""
    for resource in rule.resources:
        if resource in (ALL, combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    """A rule with resourceNames only matches requests that name one of them (never an unnamed list)."""
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    return any(_url_covers(u, path) for u in rule.non_resource_urls)


def can(index: RbacIndex, sa: Identity, verb: str, resource: str, namespace: str, *, api_group: str = "",
        subresource: str = "", name: str = "") -> bool:
    """Would the RBAC authorizer allow this resource request? `resource` may be `res/sub`.

    namespace "" is a cluster-scoped request: only ClusterRoleBindings apply.
    """
    if not subresource and "/" in resource:
        resource, subresource = resource.split("/", 1)
    combined = f"{resource}/{subresource}" if subresource else resource
    for _binding, _subject, role in _applicable(index, sa, namespace):
        for rule in role.rules:
            if (verb_matches(rule, verb) and api_group_matches(rule, api_group)
                    and resource_matches(rule, combined, subresource) and resource_name_matches(rule, name)):
                return True
    return False


def can_access_url(index: RbacIndex, sa: Identity, verb: str, path: str) -> bool:
    """A non-resource request (e.g. GET /metrics): only ClusterRoleBindings grant these."""
    for binding, _subject, role in _applicable(index, sa, ""):
        if binding.kind == "ClusterRoleBinding" and any(
                verb_matches(r, verb) and non_resource_url_matches(r, path) for r in role.rules):
            return True
    return False


# ---------------------------------------------------------------- listing


def grants(index: RbacIndex, sa: Identity) -> list[Grant]:
    """Every permission `sa` holds, one Grant per (scope, group, resource, verb, names, path)."""
    found: set[Grant] = set()
    for binding, subject, role in _applicable(index, sa, None):
        scope = scope_of(binding.namespace)
        path = f"{binding.ref} -> {binding.role_ref}"
        if subject.kind != "ServiceAccount":
            path += f" (as {subject.ref})"
        for rule in role.rules:
            via = path if rule.origin in ("", role.name) else f"{path} (aggregated from ClusterRole {rule.origin})"
            if binding.kind == "ClusterRoleBinding":
                for url in rule.non_resource_urls:
                    found.update(Grant(CLUSTER, "", url, verb, (), via, True) for verb in rule.verbs)
            for group in rule.api_groups:
                for resource in rule.resources:
                    found.update(Grant(scope, group, resource, verb, tuple(sorted(rule.resource_names)), via)
                                 for verb in rule.verbs)
    return sorted(found)


def known_service_accounts(index: RbacIndex) -> list[Identity]:
    """Declared ServiceAccounts plus every SA a binding names (it may be created elsewhere)."""
    named = {Identity(s.namespace, s.name) for b in index.bindings for s in b.subjects
             if s.kind == "ServiceAccount" and s.namespace}
    return sorted(index.service_accounts | named, key=lambda i: (i.namespace, i.name))


def dangling_for(index: RbacIndex, sa: Identity) -> list[Binding]:
    return [b for b in index.dangling if any(subject_applies(s, sa) for s in b.subjects)]


def permission_matrix(index: RbacIndex, identities: Iterable[Identity] | None = None) -> dict[str, Any]:
    """JSON-able `{sa ref: {"grants": [...], "dangling_bindings": [...]}}` for static.json."""
    chosen = list(identities) if identities is not None else known_service_accounts(index)
    matrix: dict[str, Any] = {}
    for sa in chosen:
        matrix[sa.ref] = {
            "declared": sa in index.service_accounts,
            "grants": [g.to_dict() for g in grants(index, sa)],
            "dangling_bindings": [{"binding": b.ref, "missing": b.role_ref} for b in dangling_for(index, sa)],
        }
    return matrix


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class DriverSide:
    """One variant's answer to "what can the driver do": its render and its driver identities."""

    variant: str
    manifests: Sequence[Mapping[str, Any]]
    identities: tuple[Identity, ...]


def driver_side(config: Config, variant: Variant, mode: Mode, manifests: Sequence[Mapping[str, Any]]) -> DriverSide:
    """Bind `{profile}` in the identities and add the profile-namespace objects (multi-user)."""
    identities = tuple(i.bind(mode.user_namespace) for i in variant.driver.identities_for(mode.name))
    return DriverSide(variant.name, [*manifests, *config.profile_objects(variant, mode)], identities)


def _held(side: DriverSide) -> list[tuple[Identity, Grant]]:
    index = index_manifests(side.manifests)
    return [(sa, g) for sa in side.identities for g in grants(index, sa)]


def _value_covers(a: str, b: str) -> bool:
    return a in (ALL, b)


def _resource_covers(a: str, b: str) -> bool:
    if a in (ALL, b):
        return True
    return a.startswith("*/") and "/" in b and b.split("/", 1)[1] == a[2:]


def _url_covers(a: str, b: str) -> bool:
    return a in (ALL, b) or (a.endswith("*") and b.startswith(a.rstrip("*")))


def _covers_except_names(a: Grant, b: Grant) -> bool:
    """Does `a` allow every request of `b` as far as scope, group, resource and verb go?"""
    if a.non_resource != b.non_resource:
        return False
    resource = _url_covers if a.non_resource else _resource_covers
    return ((a.scope == b.scope or a.scope == CLUSTER) and _value_covers(a.api_group, b.api_group)
            and resource(a.resource, b.resource) and _value_covers(a.verb, b.verb))


def _overlaps(a: Grant, b: Grant) -> bool:
    """Do `a` and `b` allow at least one common request?"""
    if a.non_resource != b.non_resource:
        return False
    resource = _url_covers if a.non_resource else _resource_covers
    return ((a.scope == b.scope or CLUSTER in (a.scope, b.scope))
            and (_value_covers(a.api_group, b.api_group) or _value_covers(b.api_group, a.api_group))
            and (resource(a.resource, b.resource) or resource(b.resource, a.resource))
            and (_value_covers(a.verb, b.verb) or _value_covers(b.verb, a.verb))
            and (not a.resource_names or not b.resource_names
                 or bool(set(a.resource_names) & set(b.resource_names))))


def _coverage(grant: Grant, others: Sequence[Grant]) -> tuple[str, list[Grant]]:
    """"full", "partial" or "none": how much of `grant` the other side's grants allow, with the overlaps."""
    candidates = [o for o in others if _covers_except_names(o, grant)]
    if any(not o.resource_names for o in candidates):
        return "full", []
    allowed = {n for o in candidates for n in o.resource_names}
    if grant.resource_names and set(grant.resource_names) <= allowed:
        return "full", []
    overlapping = [o for o in others if _overlaps(o, grant)]
    return ("partial", overlapping) if overlapping else ("none", [])


_CHANGES = {  # change -> (finding id, severity)
    "gained": ("rbac.permission-gained", Severity.ERROR),
    "broadened": ("rbac.permission-broadened", Severity.ERROR),
    "lost": ("rbac.permission-lost", Severity.WARNING),
    "narrowed": ("rbac.permission-narrowed", Severity.WARNING),
}


def compare_driver_permissions(baseline: DriverSide, other: DriverSide, mode: str) -> list[Finding]:
    """What `other`'s driver can do that `baseline`'s cannot, and the reverse, as grouped Findings.

    The union of each side's driver identities is compared: the question is what the driver can do,
    whoever it runs as. One Finding per (change, scope, api group, resource), verbs listed.
    """
    base_held, other_held = _held(baseline), _held(other)
    variants = (baseline.variant, other.variant)
    findings: list[Finding] = []
    base_refs = sorted(i.ref for i in baseline.identities)
    other_refs = sorted(i.ref for i in other.identities)
    if base_refs != other_refs:
        findings.append(Finding(
            "rbac.driver-identity-changed", Severity.INFO, CATEGORY, mode, variants,
            _subject_text(other.identities),
            f"the driver runs as {', '.join(other_refs) or 'nothing'} in {other.variant} and as "
            f"{', '.join(base_refs) or 'nothing'} in {baseline.variant}",
            {baseline.variant: base_refs, other.variant: other_refs},
        ))
    groups: dict[tuple[str, str, str, str], list[tuple[Identity, Grant, list[Grant]]]] = defaultdict(list)
    other_grants = [g for _, g in other_held]
    base_grants = [g for _, g in base_held]
    for sa, grant in other_held:
        cover, overlaps = _coverage(grant, base_grants)
        if cover != "full":
            groups[("gained" if cover == "none" else "broadened", grant.scope, grant.api_group,
                    grant.resource)].append((sa, grant, overlaps))
    for sa, grant in base_held:
        cover, overlaps = _coverage(grant, other_grants)
        if cover != "full":
            groups[("lost" if cover == "none" else "narrowed", grant.scope, grant.api_group,
                    grant.resource)].append((sa, grant, overlaps))
    for (change, scope, group, resource), items in sorted(groups.items()):
        findings.append(_permission_finding(change, scope, group, resource, items, baseline, other, mode))
    return findings


def _permission_finding(change: str, scope: str, group: str, resource: str,
                        items: list[tuple[Identity, Grant, list[Grant]]], baseline: DriverSide,
                        other: DriverSide, mode: str) -> Finding:
    finding_id, severity = _CHANGES[change]
    holder, counterpart = (other, baseline) if change in ("gained", "broadened") else (baseline, other)
    verbs = sorted({g.verb for _, g, _ in items})
    names = sorted({n for _, g, _ in items for n in g.resource_names})
    identities = tuple(sorted({sa for sa, _, _ in items}, key=lambda i: i.ref))
    what = f"{_verbs(verbs)} {_target(group, resource)}" + (f" [{', '.join(names)}]" if names else " (any name)")
    where = _where(scope)
    counterparts = sorted({o for _, _, overlaps in items for o in overlaps})
    if change in ("gained", "lost"):
        message = f"the {holder.variant} driver can {what} {where}; the {counterpart.variant} driver cannot"
    else:  # broadened (holder = other) or narrowed (holder = baseline): the holder's grant is the wider one
        message = (f"the {holder.variant} driver can {what} {where}, more than the {counterpart.variant} "
                   f"driver's {_summarise(counterparts)}")
    evidence: dict[str, Any] = {
        "change": change, "scope": scope, "api_group": group, "resource": resource, "verbs": verbs,
        "grants": [dict(g.to_dict(), identity=sa.ref, variant=holder.variant)
                   for sa, g, _ in sorted(items, key=lambda t: (t[0].ref, t[1]))],
    }
    if counterparts:
        evidence["compared_with"] = [dict(o.to_dict(), variant=counterpart.variant) for o in counterparts]
    return Finding(finding_id, severity, CATEGORY, mode, (baseline.variant, other.variant),
                   _subject_text(identities), message, evidence)


def _verbs(verbs: Iterable[str]) -> str:
    return ", ".join("every verb (*)" if v == ALL else v for v in sorted(verbs))


def _target(group: str, resource: str) -> str:
    return f"{group}/{resource}" if group else resource


def _where(scope: str) -> str:
    return "cluster-wide" if scope == CLUSTER else f"in namespace {scope.split(':', 1)[1]}"


def _summarise(grants_: Iterable[Grant]) -> str:
    """Grants folded by (scope, resource, names) with their verbs, e.g. `get, list configmaps [a] in ns x`."""
    folded: dict[tuple[str, str, str, tuple[str, ...]], set[str]] = defaultdict(set)
    for g in grants_:
        folded[(g.scope, g.api_group, g.resource, g.resource_names)].add(g.verb)
    parts = [f"{_verbs(verbs)} {_target(group, resource)}"
             + (f" [{', '.join(names)}]" if names else "") + f" {_where(scope)}"
             for (scope, group, resource, names), verbs in sorted(folded.items())]
    return "; ".join(parts) or "nothing"


def _subject_text(identities: Iterable[Identity]) -> str:
    refs = sorted(i.ref for i in identities)
    return ", ".join(f"ServiceAccount {r}" for r in refs) or "no driver identity"


def dangling_driver_bindings(side: DriverSide, mode: str) -> list[Finding]:
    """A binding to a driver identity whose role is not in the render: its rights are unknown here."""
    index = index_manifests(side.manifests)
    found = []
    for sa in side.identities:
        for binding in dangling_for(index, sa):
            builtin = (binding.role_kind == "ClusterRole" and is_builtin_role_name(binding.role_name)
                       and not builtin_cluster_roles().version)
            why = (f"a built-in ClusterRole of every cluster whose rules are not known here (no "
                   f"{BUILTIN_ROLES_DIR.name}/builtin-clusterroles-<version>.yaml dump): not verified"
                   if builtin else "which the render does not contain, so it grants nothing in this analysis")
            found.append(Finding(
                "rbac.dangling-binding", Severity.WARNING, CATEGORY, mode, (side.variant,), binding.ref,
                f"{binding.ref} binds {sa.ref} ({side.variant} driver) to {binding.role_ref}, {why}",
                {"variant": side.variant, "identity": sa.ref, "binding": binding.ref, "missing": binding.role_ref},
            ))
    return found


# ---------------------------------------------------------------- cluster-scoped grants


@dataclass(frozen=True)
class ClusterGrant:
    binding: str
    cluster_role: str
    subject: str  # a ServiceAccount ref, or a Group that includes ServiceAccounts

    def to_dict(self) -> dict[str, str]:
        return {"binding": self.binding, "cluster_role": self.cluster_role, "subject": self.subject}


_SA_GROUPS = ("system:serviceaccounts", "system:authenticated")


def service_account_cluster_grants(index: RbacIndex) -> list[tuple[ClusterGrant, Binding]]:
    """ClusterRoleBindings that give ServiceAccounts (directly or through a group) cluster-wide rights."""
    found = []
    for binding in index.bindings:
        if binding.kind != "ClusterRoleBinding" or index.role_for(binding) is None:
            continue
        for s in binding.subjects:
            if s.kind == "ServiceAccount" and s.namespace:
                found.append((ClusterGrant(binding.name, binding.role_name, f"{s.namespace}/{s.name}"), binding))
            elif s.kind == "Group" and (s.name in _SA_GROUPS or s.name.startswith("system:serviceaccounts:")):
                found.append((ClusterGrant(binding.name, binding.role_name, f"Group {s.name}"), binding))
    return found


def _role_grants(index: RbacIndex, binding: Binding) -> list[dict[str, Any]]:
    role = index.role_for(binding)
    return [{"api_groups": list(r.api_groups), "resources": list(r.resources), "verbs": list(r.verbs),
             "resource_names": list(r.resource_names), "non_resource_urls": list(r.non_resource_urls)}
            for r in (role.rules if role else ())]


def cluster_scoped_grants(manifests: Sequence[Mapping[str, Any]], baseline_manifests: Sequence[Mapping[str, Any]],
                          mode: Mode | str, variants: tuple[str, str]) -> list[Finding]:
    """ClusterRoleBindings to ServiceAccounts in one render and not in the baseline's, and the reverse.

    `variants` is `(variant, baseline)`, naming `manifests` and `baseline_manifests`; Findings list them
    as `(baseline, variant)` like every pairwise comparison. A new grant is an error in a namespaced
    install (standalone, tls), a warning in a cluster-wide one; a removed grant is info.
    """
    variant, baseline = variants
    mode_name, namespaced = (mode, True) if isinstance(mode, str) else (mode.name, not mode.multi_user)
    index, base_index = index_manifests(manifests), index_manifests(baseline_manifests)
    mine = dict(service_account_cluster_grants(index))
    theirs = dict(service_account_cluster_grants(base_index))
    findings = []
    for grant, binding in sorted(mine.items(), key=lambda t: (t[0].binding, t[0].subject)):
        if grant in theirs:
            continue
        where = "namespaced" if namespaced else "cluster-wide"
        findings.append(Finding(
            "rbac.cluster-scoped-grant", Severity.ERROR if namespaced else Severity.WARNING, CATEGORY, mode_name,
            (baseline, variant), f"ClusterRoleBinding {grant.binding}",
            f"{variant} binds ClusterRole {grant.cluster_role} cluster-wide to {grant.subject} in its {where} "
            f"{mode_name} install; {baseline} has no such grant",
            dict(grant.to_dict(), variant=variant, rules=_role_grants(index, binding)),
        ))
    for grant, binding in sorted(theirs.items(), key=lambda t: (t[0].binding, t[0].subject)):
        if grant not in mine:
            findings.append(Finding(
                "rbac.cluster-scoped-grant-removed", Severity.INFO, CATEGORY, mode_name, (baseline, variant),
                f"ClusterRoleBinding {grant.binding}",
                f"{variant} does not bind ClusterRole {grant.cluster_role} cluster-wide to {grant.subject}; "
                f"{baseline} does",
                dict(grant.to_dict(), variant=baseline, rules=_role_grants(base_index, binding)),
            ))
    return findings


def cluster_wide_grants(manifests: Sequence[Mapping[str, Any]], mode: Mode, variant: str) -> list[Finding]:
    """One info Finding listing every ServiceAccount cluster-wide grant of a namespaced install."""
    if mode.multi_user:
        return []
    index = index_manifests(manifests)
    listed = service_account_cluster_grants(index)
    entries = [dict(g.to_dict(), rules=_role_grants(index, b)) for g, b in listed]
    summary = "; ".join(f"{g.binding}: ClusterRole {g.cluster_role} -> {g.subject}" for g, _ in listed) or "none"
    return [Finding(
        "rbac.cluster-wide-grants", Severity.INFO, CATEGORY, mode.name, (variant,), f"{variant} {mode.name} install",
        f"{len(listed)} cluster-wide ServiceAccount grant(s) in the namespaced {mode.name} install of {variant}: "
        f"{summary}",
        {"variant": variant, "grants": entries},
    )]


# ---------------------------------------------------------------- static tier entry point


def static_rbac(config: Config, mode: Mode, pairs: Sequence[tuple[Variant, Variant]],
                manifests: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[list[Finding], dict[str, Any]]:
    """All RBAC findings of one mode, and the data for static.json.

    `pairs` are (base, other) variants; `manifests` maps a variant name to its install render (cluster-scoped
    resources and overlay). Per variant: the driver permission matrix and the namespaced-install cluster-wide
    grants; per pair: the driver comparison and the new cluster-scoped grants.
    """
    names = sorted({v.name for pair in pairs for v in pair})
    variants = {v.name: v for pair in pairs for v in pair}
    sides = {n: driver_side(config, variants[n], mode, manifests[n]) for n in names}
    findings: list[Finding] = []
    data: dict[str, Any] = {"driver_permissions": {}, "dangling_bindings": {}, "problems": {},
                            "builtin_cluster_roles": builtin_cluster_roles().summary()}
    for name, side in sides.items():
        index = index_manifests(side.manifests)
        data["driver_permissions"][name] = permission_matrix(index, side.identities)
        data["dangling_bindings"][name] = [{"binding": b.ref, "missing": b.role_ref} for b in index.dangling]
        data["problems"][name] = list(index.problems)
        findings.extend(cluster_wide_grants(manifests[name], mode, name))
        findings.extend(dangling_driver_bindings(side, mode.name))
    for base, other in pairs:
        findings.extend(compare_driver_permissions(sides[base.name], sides[other.name], mode.name))
        findings.extend(cluster_scoped_grants(manifests[other.name], manifests[base.name], mode,
                                              (other.name, base.name)))
    return findings, data


def predict_access(index: RbacIndex, checks: Iterable[Sequence[str]]) -> list[dict[str, Any]]:
    """The static answer to each live check (`harness.rbac.live.Check`: identity, verb, resource, group,
    subresource, namespace, name), so the live SubjectAccessReview results can be compared with it."""
    answers = []
    for check in checks:
        identity, verb, resource, group, subresource, namespace, name = (*check, "", "", "", "")[:7]
        sa_namespace, _, sa_name = identity.partition("/")
        allowed = can(index, Identity(sa_namespace, sa_name), verb, resource, namespace, api_group=group,
                      subresource=subresource, name=name)
        answers.append({"identity": identity, "verb": verb, "resource": resource, "group": group,
                        "subresource": subresource, "namespace": namespace, "name": name, "allowed": allowed})
    return answers
