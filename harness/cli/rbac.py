"""`kfp-conformance rbac`: what a ServiceAccount (by default each variant's driver) may do, from the render."""

from __future__ import annotations

import argparse
import json
import re

from harness.cli.common import add_selection_args, resolve_selection
from harness.errors import HarnessError
from harness.models import Identity
from harness.rbac import evaluator as rbac

_SA = re.compile(r"^([a-z0-9.{}-]+)/([a-z0-9.:-]+)$")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rbac", help="effective RBAC permissions of the driver (or any ServiceAccount) in each variant's render",
        description="Evaluates Roles, ClusterRoles (with aggregation) and their bindings in the rendered install "
                    "of each selected variant and mode, like the Kubernetes RBAC authorizer. Prints every grant "
                    "of the driver identities (or --as), or answers one --can question (exit 0 yes, 1 no).",
    )
    add_selection_args(parser)
    parser.add_argument("--as", dest="as_sa", action="append", default=[], metavar="NAMESPACE/NAME",
                        help="ServiceAccount to evaluate instead of the variant's driver identities; repeatable; "
                             "{profile} stands for the mode's user namespace")
    parser.add_argument("--can", nargs="+", metavar="ARG",
                        help="VERB RESOURCE[/SUBRESOURCE] [NAMESPACE] [NAME]: answer one request (API group with "
                             "--api-group); NAMESPACE '' or omitted = a cluster-scoped request")
    parser.add_argument("--api-group", default="", help="API group for --can (default: core)")
    parser.add_argument("--json", action="store_true", help="print the permission matrix as JSON")
    parser.set_defaults(func=run)


def _identities(values: list[str]) -> list[Identity]:
    found = []
    for value in values:
        match = _SA.match(value)
        if not match:
            raise HarnessError(f"--as {value!r} is not NAMESPACE/NAME", "write it like kubeflow/ml-pipeline-driver")
        found.append(Identity(match[1], match[2]))
    return found


# The verbs Kubernetes authorizes: the API request verbs plus the special ones (bind, escalate, impersonate,
# use, approve, sign), as listed in the Kubernetes docs "Authorization: determine the request verb"
# (https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb).
# Not checked against a kubernetes source mirror (none is available here).
VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy",
                   "bind", "escalate", "impersonate", "use", "approve", "sign", "*"})


def parse_resource(text: str, api_group: str) -> tuple[str, str, bool]:
    """(api group, resource[/subresource], group given) from `workflows`, `workflows.argoproj.io` (kubectl's
    resource.group) or `argoproj.io/workflows` (group/resource; a first part with a '.' is a group)."""
    first, _, rest = text.partition("/")
    if rest and "." in first:
        return first, rest, True
    resource, _, group = first.partition(".")
    if group:
        return group, f"{resource}/{rest}" if rest else resource, True
    return api_group, text, bool(api_group)


def crd_groups(manifests: list[dict]) -> dict[str, str]:
    """plural -> API group of every CustomResourceDefinition in a render (a bare `workflows` is argoproj.io's)."""
    return {m["spec"]["names"]["plural"]: m["spec"]["group"] for m in manifests
            if m.get("kind") == "CustomResourceDefinition" and (m.get("spec") or {}).get("names", {}).get("plural")}


def run(args: argparse.Namespace) -> int:
    explicit = _identities(args.as_sa)
    if args.can is not None and not 2 <= len(args.can) <= 4:
        raise HarnessError("--can takes VERB RESOURCE[/SUBRESOURCE] [NAMESPACE] [NAME]",
                           "e.g. --can get secrets kubeflow mlpipeline-minio-artifact")
    if args.can is not None and args.can[0] not in VERBS:
        raise HarnessError(f"--can: {args.can[0]!r} is not a Kubernetes RBAC verb",
                           f"use one of {', '.join(sorted(VERBS))}")
    selection = resolve_selection(args)
    matrix: dict[str, dict] = {}
    answers: list[bool] = []
    for variant in selection.variants:
        tree = selection.sources[variant.name].path
        for mode in selection.modes:
            render = selection.renderer.render_install(tree, mode)
            side = rbac.driver_side(selection.config, variant, mode, render.manifests)
            identities = [i.bind(mode.user_namespace) for i in explicit] or list(side.identities)
            index = rbac.index_manifests(side.manifests)
            label = f"{variant.name}.{mode.name}"
            if args.can is not None:
                verb, asked, namespace, name = (*args.can, "", "")[:4]
                group, resource, explicit_group = parse_resource(asked, args.api_group)
                if not explicit_group:  # a bare custom resource: its group from the render's CRDs
                    group = crd_groups(side.manifests).get(resource.split("/")[0], "")
                for sa in identities:
                    allowed = rbac.can(index, sa, verb, resource, namespace, api_group=group, name=name)
                    answers.append(allowed)
                    print(f"{label} {sa.ref}: {'yes' if allowed else 'no'}")
                continue
            matrix[label] = rbac.permission_matrix(index, identities)
    if args.can is not None:
        return 0 if answers and all(answers) else 1
    if args.json:
        print(json.dumps(matrix, indent=2, sort_keys=True))
        return 0
    for label, per_sa in matrix.items():
        for ref, entry in per_sa.items():
            print(f"# {label} ServiceAccount {ref}" + ("" if entry["declared"] else " (not declared in the render)"))
            for grant in entry["grants"]:
                names = f" [{', '.join(grant['resource_names'])}]" if grant["resource_names"] else ""
                group = f"{grant['api_group']}/" if grant["api_group"] else ""
                print(f"  {grant['verb']:<8} {group}{grant['resource']}{names}  {grant['scope']}  via {grant['via']}")
            for dangling in entry["dangling_bindings"]:
                print(f"  (dangling) {dangling['binding']} -> {dangling['missing']} is not in the render")
            if not entry["grants"]:
                print("  no permissions")
    return 0
