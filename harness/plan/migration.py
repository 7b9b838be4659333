"""Migration of a live install between driver variants: the plan (PURE) and the verdict (PURE).

The plan is a normal `harness.plan.build` install of the old variant (same commands as `kfp-conformance run`),
followed by moves. A move applies the new variant's render in place, in the order a KFP release documents
an upgrade: cluster-scoped resources, then the mode's overlay, then readiness. Both applies are the same
server-side `kubectl apply` steps `harness.plan.build` builds for an install (`_PairBuilder.apply_file`), and
**without `--prune`**, as KFP documents its install (kubeflow/pipelines 81fc181b1 manifests/kustomize/README.md:21-23:
`kustomize build ... | kubectl apply -f -`, cluster-scoped resources first). Apply never deletes an object,
so the old variant's objects stay and are reported as orphans instead of disappearing silently. Inside an
object both variants render, server-side apply does drop what the old render set and the new one does not
(one field manager, `kfp-conformance`; kubernetes.io/docs/reference/using-api/server-side-apply "Field
management": a field no other manager owns is removed when the applier stops sending it).
In multi-user mode the profile controller's per-namespace objects are different: metacontroller deletes
the attachments the new `sync.py` no longer returns at its next sync, which the move triggers (see
`_resync_profile`). Only after the new Deployments roll out (and, in multi-user, the new variant's profile
objects appear) does verification run, and it ends by proving the new driver transport is live: a new
run's Workflow must call the driver the way the target variant compiles it (`driver_transport`).
`harness.live.migration` walks the plan; `verdict` judges what it recorded in `migration.json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from harness import SCHEMAS_DIR
from harness.config import Config
from harness.diff import describe as describe_changes
from harness.diff import walk
from harness.errors import HarnessError
from harness.models import TERMINAL_STATES, Finding, Scenario, Severity, Variant
from harness.plan.build import (
    DEFAULT_LOCAL_TAG,
    PairInput,
    PairPlan,
    Plan,
    PlanOptions,
    PlanStep,
    build_plan,
    digest_text,
    plan_text,
)
from harness.render.kustomize import resource_key
from harness.static.inventory import describe, index_manifests
from harness.static.orphans import static_orphans
from harness.static.workflows import driver_invocations

MIGRATION_VERSION = "1.1"
SCHEMA_PATH = SCHEMAS_DIR / "migration.schema.json"
DEFAULT_SCENARIOS = ("single-component", "artifacts")
IN_FLIGHT_SCENARIO = "long-running"
IN_FLIGHT_SECONDS = 600  # long enough to still be running while the new render is applied and rolls out
START_TIMEOUT = 300  # the in-flight run must reach RUNNING before the move starts
# "profile": the multi-user test scaffolding from the tree's test_data/kubernetes (plan._test_profile) belongs to
# the variant under test (central-driver's kubeflow-edit ClusterRole adds workflowtasksets for the agent's HTTP
# templates), so a move applies the new tree's files as a fresh install of that variant would.
MOVE_PHASES = ("images", "cluster-scoped", "overlay", "readiness", "profile")
# In-place moves are between driver transports that run beside an Argo agent (variant facts, not names):
# the per-task driver-pod mode rewrites the apiserver and every workflow, which is a reinstall, not a move.
MOVABLE_DRIVER_KINDS = frozenset({"executor-plugin", "central-service"})
# How each driver kind is compiled into a run's Workflow and how Argo executes it: the template field that
# calls the driver, and the type of the driver's node in `status.nodes`. Compile: kubeflow/pipelines
# 81fc181b1 backend/src/v2/compiler/argocompiler/container.go:185-269 (`container:` template),
# ntny/pipelines central-driver-poc-backup .../argocompiler/plugin.go:26 `driverPlugin` (`plugin:`),
# droctothorpe/pipelines central-driver-poc-backup .../argocompiler/plugin.go:35 `driverHTTPTemplate`
# (`http:`). Execute: argo-workflows v3.7.3 pkg/apis/workflow/v1alpha1/workflow_types.go:77-87
# (NodeTypePod "Pod", NodeTypeHTTP "HTTP", NodeTypePlugin "Plugin").
DRIVER_TRANSPORT: dict[str, tuple[str, str]] = {"pod": ("container", "Pod"), "executor-plugin": ("plugin", "Plugin"),
                                                "central-service": ("http", "HTTP")}
# The parent of the multi-user profile objects is the profile Namespace (the DecoratorController's
# `resources`); an annotation change on it is an update metacontroller syncs at once (see _resync_profile).
RESYNC_ANNOTATION = "kfp-conformance/profile-resync"


def plural(kind: str) -> str:
    """A kind's REST resource name as apimachinery guesses it (ConfigMap -> configmaps, NetworkPolicy ->
    networkpolicies, Endpoints -> endpoints): `UnsafeGuessKindToResource` with its `unpluralizedSuffixes`,
    kubernetes staging/src/k8s.io/apimachinery/pkg/api/meta/restmapper.go. Servers declare the real names in
    discovery; the guess holds for the built-in kinds orphans have."""
    lower = kind.lower()
    if lower.endswith("endpoints"):
        return lower
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def check_movable(old: Variant, new: Variant) -> None:
    """Only a move between the two agent-side driver transports is an in-place upgrade."""
    kinds = (old.driver.kind, new.driver.kind)
    if kinds[0] == kinds[1] or not set(kinds) <= MOVABLE_DRIVER_KINDS:
        raise HarnessError(f"migration {old.name} -> {new.name} ({kinds[0]} -> {kinds[1]}) is not supported",
                           "move between an executor-plugin and a central-service variant, e.g. "
                           "--from sidecar-plugin --to central-driver (add --rollback for the reverse)")


@dataclass
class Move:
    """One in-place change of variant, and the objects `kubectl apply` (no prune) is predicted to leave."""

    name: str  # upgrade | rollback
    from_variant: str
    to_variant: str
    orphans: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    transport: dict[str, str] = field(default_factory=dict)  # what a new run must show: template, node_type

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MigrationPlan:
    run_id: str
    mode: str
    variants: tuple[str, str]
    rollback: bool
    install: Plan  # the old variant's normal install (no scenarios)
    steps: list[PlanStep]  # everything after the install, in order
    moves: list[Move]
    scenarios: dict[str, str]  # scenario name -> compiled pipeline path (relative to the out dir)
    in_flight_seconds: int
    files: dict[str, str] = field(default_factory=dict)  # the new variant's renders

    @property
    def pair(self) -> str:
        return self.install.pairs[0].key

    def to_dict(self) -> dict[str, Any]:
        return {"migration_version": MIGRATION_VERSION, "run_id": self.run_id, "mode": self.mode,
                "variants": list(self.variants), "rollback": self.rollback, "scenarios": self.scenarios,
                "in_flight": {"scenario": IN_FLIGHT_SCENARIO, "seconds": self.in_flight_seconds},
                "install": self.install.to_dict(), "moves": [m.to_dict() for m in self.moves],
                "steps": [s.to_dict() for s in self.steps],
                "files": {path: digest_text(text) for path, text in sorted(self.files.items())}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_text(self) -> str:
        old, new = self.variants
        lines = [f"kfp-conformance migration plan {self.run_id}: {old} -> {new}"
                 + (f" -> {old} (rollback)" if self.rollback else "") + f", mode {self.mode}",
                 f"scenarios kept across the move: {', '.join(self.scenarios)}; in-flight run: "
                 f"{IN_FLIGHT_SCENARIO} sleeping {self.in_flight_seconds}s", "", "install:",
                 plan_text(self.install).rstrip(), "", "migration (kubectl apply without --prune: "
                 "objects of the old render stay and are reported as orphans; in multi-user the profile sync "
                 "deletes the old sync.py's attachments):"]
        for number, step in enumerate(self.steps, 1):
            timeout = f" (timeout {step.timeout}s)" if step.timeout else ""
            lines.append(f"  {number:2d}. [{step.phase}] {step.description}{timeout}")
            if step.argv:
                lines.append("      $ " + " ".join(step.argv))
            if step.manifest:
                lines.append(f"      file {step.manifest} {step.digest}")
        for move in self.moves:
            lines += ["", f"{move.name} {move.from_variant} -> {move.to_variant}: {len(move.orphans)} predicted "
                      f"orphan(s), {len(move.conflicts)} apply conflict(s); new runs must call the driver through "
                      f"`{move.transport.get('template')}:` templates ({move.transport.get('node_type')} nodes)"]
            lines += [f"  orphan {o['subject']} ({o['origin']}; {o['fate']})" for o in move.orphans]
            lines += [f"  conflict {c['subject']}: {c['message']}" for c in move.conflicts]
        return "\n".join(lines) + "\n"


# What happens to a predicted orphan. `kubectl apply` without --prune never deletes an object, so what the
# old render applied stays ("kept"). A per-profile-namespace object the old sync.py returned is different:
# metacontroller created it with a controllerRef to the Namespace and its decorator-controller annotation
# (metacontroller v4.11.22 pkg/controller/common/manage_children.go:303-308, decorator/controller.go:701-743
# getChildren), and at the next sync it deletes every such child the hook no longer returns
# (manage_children.go:131-203 ManageChildren -> deleteChildren), if the new DecoratorController still
# lists the kind among its attachments.
KEPT, DELETED_BY_SYNC = "kept (kubectl apply never deletes)", "deleted by the profile sync"


def profile_attachments(manifests: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(group, plural) of every attachment kind a render's DecoratorControllers manage."""
    found = set()
    for obj in manifests:
        if obj.get("kind") == "DecoratorController":
            for attachment in (obj.get("spec") or {}).get("attachments") or []:
                found.add((str(attachment.get("apiVersion", "")).rpartition("/")[0], attachment.get("resource", "")))
    return found


def _predicted(findings: list[Finding], objects: dict[tuple[str, str, str, str], dict[str, Any]],
               attachments: set[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The static findings as lookup records: what to GET in the cluster after the move, and its fate."""
    orphans, conflicts = [], []
    for f in findings:
        if f.id == "migration.orphan":
            key = next((k for k in objects if describe(k) == f.subject), None)
            obj = objects.get(key) if key else None
            synced = f.evidence["origin"] == "profile-controller" and \
                (f.evidence["group"], plural(f.evidence["kind"])) in attachments
            orphans.append({"subject": f.subject, "kind": f.evidence["kind"], "group": f.evidence["group"],
                            "api_version": (obj or {}).get("apiVersion", ""),
                            "namespace": key[2] if key else "", "name": key[3] if key else "",
                            "origin": f.evidence["origin"], "cleanup": f.evidence["cleanup"],
                            "fate": DELETED_BY_SYNC if synced else KEPT})
        elif f.id == "migration.apply-conflict":
            conflicts.append({"subject": f.subject, "message": f.message})
    return orphans, conflicts


def predict_move(config: Config, old: PairInput, new: PairInput, *, name: str) -> Move:
    """Static orphans of applying `new` over `old` (harness.static.orphans), with each object's apiVersion/name."""
    mode = old.mode
    old_manifests = old.cluster_scoped + old.overlay
    new_manifests = new.cluster_scoped + new.overlay
    old_profile = config.profile_objects(old.variant, mode)
    new_profile = config.profile_objects(new.variant, mode)
    findings = static_orphans(old_manifests, new_manifests, old_profile=old_profile, new_profile=new_profile,
                              mode=mode.name, variants=(old.variant.name, new.variant.name), direction=name)
    objects = {**index_manifests(old_manifests), **index_manifests(old_profile)}
    orphans, conflicts = _predicted(findings, objects, profile_attachments(new_manifests))
    return Move(name, old.variant.name, new.variant.name, orphans, conflicts)


def _move_steps(config: Config, old: PairInput, new: PairInput, install: Plan, options: PlanOptions,
                name: str, files: dict[str, str]) -> list[PlanStep]:
    """The new variant's install steps for the SAME cluster: build its plan against the old cluster as an
    existing one (so every argv targets it), then keep only the apply/readiness phases."""
    handle = install.pairs[0].cluster
    existing = dataclasses.replace(options, provider="existing", existing=handle)
    new_plan = build_plan(config=config, pairs=[new], scenarios=[], options=existing)
    pair = new_plan.pairs[0]
    files.update(new_plan.files)
    steps: list[PlanStep] = []
    settings = config.live
    already = set(install.pairs[0].local_images)
    if new.variant.name != install.pairs[0].variant:  # the move to the other variant (not a rollback's re-plan)
        _check_distinct_builds(install, pair, options)
    for image in pair.local_images:  # only images the old install did not push yet (the new variant's builds)
        if image in already or not settings.registry.enabled or options.provider != "kind":
            continue
        host_ref = image.replace(settings.registry.prefix, f"localhost:{settings.registry.host_port}/", 1)
        steps += [PlanStep(pair.key, handle.name, "images", "command", f"tag the local build {image} for the "
                           "registry's host port", argv=("docker", "tag", image, host_ref),
                           timeout=settings.timeout("images")),
                  PlanStep(pair.key, handle.name, "images", "command", f"push it; nodes pull it as {image}",
                           argv=("docker", "push", host_ref), timeout=settings.timeout("images"))]
    steps += [s for s in pair.steps if s.phase in MOVE_PHASES and s.action != "note"]
    kubectl = tuple(handle.kubectl())
    if new.mode.multi_user:
        steps.append(_resync_profile(pair.key, handle.name, kubectl, new.mode.user_namespace,
                                     f"{options.run_id}-{name}", new.variant.name))
    # only the variant's own per-namespace objects show that ITS profile sync ran (the mode's exist already)
    common = index_manifests(config.profile_objects(dataclasses.replace(new.variant, profile_resources=()),
                                                    new.mode))
    for obj in config.profile_objects(new.variant, new.mode):
        meta = obj["metadata"]
        if obj["kind"] not in ("ServiceAccount", "Role", "RoleBinding") or resource_key(obj) in common:
            continue  # Secrets/ClusterRoles: SAs and role objects are enough to show the sync ran
        kind = obj["kind"].lower()
        steps.append(PlanStep(pair.key, handle.name, "profile-sync", "condition",
                              f"wait for the {new.variant.name} profile controller to create {obj['kind']} "
                              f"{meta['namespace']}/{meta['name']}",
                              argv=(*kubectl, "get", kind, meta["name"], "-n", meta["namespace"], "-o", "name"),
                              timeout=settings.timeout("profile"), target=f"{kind}/{meta['namespace']}/{meta['name']}",
                              namespace=meta["namespace"],
                              condition={"name": "object-exists", "kind": kind, "object": meta["name"],
                                         "namespace": meta["namespace"]}))
    return [dataclasses.replace(s, phase=f"{name}:{s.phase}") for s in steps]


def _check_distinct_builds(install: Plan, new: PairPlan, options: PlanOptions) -> None:
    """Refuse a move that serves both variants the same local build: the apiserver (which compiles every run)
    and the driver would not change, and the migration would pass having moved nothing. Then make the install's
    preflight check the new variant's builds exist too, before any cluster is created."""
    old = install.pairs[0]
    shared = sorted(set(old.local_images) & set(new.local_images))
    if shared:
        raise HarnessError(f"{old.variant} and {new.variant} would both run the same local build(s) "
                           f"{', '.join(shared[:3])}{' ...' if len(shared) > 3 else ''}: the move would change nothing",
                           f"tag each variant's builds apart: --local-tag '{DEFAULT_LOCAL_TAG}' (the default) after "
                           "`kfp-conformance images build --tag <variant>`, or distinct --image/--driver-image per variant")
    missing = [image for image in new.local_images if image not in old.local_images]
    preflight = [s for s in install.preflight if s.argv[:3] == ("docker", "image", "inspect")]
    if preflight and missing:
        check = preflight[0]
        install.preflight[install.preflight.index(check)] = dataclasses.replace(
            check, description=check.description.replace("image(s)", f"image(s) of {old.variant} and {len(missing)} "
                                                          f"of {new.variant}", 1),
            argv=(*check.argv, *missing))


def _resync_profile(pair: str, cluster: str, kubectl: tuple[str, ...], namespace: str, value: str,
                    variant: str) -> PlanStep:
    """Make metacontroller call the new `sync.py` now. Both variants ship the same DecoratorController
    (`resyncPeriodSeconds: 3600`), so re-applying it changes nothing and the periodic resync comes long after
    the profile wait. metacontroller v4.11.22 (the image KFP's third-party/metacontroller deploys)
    pkg/controller/decorator/controller.go:215-217 registers `updateParentObject` for every update of a
    parent, and :355-385 enqueues the parent for a sync (even with ignoreStatusChanges, an annotation change
    counts). The parent is the profile Namespace, so a new annotation value triggers the sync."""
    return PlanStep(pair, cluster, "profile-sync", "command",
                    f"annotate Namespace {namespace} so metacontroller syncs it with the {variant} profile "
                    "controller now (DecoratorController resyncPeriodSeconds is 3600)",
                    argv=(*kubectl, "annotate", "namespace", namespace, f"{RESYNC_ANNOTATION}={value}", "--overwrite"),
                    timeout=60, target=f"namespace/{namespace}")


def _step(pair: str, cluster: str, phase: str, description: str, timeout: int = 0, **condition: Any) -> PlanStep:
    return PlanStep(pair, cluster, phase, "migration", description, timeout=timeout, condition=condition)


def build_migration_plan(*, config: Config, old: PairInput, new: PairInput, scenarios: list[Scenario],
                         options: PlanOptions, rollback: bool = False,
                         in_flight_seconds: int = IN_FLIGHT_SECONDS) -> MigrationPlan:
    """Install `old`, keep runs, move to `new` in place (and back with `rollback`), verify after each move."""
    if old.mode.name != new.mode.name:
        raise HarnessError(f"cannot migrate between modes ({old.mode.name} -> {new.mode.name})",
                           "pick one --mode for both variants")
    pair_names = (old.variant.name, new.variant.name)
    check_movable(old.variant, new.variant)
    if in_flight_seconds < 1:
        raise HarnessError(f"--in-flight-seconds {in_flight_seconds} must be positive", "pass e.g. 600")
    names = [s.name for s in scenarios]
    if IN_FLIGHT_SCENARIO in names:
        raise HarnessError(f"{IN_FLIGHT_SCENARIO} is the in-flight run, not a kept scenario",
                           "drop it from --scenario")
    if not scenarios:
        raise HarnessError("a migration needs at least one scenario whose runs are kept", "pass --scenario NAME")
    # A migration always meets two variants in one cluster, so one registry, whatever the provider (plan.py
    # retags by default only on kind): without per-variant tags both would pull `<app>:latest` and the move
    # would change nothing (_check_distinct_builds refuses what is still shared).
    if not options.local_tag:
        options = dataclasses.replace(options, local_tag=DEFAULT_LOCAL_TAG)
    install = build_plan(config=config, pairs=[old], scenarios=[], options=options)
    install.pairs[0].steps = [s for s in install.pairs[0].steps if s.phase not in ("access", "scenario")]
    pair = install.pairs[0]
    cluster = pair.cluster.name
    run_timeout = old.mode.timeouts.get("run", 900)
    files: dict[str, str] = {}
    steps: list[PlanStep] = []
    moves: list[Move] = []
    sequence = [("upgrade", old, new)] + ([("rollback", new, old)] if rollback else [])
    steps.append(_step(pair.key, cluster, "before", f"run {', '.join(names)} on {old.variant.name}; keep run ids "
                       "and outputs (bundles in migration/before/)", run_timeout * len(names),
                       name="run-scenarios", stage="before", variant=old.variant.name, scenarios=names))
    for name, source, target in sequence:
        move = predict_move(config, source, target, name=name)
        template, node_type = DRIVER_TRANSPORT[target.variant.driver.kind]
        move.transport = {"template": template, "node_type": node_type}
        moves.append(move)
        steps.append(_step(pair.key, cluster, f"{name}:in-flight", f"start {IN_FLIGHT_SCENARIO} "
                           f"(sleeps {in_flight_seconds}s) on {source.variant.name}; wait until it is RUNNING",
                           START_TIMEOUT, name="start-in-flight", move=name, variant=source.variant.name,
                           scenario=IN_FLIGHT_SCENARIO, seconds=in_flight_seconds))
        steps.append(_step(pair.key, cluster, f"{name}:snapshot", "read every kept run (v2beta1 GET + Argo node "
                           "outputs) just before the move", 120, name="snapshot-old-runs", move=name,
                           variant=source.variant.name))
        if name == "rollback":
            # the rollback re-applies the old variant's render, already written by the install
            steps += [dataclasses.replace(s, phase=f"rollback:{s.phase}") for s in pair.steps
                      if s.phase in MOVE_PHASES[1:] and s.action != "note"]
            steps += _rollback_profile_sync(config, source, target, install, options, files)
        else:
            steps += _move_steps(config, source, target, install, options, name, files)
        steps.append(_step(pair.key, cluster, f"{name}:verify", f"wait for the in-flight {IN_FLIGHT_SCENARIO} run "
                           "to end (SUCCEEDED, or FAILED with a clear error; still running = error)",
                           in_flight_seconds + run_timeout, name="wait-in-flight", move=name,
                           variant=target.variant.name))
        steps.append(_step(pair.key, cluster, f"{name}:verify", "re-read every kept run: still readable, task "
                           "states and outputs unchanged", 120, name="reread-old-runs", move=name,
                           variant=target.variant.name))
        steps.append(_step(pair.key, cluster, f"{name}:verify", f"run {', '.join(names)} on {target.variant.name} "
                           f"(new runs must pass; bundles in migration/{name}/)", run_timeout * len(names),
                           name="run-scenarios", stage=name, move=name, variant=target.variant.name,
                           scenarios=names))
        steps.append(_step(pair.key, cluster, f"{name}:verify", f"prove the {target.variant.name} driver mode is "
                           f"live: every new run's Workflow calls the driver through `{template}:` templates and "
                           f"Argo ran them as {node_type} nodes", 120, name="driver-mode", move=name,
                           variant=target.variant.name, template=template, node_type=node_type))
        steps.append(_step(pair.key, cluster, f"{name}:verify", f"look up the {len(move.orphans)} object(s) "
                           f"{source.variant.name} leaves behind (predicted by harness.static.orphans)", 120,
                           name="orphans", move=name, variant=target.variant.name))
    steps += [s for s in pair.steps if s.phase == "cleanup"]
    pair.steps = [s for s in pair.steps if s.phase != "cleanup"]
    compiled = {s.name: s.pipeline_file for s in scenarios}
    return MigrationPlan(options.run_id, old.mode.name, pair_names, rollback, install, steps, moves, compiled,
                         in_flight_seconds, files)


def _rollback_profile_sync(config: Config, source: PairInput, target: PairInput, install: Plan,
                           options: PlanOptions, files: dict[str, str]) -> list[PlanStep]:
    steps = _move_steps(config, source, target, install, options, "rollback", {})
    return [s for s in steps if s.phase == "rollback:profile-sync"]


# --- recorded data ----------------------------------------------------------------------------------------
def run_record(run: dict[str, Any], node_outputs: dict[str, Any] | None = None, scenario: str = "") -> dict[str, Any]:
    """What must survive a move, from a v2beta1 run (and its Argo node outputs): state, error, task states
    and outputs keyed by task id. Times of reading are not part of it, so two reads compare equal."""
    tasks = {}
    for task in (run.get("run_details") or {}).get("task_details") or []:
        tasks[task.get("task_id", "")] = {"name": task.get("display_name", ""), "state": task.get("state", ""),
                                          "outputs": task.get("outputs") or {}}
    record = {"scenario": scenario, "state": run.get("state") or "UNKNOWN", "finished_at": run.get("finished_at"),
              "error": run.get("error"), "tasks": tasks}
    if node_outputs is not None:
        record["node_outputs"] = node_outputs
    return record


def new_record(plan: MigrationPlan) -> dict[str, Any]:
    return {"schema_version": MIGRATION_VERSION, "run_id": plan.run_id, "mode": plan.mode,
            "variants": list(plan.variants), "rollback": plan.rollback, "status": "partial",
            "reason": "not finished", "runs": [],
            "moves": [{"name": m.name, "from": m.from_variant, "to": m.to_variant, "before": {}, "after": {},
                       "in_flight": {}, "new_runs": [], "orphans": [],
                       "driver_mode": {"expected": dict(m.transport), "runs": []}} for m in plan.moves]}


def validate_record(data: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise HarnessError(f"migration record invalid at {where}: {exc.message}",
                           "regenerate it with kfp-conformance migrate") from None


# --- verdict ----------------------------------------------------------------------------------------------
def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed in a run between two snapshots; list order is not a change (tasks come back in any order)."""
    return sorted(describe_changes(list(walk(before, after, unordered=True))))


def _not_verified(fid: str, mode: str, variants: tuple[str, ...], subject: str, reason: str) -> Finding:
    return Finding(fid, Severity.INFO, "migration", mode, variants, subject, f"not verified: {reason}",
                   {"status": "skipped"})


def verdict(record: dict[str, Any]) -> list[Finding]:
    """Findings over a recorded migration: old runs kept, in-flight run ended, new runs pass, orphans."""
    mode = record["mode"]
    findings: list[Finding] = []
    if record.get("status") != "complete":
        findings.append(Finding("migration.incomplete", Severity.ERROR, "migration", mode,
                                tuple(record["variants"]), "migration " + " -> ".join(record["variants"]),
                                f"the migration did not finish: {record.get('reason') or 'no reason recorded'}",
                                {"status": record.get("status")}))
    for move in record["moves"]:
        variants = (move["from"], move["to"])
        findings += _old_run_findings(move, mode, variants)
        findings += _in_flight_findings(move, mode, variants)
        findings += _new_run_findings(move, mode, variants)
        findings += _driver_mode_findings(move, mode, variants)
        findings += _orphan_findings(move, mode, variants)
    return findings


def _old_run_findings(move: dict[str, Any], mode: str, variants: tuple[str, str]) -> list[Finding]:
    before, after = move.get("before") or {}, move.get("after") or {}
    if not before:
        return [_not_verified("migration.old-run-preserved", mode, variants, f"{move['name']}: kept runs",
                              "no runs were recorded before the move")]
    out = []
    for run_id, old in sorted(before.items()):
        subject = f"KFP run {run_id} ({old.get('scenario') or 'run'})"
        new = after.get(run_id)
        evidence = {"move": move["name"], "run_id": run_id}
        if new is None and not after:
            out.append(_not_verified("migration.old-run-preserved", mode, variants, subject,
                                     "the run was not read again after the move"))
        elif new is None or "read_error" in new:
            why = (new or {}).get("read_error") or "missing from the re-read"
            out.append(Finding("migration.old-run-unreadable", Severity.ERROR, "migration", mode, variants, subject,
                               f"after the {move['name']} the run is no longer readable: {why}", evidence))
        elif changes := _changes(old, new):
            out.append(Finding("migration.old-run-changed", Severity.ERROR, "migration", mode, variants, subject,
                               f"after the {move['name']} the run's state, tasks or outputs changed "
                               f"({len(changes)} difference(s))", {**evidence, "changes": changes}))
        else:
            out.append(Finding("migration.old-run-preserved", Severity.INFO, "migration", mode, variants, subject,
                               f"readable after the {move['name']}; state {old.get('state')}, "
                               f"{len(old.get('tasks') or {})} task(s) and their outputs unchanged", evidence))
    return out


def _in_flight_findings(move: dict[str, Any], mode: str, variants: tuple[str, str]) -> list[Finding]:
    flight = move.get("in_flight") or {}
    fid = "migration.in-flight-run"
    if not flight.get("run_id"):
        return [_not_verified(fid, mode, variants, f"{move['name']}: in-flight run", "no run was in flight")]
    subject = f"KFP run {flight['run_id']} ({flight.get('scenario', IN_FLIGHT_SCENARIO)}, in flight)"
    state, message = flight.get("state") or "UNKNOWN", (flight.get("message") or "").strip()
    evidence = {"move": move["name"], **{k: v for k, v in flight.items() if k != "message"}}
    if flight.get("state_before") not in (None, "RUNNING"):
        evidence["note"] = f"was {flight['state_before']} (not RUNNING) when the move began"
    if state == "SUCCEEDED":
        return [Finding(fid, Severity.INFO, "migration", mode, variants, subject,
                        f"a run in flight during the {move['name']} completed (SUCCEEDED)", evidence)]
    if state in TERMINAL_STATES and message:
        return [Finding(fid, Severity.WARNING, "migration", mode, variants, subject,
                        f"a run in flight during the {move['name']} ended {state}: {message}",
                        {**evidence, "message": message})]
    if state in TERMINAL_STATES:
        return [Finding(fid, Severity.ERROR, "migration", mode, variants, subject,
                        f"a run in flight during the {move['name']} ended {state} without a clear error", evidence)]
    return [Finding(fid, Severity.ERROR, "migration", mode, variants, subject,
                    f"a run in flight during the {move['name']} did not end: still {state} after "
                    f"{flight.get('waited_seconds', '?')}s", evidence)]


def _new_run_findings(move: dict[str, Any], mode: str, variants: tuple[str, str]) -> list[Finding]:
    runs = move.get("new_runs") or []
    if not runs:
        return [_not_verified("migration.new-run", mode, variants, f"{move['name']}: new runs",
                              f"no run was submitted after the {move['name']}")]
    out = []
    for run in runs:
        subject = f"KFP run {run.get('run_id') or '(not created)'} ({run['scenario']}, after {move['name']})"
        evidence = {"move": move["name"], **run}
        if run.get("state") == run.get("expected_state") and run.get("bundle_status", "complete") == "complete":
            out.append(Finding("migration.new-run", Severity.INFO, "migration", mode, variants, subject,
                               f"a new run on {move['to']} ended {run['state']} as expected", evidence))
        else:
            out.append(Finding("migration.new-run-failed", Severity.ERROR, "migration", mode, variants, subject,
                               f"a new run on {move['to']} ended {run.get('state') or 'UNKNOWN'}, expected "
                               f"{run.get('expected_state')}" + (f" ({run['reason']})" if run.get("reason") else ""),
                               evidence))
    return out


def driver_transport(workflow: dict[str, Any]) -> dict[str, Any]:
    """How a live run's Workflow called the KFP driver: the transport of each driver template (how the
    apiserver compiled the run) and the Argo types of the driver nodes that ran (how it executed)."""
    templates = {i.template: i.transport for i in driver_invocations(workflow)}
    nodes = ((workflow.get("status") or {}).get("nodes") or {}).values()
    executed = {"Pod", "Plugin", "HTTP"}  # a Retry/Skipped wrapper of a driver node is not a transport
    return {"workflow": (workflow.get("metadata") or {}).get("name", ""), "templates": dict(sorted(templates.items())),
            "node_types": sorted({n.get("type", "") for n in nodes
                                  if n.get("templateName") in templates and n.get("type") in executed})}


def _driver_mode_findings(move: dict[str, Any], mode: str, variants: tuple[str, str]) -> list[Finding]:
    """A move passes only if the runs made after it call the driver the target variant's way: a new run that
    still compiles to the old transport means the old apiserver (or the same build) is what answered."""
    fid = "migration.driver-mode"
    mode_record = move.get("driver_mode") or {}
    expected = mode_record.get("expected") or {}
    runs = mode_record.get("runs") or []
    subject = f"{move['name']}: driver mode of new runs on {move['to']}"
    if not runs:
        if not any(r.get("run_id") for r in move.get("new_runs") or []):
            return [_not_verified(fid, mode, variants, subject, f"no run was submitted after the {move['name']}")]
        return [Finding(fid, Severity.ERROR, "migration", mode, variants, subject,
                        f"the {move['to']} driver mode is not proven: no new run's Workflow was read", {"move": move["name"]})]
    out = []
    want_template, want_node = expected.get("template", ""), expected.get("node_type", "")
    for run in runs:
        run_subject = f"KFP run {run.get('run_id') or '?'} ({run.get('scenario', 'run')}, after {move['name']})"
        evidence = {"move": move["name"], "expected": expected, **run}
        templates = set((run.get("templates") or {}).values())
        nodes = set(run.get("node_types") or [])
        if run.get("error"):
            problem = f"its Workflow could not be read: {run['error']}"
        elif templates != {want_template}:
            got = ", ".join(f"{name}: {kind}" for name, kind in sorted((run.get("templates") or {}).items()))
            problem = f"it was compiled with driver templates {got or '(none found)'}, not `{want_template}:`"
        elif nodes != {want_node}:
            problem = f"its driver nodes ran as {', '.join(sorted(nodes)) or '(none)'}, not {want_node}"
        else:
            out.append(Finding(fid, Severity.INFO, "migration", mode, variants, run_subject,
                               f"the {move['to']} driver mode is live: `{want_template}:` driver templates ran as "
                               f"{want_node} nodes", evidence))
            continue
        out.append(Finding(fid, Severity.ERROR, "migration", mode, variants, run_subject,
                           f"after the {move['name']} to {move['to']} a new run does not use its driver mode: {problem}",
                           evidence))
    return out


def _orphan_findings(move: dict[str, Any], mode: str, variants: tuple[str, str]) -> list[Finding]:
    out = []
    for orphan in move.get("orphans") or []:
        evidence = {"move": move["name"], **{k: orphan[k] for k in ("origin", "cleanup", "fate") if k in orphan}}
        subject = orphan["subject"]
        by_sync = orphan.get("fate") == DELETED_BY_SYNC
        if orphan.get("exists") is True and by_sync:
            out.append(Finding("migration.orphan", Severity.WARNING, "migration", mode, variants, subject,
                               f"still in the cluster after the {move['name']} to {move['to']}: metacontroller deletes "
                               "a profile attachment the new sync.py no longer returns, so the profile sync did not "
                               "run or this object was not its attachment", evidence))
        elif orphan.get("exists") is False and by_sync:
            out.append(Finding("migration.orphan-removed", Severity.INFO, "migration", mode, variants, subject,
                               f"removed by the {move['to']} profile sync (metacontroller deletes the attachments "
                               "sync.py no longer returns), as predicted", evidence))
        elif orphan.get("exists") is True:
            out.append(Finding("migration.orphan", Severity.WARNING, "migration", mode, variants, subject,
                               f"still in the cluster after the {move['name']} to {move['to']}, which does not "
                               f"manage it ({orphan.get('origin')})", evidence))
        elif orphan.get("exists") is False:
            out.append(Finding("migration.orphan-absent", Severity.INFO, "migration", mode, variants, subject,
                               f"predicted to be left behind by the {move['name']} but not in the cluster", evidence))
        else:
            out.append(_not_verified("migration.orphan", mode, variants, subject,
                                     orphan.get("error") or "the object was not looked up"))
    return out


