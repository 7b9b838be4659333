"""Static RBAC evaluator vs the real authorizer: the same questions to `harness.rbac.evaluator` and to a real
kube-apiserver (SubjectAccessReview, `--authorization-mode=Node,RBAC`) on a control plane where the pair
was installed, and the agreement per ServiceAccount.

Questions: for every ServiceAccount the renders mention (declared or bound, `rbac.known_service_accounts`),
the driver identities and the workflow ServiceAccount of the mode, (a) the fixed driver questions of
`harness.rbac.live.DEFAULT_ACCESS` in `kubeflow` and the user namespace, and (b) one question per grant the
static evaluator derives (its own verb/group/resource/subresource/first resource name, in its scope).
Wildcard grants are asked through (a) only. The real cluster also holds what the static index does not
see (built-in ClusterRoles and bindings, prerequisites' RBAC): that is where disagreements are expected,
and each one is reported for docs/rbac.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.boundary.kube import Kube
from harness.models import Identity
from harness.rbac.evaluator import RbacIndex, grants, known_service_accounts, predict_access
from harness.rbac.live import Check, checks_from_identities, snapshot


def questions(index: RbacIndex, identities: Iterable[Identity], namespaces: Sequence[str]) -> list[Check]:
    chosen = sorted({*identities, *known_service_accounts(index)}, key=lambda i: (i.namespace, i.name))
    found = set(checks_from_identities([i.ref for i in chosen], namespaces))
    for sa in chosen:
        for grant in grants(index, sa):
            if grant.non_resource or "*" in (grant.api_group, grant.verb) or grant.resource.startswith("*"):
                continue
            resource, _, sub = grant.resource.partition("/")
            if sub == "*":
                continue
            name = grant.resource_names[0] if grant.resource_names else ""
            scope = "" if grant.scope == "cluster" else grant.scope.split(":", 1)[1]
            found.add(Check(sa.ref, grant.verb, resource, grant.api_group, sub, scope, name))
    return sorted(found)


def agreement(kube: Kube, index: RbacIndex, checks: Sequence[Check]) -> dict[str, dict[str, Any]]:
    """identity -> {asked, agree, disagreements: [{question, static, live}]} over real SubjectAccessReviews."""
    static: Mapping[Check, bool] = {c: a["allowed"] for c, a in zip(checks, predict_access(index, checks))}
    per: dict[str, dict[str, Any]] = {}
    for entry in snapshot(kube, checks, static):
        row = per.setdefault(entry["identity"], {"asked": 0, "agree": 0, "disagreements": []})
        row["asked"] += 1
        if entry["allowed"] == entry["static_allowed"]:
            row["agree"] += 1
        else:
            row["disagreements"].append({k: entry[k] for k in ("verb", "group", "resource", "subresource",
                                                               "namespace", "name")}
                                        | {"static": entry["static_allowed"], "live": entry["allowed"]})
    return per


def summary_lines(label: str, per: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    asked = sum(r["asked"] for r in per.values())
    agree = sum(r["agree"] for r in per.values())
    lines.append(f"{label}: {agree}/{asked} answers agree ({100 * agree / asked if asked else 0:.1f} %) "
                 f"over {len(per)} ServiceAccounts")
    for identity, row in sorted(per.items()):
        lines.append(f"  {identity}: {row['agree']}/{row['asked']}")
        for d in row["disagreements"]:
            what = f"{d['verb']} {d['group'] + '/' if d['group'] else ''}{d['resource']}" \
                   f"{'/' + d['subresource'] if d['subresource'] else ''}{' ' + d['name'] if d['name'] else ''}"
            lines.append(f"    DISAGREE {what} in {d['namespace'] or '(cluster)'}: static "
                         f"{'allow' if d['static'] else 'deny'}, apiserver {'allow' if d['live'] else 'deny'}")
    return lines
