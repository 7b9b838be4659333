"""Compiled-workflow comparison: the Argo Workflows two KFP trees compile the same pipelines into.

Pure: takes files and directories, touches no cluster. Each Workflow is split into two canonical views:

- *semantic*: what the workflow does. Driver templates become one transport-free shape (the driver's
  arguments by name, decoded and with defaults filled in), consumer references to driver outputs become one
  syntax (`{{tasks.X.outputs.parameters.Y}}`), hashed component parameter names become stable aliases.
  A difference here is `unexpected`.
- *transport*: how the driver is reached (container / executor plugin / HTTP template, output extraction,
  argument encoding, the consumer reference syntax). A difference here is `expected` only where the two
  sides use different transports for that template; between two builds of the same transport it is
  `unexpected` like any other.

Each driver call site plus its template resolves to a `DriverInvocation`, the same shape whatever the
transport (see docs/workflows.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import yaml

from harness import diff as harness_diff
from harness import models as harness_models
from harness.boundary.collector import cycle_collection_paused
from harness.boundary.worker import reply
from harness.diff import Named, walk
from harness.errors import SourceError
from harness.manifests.yamlload import load_all
from harness.models import Finding, Severity
from harness.render.cache import pickled

GOLDEN_DIR = Path("test_data") / "compiled-workflows"
# Driver arguments a CLI driver leaves out when they hold their default (code reading of the driver flags);
# the plugin and HTTP transports always spell them out.
DRIVER_ARG_DEFAULTS = {"cache_disabled": "false", "metadata_tls_enabled": "false", "ml_pipeline_tls_enabled": "false"}
# Driver argument values that only restate what a driver running in the workflow's own pod already knows,
# so only a transport that runs elsewhere (the central service) needs them: classified by value, not by
# argument name, so a hard-coded namespace (`"namespace": "kubeflow"`) stays a semantic difference. A driver
# pod reads its namespace from its ServiceAccount mount (config.InPodNamespace: backend/src/v2/cmd/driver/main.go
# and backend/src/v2/config/env.go, kubeflow/pipelines@81fc181b1).
IMPLICIT_CONTEXT_VALUES = frozenset({"{{workflow.namespace}}"})
# Downward-API env that only a driver *pod* has.
POD_ONLY_ENV = frozenset({"KFP_POD_NAME", "KFP_POD_UID"})
# Keys of a driver template that describe its transport rather than its behaviour.
TRANSPORT_TEMPLATE_KEYS = frozenset({"container", "plugin", "http", "outputs", "securityContext", "metadata"})
# Container fields of a driver template that only a pod has; volumeMounts and other env stay semantic.
POD_ONLY_CONTAINER_KEYS = frozenset(
    {"args", "command", "image", "imagePullPolicy", "name", "resources", "securityContext"}
)
EXAMPLES = 5  # example files listed per grouped finding

_HASHED_PARAM = re.compile(r"\b(components|implementations)-([0-9a-f]{64})\b")
_B64_INPUT = re.compile(r"\{\{=\s*sprig\.b64enc\(\s*inputs\.parameters\[\s*'([\w.-]+)'\s*\]\s*\)\s*\}\}")
_EXPR_INPUT = re.compile(r"\{\{=\s*inputs\.parameters\[\s*'([\w.-]+)'\s*\]\s*\}\}")
_INPUT_REF = re.compile(r"\{\{inputs\.parameters\.([\w.-]+)\}\}")
_OUTPUT_PATH_REF = re.compile(r"^\{\{outputs\.parameters\.[\w.-]+\.path\}\}$")
_PARAM_REF = re.compile(r"\{\{tasks\.([\w-]+)\.outputs\.parameters\.([\w-]+)\}\}")
_JSONPATH_REF = re.compile(
    r"""\{\{=\s*jsonpath\(\s*tasks\[\s*'([\w-]+)'\s*\]\.outputs\.result\s*,\s*"""
    r"""["']\$(?:\[\s*'([\w-]+)'\s*\]|\.([\w-]+))["']\s*\)\s*\}\}"""
)
SYNTAX_PARAMETERS = "tasks.X.outputs.parameters.Y"
SYNTAX_JSONPATH = "jsonpath(tasks['X'].outputs.result, '$[Y]')"

REASONS = {
    "kind": "driver template kind (container / executor plugin / HTTP)",
    "container": "driver transport settings",
    "plugin": "driver transport settings",
    "http": "driver transport settings (URL, headers, successCondition, timeout)",
    "outputs": "driver output extraction (valueFrom.path / valueFrom.jsonPath / outputs.result)",
    "securityContext": "pod-level settings of a driver template",
    "metadata": "pod-level settings of a driver template",
    "encoding": "driver argument encoding (CLI flags / plugin args / JSON body)",
    "base64": "driver argument encoding (base64 in the HTTP body)",
    "args": "transport-only driver arguments (output paths, namespace)",
    "implicit_defaults": "driver arguments left at their default",
    "references": "consumer reference syntax for driver outputs",
}


class WorkflowFileError(SourceError):
    """A compiled-workflow golden file cannot be read as one Argo Workflow."""


# --------------------------------------------------------------------------------------------- loading


def load_workflow(path: Path | str, plain_tags: dict[str, str] | None = None) -> dict[str, Any]:
    """One Argo Workflow from a YAML file; anything else is a WorkflowFileError naming the file.
    `plain_tags`: the run's memo of resolved plain scalars (harness.manifests.yamlload.load_all)."""
    path = Path(path)
    try:
        # libyaml's events straight into objects (harness.manifests.yamlload): ~2.5x faster than CSafeLoader
        docs = [doc for doc in load_all(path.read_text(), plain_tags) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkflowFileError(f"{path}: cannot read compiled workflow: {first}", "fix or remove the file") from None
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "Workflow":
        raise WorkflowFileError(
            f"{path}: expected exactly one Argo Workflow document",
            "compiled-workflows/ must hold one `kind: Workflow` per file",
        )
    spec = docs[0].get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("templates"), list):
        raise WorkflowFileError(f"{path}: Workflow has no spec.templates list", "regenerate the golden file")
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in spec["templates"]):
        raise WorkflowFileError(f"{path}: a spec.templates entry has no name", "regenerate the golden file")
    return docs[0]


def golden_dir(path: Path | str) -> Path:
    """`<tree>/test_data/compiled-workflows` for a KFP tree, or the directory itself if it holds the goldens."""
    path = Path(path)
    if (path / GOLDEN_DIR).is_dir():
        return path / GOLDEN_DIR
    if path.is_dir() and any(path.glob("*.yaml")):
        return path
    raise SourceError(
        f"{path}: no compiled workflows (neither {GOLDEN_DIR}/ nor *.yaml files)",
        "pass a KFP tree or its test_data/compiled-workflows directory",
    )


# ----------------------------------------------------------------------------------------- invocations


@dataclass(frozen=True)
class DriverInvocation:
    """One driver call, whatever its transport: the call site resolved against the driver template."""

    dag: str  # the DAG template holding the call
    task: str  # the DAG task calling the driver, e.g. `flip-coin-op-driver`
    template: str  # the driver template, e.g. `system-container-driver`
    transport: str  # container | plugin | http
    driver_type: str  # ROOT_DAG | DAG | CONTAINER (or the unresolved expression)
    task_name: str = ""
    component: Any = ""  # usually a `{{workflow.parameters.components-...}}` reference
    task_spec: Any = ""  # the task's PipelineTaskSpec (parsed JSON when literal)
    container: Any = ""
    runtime_config: Any = ""
    kubernetes_config: Any = ""
    iteration_index: Any = ""
    parent_dag_id: Any = ""
    settings: dict[str, Any] = field(default_factory=dict)  # every other driver argument
    outputs_consumed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # output -> `task.field`s

    def shape(self) -> dict[str, Any]:
        """Everything but the transport: equal across variants when the driver is called the same way."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "transport"}


_INVOCATION_FIELDS = {
    "type": "driver_type", "task_name": "task_name", "component": "component", "task": "task_spec",
    "container": "container", "runtime_config": "runtime_config", "kubernetes_config": "kubernetes_config",
    "iteration_index": "iteration_index", "dag_execution_id": "parent_dag_id",
}


@dataclass(frozen=True)
class _DriverTemplate:
    name: str
    transport: str
    args: dict[str, str]  # semantic driver arguments, values as `{{inputs.parameters.x}}` etc.
    semantic: dict[str, Any]
    transport_view: dict[str, Any]
    input_defaults: dict[str, str]


def _driver_args(template: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(transport, raw args, transport details) if the template calls the KFP driver, else None."""
    if isinstance(template.get("container"), dict):
        container = template["container"]
        if container.get("command") != ["driver"] and "kfp-driver" not in str(container.get("image", "")):
            return None
        return "container", _parse_cli_flags(container.get("args") or []), {"encoding": "cli-flags"}
    if isinstance(template.get("plugin"), dict) and len(template["plugin"]) == 1:
        (plugin_name, body), = template["plugin"].items()
        args = (body or {}).get("args") if isinstance(body, dict) else None
        if not isinstance(args, dict):
            return None
        return "plugin", dict(args), {"encoding": "plugin-args", "plugin": {"name": plugin_name}}
    if isinstance(template.get("http"), dict):
        try:
            args = json.loads(template["http"].get("body") or "")
        except ValueError:
            return None
        if not isinstance(args, dict):
            return None
        b64 = sorted(k for k, v in args.items() if isinstance(v, str) and _B64_INPUT.search(v))
        return "http", args, {"encoding": "json-body", "base64": b64}
    return None


def _parse_cli_flags(argv: list[Any]) -> dict[str, Any]:
    """`--flag value` / `--flag=value` pairs; a flag followed by another flag is a bare boolean."""
    args: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        item = str(argv[i])
        if item.startswith("--"):
            key, eq, value = item[2:].partition("=")
            if eq:
                args[key] = value
            elif i + 1 < len(argv) and not str(argv[i + 1]).startswith("--"):
                args[key] = argv[i + 1]
                i += 1
            else:
                args[key] = "true"
        i += 1
    return args


def _scalar(value: Any) -> Any:
    """Driver args compare as strings: YAML `false`, JSON false and CLI "false" are the same argument."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and "{{=" in value:  # both expression spellings start so (most values skip them)
        return _EXPR_INPUT.sub(r"{{inputs.parameters.\1}}", _B64_INPUT.sub(r"{{inputs.parameters.\1}}", value))
    return value


def _transport_only(value: Any) -> bool:
    """An argument that means nothing beyond the transport: a file path the pod transports write outputs to
    (`{{outputs.parameters.X.path}}`), or context a driver in the workflow's pod has anyway."""
    return isinstance(value, str) and (bool(_OUTPUT_PATH_REF.match(value)) or value.strip() in IMPLICIT_CONTEXT_VALUES)


def _parse_driver_template(template: dict[str, Any]) -> _DriverTemplate | None:
    parsed = _driver_args(template)
    if parsed is None:
        return None
    transport, raw, details = parsed
    args = {k: _scalar(v) for k, v in raw.items()}
    if "type" not in args or "component" not in args:
        return None
    transport_args = {k: v for k, v in args.items() if _transport_only(v)}
    semantic_args = {k: v for k, v in args.items() if k not in transport_args}
    implicit = sorted(k for k in DRIVER_ARG_DEFAULTS if k not in semantic_args)
    for key in implicit:
        semantic_args[key] = DRIVER_ARG_DEFAULTS[key]

    driver: dict[str, Any] = {"args": semantic_args}
    transport_view: dict[str, Any] = {"kind": transport, **details, "implicit_defaults": implicit}
    if transport_args:
        transport_view["args"] = transport_args
    if transport == "container":
        container = template["container"]
        env = [e for e in container.get("env") or [] if e.get("name") not in POD_ONLY_ENV]
        pod_env = [e for e in container.get("env") or [] if e.get("name") in POD_ONLY_ENV]
        extra = {k: v for k, v in container.items() if k not in POD_ONLY_CONTAINER_KEYS and k != "env"}
        if env:
            extra["env"] = env
        driver.update(extra)
        pod_only = {k: v for k, v in container.items() if k in POD_ONLY_CONTAINER_KEYS and k != "args"}
        if pod_env:
            pod_only["env"] = pod_env
        transport_view["container"] = pod_only
    elif transport == "http":
        transport_view["http"] = {k: v for k, v in template["http"].items() if k != "body"}
    for key in TRANSPORT_TEMPLATE_KEYS - {"container", "plugin", "http"}:
        if key in template:
            transport_view[key] = template[key]

    semantic = {k: v for k, v in template.items() if k not in TRANSPORT_TEMPLATE_KEYS}
    semantic["driver"] = driver
    defaults = {
        p["name"]: _scalar(p["default"])
        for p in (template.get("inputs") or {}).get("parameters") or []
        if isinstance(p, dict) and "name" in p and "default" in p
    }
    return _DriverTemplate(template["name"], transport, semantic_args, semantic, transport_view, defaults)


# ---------------------------------------------------------------------------------------- canonical form


@dataclass(frozen=True)
class _Reference:
    dag: str
    consumer: str  # consumer task name, or `outputs` for the DAG's own outputs
    where: str  # field inside the consumer, e.g. `when`, `arguments.parameters[condition].value`
    producer: str
    output: str
    syntax: str


@dataclass(frozen=True)
class CanonicalWorkflow:
    """The two views of one workflow plus its resolved driver invocations."""

    semantic: dict[str, Any]
    transport: dict[str, Any]
    invocations: tuple[DriverInvocation, ...]


def canonicalize(workflow: dict[str, Any], json_memo: dict[str, Any] | None = None) -> CanonicalWorkflow:
    """Split a loaded Workflow into its semantic and transport views (see the module docstring).

    `json_memo` (JSON text -> its canonical value) may be shared by the workflows of one run: the same component
    and task specs recur in every tree (~9,000 JSON strings per run, ~1,600 distinct). Views are never mutated,
    so they may share those values."""
    memo = {} if json_memo is None else json_memo
    workflow = _alias_hashed_parameters(workflow)
    spec = workflow["spec"]
    drivers = {t["name"]: d for t in spec["templates"] if (d := _parse_driver_template(t)) is not None}

    refs: list[_Reference] = []
    templates = Named()
    for template in spec["templates"]:
        name = template["name"]
        if name in drivers:
            templates[name] = _canonical_value(drivers[name].semantic, memo)
        elif isinstance(template.get("dag"), dict):
            templates[name] = _canonical_dag(template, drivers, refs, memo)
        else:
            templates[name] = _canonical_value(template, memo)

    semantic = {
        "metadata": _canonical_value(workflow.get("metadata") or {}, memo),
        "spec": _canonical_value({k: v for k, v in spec.items() if k != "templates"}, memo),
        "templates": templates,
    }
    transport = {
        "templates": Named({name: _canonical_value(d.transport_view, memo) for name, d in drivers.items()}),
        "references": {
            _task_path(r.dag, r.consumer, r.where): r.syntax for r in refs
        },
    }
    return CanonicalWorkflow(semantic, transport, tuple(_invocations(spec["templates"], drivers, refs, memo)))


def _alias_hashed_parameters(workflow: dict[str, Any]) -> dict[str, Any]:
    """Rename `components-<sha256>` to `components-@<executorLabel>` (and its `implementations-`).

    The hash covers the whole component spec, so two SDK versions give different names for the same
    component; the executor label is what the pipeline calls it.
    """
    aliases: dict[str, str] = {}
    for param in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []:
        match = _HASHED_PARAM.fullmatch(str(param.get("name", "")))
        if not match or match.group(1) != "components":
            continue
        try:
            label = json.loads(param.get("value") or "").get("executorLabel")
        except (ValueError, AttributeError):
            label = None
        if label:
            aliases[match.group(2)] = "@" + label
    if len(set(aliases.values())) != len(aliases):  # two specs with one label: keep the hashes
        duplicated = {a for a, n in Counter(aliases.values()).items() if n > 1}
        aliases = {h: a for h, a in aliases.items() if a not in duplicated}
    if not aliases:
        return workflow

    def rename(match: re.Match[str]) -> str:
        return f"{match.group(1)}-{aliases.get(match.group(2), match.group(2))}"

    return _renamed(workflow, lambda text: _HASHED_PARAM.sub(rename, text))


def _renamed(value: Any, rename: Callable[[str], str]) -> Any:
    """`value` with `rename` applied to each string naming a component or an implementation (only those can
    match `_HASHED_PARAM`); a container holding none comes back as it is, not copied. Views never mutate
    what they are built from, so sharing it is safe."""
    if isinstance(value, str):
        return rename(value) if "components-" in value or "implementations-" in value else value
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) is str and "components-" not in item and "implementations-" not in item:
                continue  # the common case, decided without a call
            new = _renamed(item, rename)
            if new is not item:
                changed = dict(value) if changed is None else changed
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = [_renamed(item, rename) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    return value


_JSON_START = frozenset("{[")


def _canonical_value(value: Any, memo: dict[str, Any]) -> Any:
    """Named lists keyed by name, JSON strings parsed, expressions and dependency sets in one spelling.
    `memo`: JSON text -> its canonical value (canonicalize's json_memo)."""
    kind = type(value)  # exact types first: loaded YAML is plain dicts, lists and strings (~175k calls per run)
    if kind is not dict and kind is not list and kind is not str:
        kind = dict if isinstance(value, dict) else list if isinstance(value, list) else \
            str if isinstance(value, str) else None
    if kind is dict:
        # plain strings (most values) are kept inline, without a call (the walk visits ~350k values per run)
        out = {k: v if type(v) is str and v[:1] not in _JSON_START and not v[:1].isspace() else _canonical_value(v, memo)
               for k, v in value.items()}
        # Sets the compiler writes in map order: only their members matter.
        if "dependentTasks" in out and isinstance(out["dependentTasks"], list) \
                and all(isinstance(t, str) for t in out["dependentTasks"]):
            out["dependentTasks"] = sorted(out["dependentTasks"])
        # expressions: YAML line folding may leave runs of spaces
        if "when" in out and isinstance(out["when"], str):
            out["when"] = " ".join(out["when"].split())
        if "depends" in out and isinstance(out["depends"], str):
            depends = " ".join(out["depends"].split())
            if not _DEPENDS_OPERATORS.search(depends):
                depends = " && ".join(sorted(term.strip() for term in depends.split("&&")))
            out["depends"] = depends
        return out
    if kind is str:
        if value[:1] not in _JSON_START and not value[:1].isspace():
            return value  # the common case, decided without stripping: no JSON can start here
        stripped = value.strip()
        if stripped[:1] in "{[" and not stripped.startswith("{{"):
            if stripped in memo:
                return memo[stripped]
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return value
            memo[stripped] = _canonical_value(parsed, memo)
            return memo[stripped]
        return value
    if kind is list:
        names = [item.get("name") for item in value if isinstance(item, dict)]
        if value and len(names) == len(value) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
            return Named({item["name"]: _canonical_value(item, memo) for item in value})
        return [_canonical_value(v, memo) for v in value]
    return value


_DEPENDS_OPERATORS = re.compile(r"\|\||[()!]")  # a `depends` with these is more than a set of terms


def _canonical_dag(template: dict[str, Any], drivers: dict[str, _DriverTemplate], refs: list[_Reference],
                   memo: dict[str, Any]) -> Any:
    """A DAG template with consumer references to its driver tasks rewritten to one syntax."""
    dag_name = template["name"]
    driver_tasks = {t["name"] for t in template["dag"].get("tasks") or [] if t.get("template") in drivers}

    def rewrite(value: Any, consumer: str, where: str) -> Any:
        if isinstance(value, dict):
            # strings naming no task (most values) are kept without a call or a path
            return {k: v if type(v) is str and "tasks" not in v else rewrite(v, consumer, f"{where}.{k}" if where else k)
                    for k, v in value.items()}
        if isinstance(value, list):
            named = all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value) and value
            return [
                rewrite(v, consumer, f"{where}[{v['name']}]" if named else f"{where}[{i}]")
                for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or "tasks" not in value:  # both reference syntaxes name `tasks`
            return value

        def to_parameters(match: re.Match[str]) -> str:
            producer, output = match.group(1), match.group(2) or match.group(3)
            if producer not in driver_tasks:
                return match.group(0)
            refs.append(_Reference(dag_name, consumer, where, producer, output, SYNTAX_JSONPATH))
            return _parameter_ref(match)

        for match in _PARAM_REF.finditer(value):
            if match.group(1) in driver_tasks:
                refs.append(_Reference(dag_name, consumer, where, match.group(1), match.group(2), SYNTAX_PARAMETERS))
        return _JSONPATH_REF.sub(to_parameters, value) if "{{=" in value else value

    out = dict(template)
    out["dag"] = dict(template["dag"])
    out["dag"]["tasks"] = [rewrite(t, t.get("name", "?"), "") for t in template["dag"].get("tasks") or []]
    if "outputs" in template:
        out["outputs"] = rewrite(template["outputs"], "outputs", "")
    return _canonical_value(out, memo)


def _task_path(dag: str, consumer: str, where: str) -> str:
    if consumer == "outputs":
        return f"templates[{dag}].outputs.{where}"
    return f"templates[{dag}].dag.tasks[{consumer}].{where}"


def _invocations(
    templates: list[dict[str, Any]], drivers: dict[str, _DriverTemplate], refs: list[_Reference],
    memo: dict[str, Any],
) -> Iterator[DriverInvocation]:
    consumed: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for ref in refs:
        consumed[(ref.dag, ref.producer)][ref.output].add(f"{ref.consumer}.{ref.where}")
    for template in templates:
        if not isinstance(template.get("dag"), dict):
            continue
        for task in template["dag"].get("tasks") or []:
            driver = drivers.get(task.get("template", ""))
            if driver is None:
                continue
            call_args = {
                p["name"]: _scalar(_rewrite_refs(p.get("value", "")))
                for p in (task.get("arguments") or {}).get("parameters") or []
                if isinstance(p, dict) and "name" in p
            }
            bound = {**driver.input_defaults, **call_args}

            def resolve(value: Any, bound: dict[str, Any] = bound) -> Any:
                if not isinstance(value, str) or "{{inputs.parameters." not in value:
                    return value
                whole = _INPUT_REF.fullmatch(value)
                if whole and whole.group(1) in bound:
                    return _canonical_value(bound[whole.group(1)], memo)
                return _INPUT_REF.sub(lambda m: str(bound.get(m.group(1), m.group(0))), value)

            fields: dict[str, Any] = {}
            settings: dict[str, Any] = {}
            for key, value in driver.args.items():
                if key in _INVOCATION_FIELDS:
                    fields[_INVOCATION_FIELDS[key]] = resolve(value)
                else:
                    settings[key] = resolve(value)
            outputs = consumed.get((template["name"], task["name"]), {})
            yield DriverInvocation(
                dag=template["name"], task=task["name"], template=driver.name, transport=driver.transport,
                settings=dict(sorted(settings.items())),
                outputs_consumed={k: tuple(sorted(v)) for k, v in sorted(outputs.items())},
                **fields,
            )


def _rewrite_refs(value: Any) -> Any:
    """A call argument read from a driver's `outputs.result` becomes the `outputs.parameters` spelling."""
    if not isinstance(value, str) or "{{=" not in value:
        return value
    return _JSONPATH_REF.sub(_parameter_ref, value)


def _parameter_ref(match: re.Match[str]) -> str:
    """A `_JSONPATH_REF` match in the `{{tasks.X.outputs.parameters.Y}}` spelling."""
    return f"{{{{tasks.{match.group(1)}.outputs.parameters.{match.group(2) or match.group(3)}}}}}"


def driver_invocations(workflow: dict[str, Any]) -> list[DriverInvocation]:
    """Every driver call in a loaded Workflow, normalised to one shape."""
    return list(canonicalize(workflow).invocations)


def driver_outputs_exercised(workflow: dict[str, Any]) -> set[str]:
    """Driver outputs (`pod-spec-patch`, `condition`, `iteration-count`, ...) some task consumes."""
    return {output for inv in canonicalize(workflow).invocations for output in inv.outputs_consumed}


# ------------------------------------------------------------------------------------------ differences


@dataclass(frozen=True)
class Difference:
    path: str  # e.g. `spec.podMetadata.annotations[sidecar.istio.io/inject]`
    change: str  # added | removed | changed (relative to the base tree)
    base: Any
    other: Any
    expected: bool
    reason: str = ""

    @property
    def kind(self) -> str:
        """The path with instance names generalised, so one field across many workflows groups."""
        return generalize_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "change": self.change, "base": _short(self.base), "other": _short(self.other),
            "expected": self.expected, "reason": self.reason,
        }


def generalize_path(path: str) -> str:
    path = re.sub(r"templates\[(?!system-)[^\]]+\]", "templates[*]", path)
    path = re.sub(r"tasks\[[^\]]+\]", "tasks[*]", path)
    path = re.sub(r"\[(components|implementations)-[^\]]+\]", r"[\1-*]", path)
    path = re.sub(r"\.(components|implementations)-[\w@.-]+", r".\1-*", path)
    return re.sub(r"\[\d+\]", "[*]", path)


def diff_workflows(base: dict[str, Any], other: dict[str, Any]) -> list[Difference]:
    """Differences between two loaded Workflows, each with a field path and its class."""
    return _diff_canonical(canonicalize(base), canonicalize(other))


SAME_TRANSPORT = "a driver transport field changed between two builds of the same transport ({})"


def _diff_canonical(base: CanonicalWorkflow, other: CanonicalWorkflow) -> list[Difference]:
    """Semantic differences are unexpected; transport differences are expected only where the two sides
    really reach the driver differently (the template's transport kind differs, or for consumer references,
    the workflows' sets of transports differ). Between two builds of one transport they are unexpected."""
    found = [
        Difference(path, change, a, b, expected=False)
        for path, change, a, b in _tree_diff(base.semantic, other.semantic)
    ]
    kinds = [{name: view.get("kind") for name, view in side.transport["templates"].items()} for side in (base, other)]
    for path, change, a, b in _tree_diff(base.transport, other.transport):
        if path.startswith("references["):
            path = path[len("references["):-1]
            reason = REASONS["references"]
            same = set(kinds[0].values()) == set(kinds[1].values())
            kind = "/".join(sorted(set(kinds[0].values())))
        else:
            name = re.match(r"^templates\[([^\]]+)\]", path)
            section = re.sub(r"^templates\[[^\]]+\]\.?", "", path).split(".")[0].split("[")[0]
            reason = REASONS.get(section, "driver transport")
            kind = kinds[0].get(name.group(1)) if name else None
            same = kind is not None and kind == (kinds[1].get(name.group(1)) if name else None)
        if same:
            found.append(Difference(path, change, a, b, expected=False, reason=SAME_TRANSPORT.format(kind)))
        else:
            found.append(Difference(path, change, a, b, expected=True, reason=reason))
    return found


_MAPS_BY_KEY = frozenset({"podMetadata", "metadata", "labels", "annotations"})


def _tree_diff(base: Any, other: Any) -> Iterator[tuple[str, str, Any, Any]]:
    """(path, change, base value, other value) per difference, by the harness's one diff walk
    (harness.diff): named items in brackets; an annotation added where there were none is that annotation."""
    for c in walk(base, other, empty_when_missing=_MAPS_BY_KEY):
        yield c.path, c.change, c.old, c.new


def _short(value: Any, limit: int = 200) -> Any:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
        return value if len(text) <= limit else text[:limit] + "..."
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value


# ----------------------------------------------------------------------------------- tree comparison


@dataclass(frozen=True)
class WorkflowResult:
    file: str
    base_invocations: tuple[DriverInvocation, ...]
    other_invocations: tuple[DriverInvocation, ...]
    differences: tuple[Difference, ...]

    @property
    def unexpected(self) -> list[Difference]:
        return [d for d in self.differences if not d.expected]

    @property
    def expected(self) -> list[Difference]:
        return [d for d in self.differences if d.expected]

    @property
    def invocations_match(self) -> bool:
        return _shapes(self.base_invocations) == _shapes(self.other_invocations)


def _shapes(invocations: Iterable[DriverInvocation]) -> list[dict[str, Any]]:
    return sorted((inv.shape() for inv in invocations), key=lambda s: (s["dag"], s["task"]))


@dataclass(frozen=True)
class WorkflowComparison:
    base_variant: str
    other_variant: str
    mode: str
    base_dir: str
    other_dir: str
    results: tuple[WorkflowResult, ...]
    only_in_base: tuple[str, ...]
    only_in_other: tuple[str, ...]

    def findings(self) -> list[Finding]:
        """Golden files in one tree only, then unexpected and expected differences grouped by field kind."""
        variants = (self.base_variant, self.other_variant)
        findings = [self._missing(name, present=self.base_variant, absent=self.other_variant)
                    for name in self.only_in_base]
        findings += [self._missing(name, present=self.other_variant, absent=self.base_variant)
                     for name in self.only_in_other]
        groups: dict[tuple[bool, str, str, str], list[tuple[str, Difference]]] = defaultdict(list)
        kinds: dict[str, str] = {}  # path -> its kind: ~13k differences per run, far fewer distinct paths
        for result in self.results:
            for diff in result.differences:
                if diff.path not in kinds:
                    kinds[diff.path] = diff.kind
                groups[(diff.expected, kinds[diff.path], diff.change, diff.reason)].append((result.file, diff))
        compared = len(self.results)
        for (expected, kind, change, reason), hits in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1:])):
            files = sorted({f for f, _ in hits})
            scope = f"every compared workflow ({len(files)}/{compared})" if len(files) == compared else \
                f"{len(files)}/{compared} workflows"
            first = hits[0][1]
            message = f"{kind} {change} in {scope}, {len(hits)} occurrence(s)"
            if len(files) < compared:
                message += f" (e.g. {', '.join(files[:3])})"
            if first.path != kind:
                message += f"; first: {hits[0][0]} {first.path}"
            if kind.startswith("spec.podMetadata"):
                message += "; spec.podMetadata applies to every pod of each workflow (driver, executor and agent pods)"
            message += f"; expected: {reason}" if expected else ""
            findings.append(Finding(
                id="workflow.expected-difference" if expected else "workflow.unexpected-difference",
                severity=Severity.INFO if expected else Severity.ERROR,
                category="workflow", mode=self.mode, variants=variants,
                subject=f"compiled-workflows/{files[0]}" if len(files) == 1 else
                f"compiled-workflows/ ({len(files)} files)",
                message=message,
                evidence={
                    "path": kind, "change": change, "reason": reason, "files": len(files),
                    "compared": compared, "occurrences": len(hits), "every_workflow": len(files) == compared,
                    "example_files": files[:EXAMPLES],
                    "example": {"file": hits[0][0], **first.to_dict()},
                    "applies_to_every_pod": kind.startswith("spec.podMetadata"),
                },
                expected=expected,
            ))
        return findings

    def _missing(self, name: str, *, present: str, absent: str) -> Finding:
        return Finding(
            id="workflow.golden-missing", severity=Severity.WARNING, category="workflow", mode=self.mode,
            variants=(self.base_variant, self.other_variant), subject=f"compiled-workflows/{name}",
            message=f"compiled-workflows/{name} exists in {present} but not in {absent}",
            evidence={"present_in": present, "missing_from": absent},
        )

    def summary(self) -> dict[str, Any]:
        """Counts for static.json."""
        def per_type(side: str) -> dict[str, int]:
            counts = Counter(inv.driver_type for r in self.results for inv in getattr(r, side))
            return dict(sorted(counts.items()))

        def transports(side: str) -> list[str]:
            return sorted({inv.transport for r in self.results for inv in getattr(r, side)})

        diffs = [d for r in self.results for d in r.differences]
        return {
            "base": self.base_variant, "other": self.other_variant,
            "files_compared": len(self.results),
            "only_in_base": list(self.only_in_base), "only_in_other": list(self.only_in_other),
            "transports": {self.base_variant: transports("base_invocations"),
                           self.other_variant: transports("other_invocations")},
            "invocations": {self.base_variant: per_type("base_invocations"),
                            self.other_variant: per_type("other_invocations")},
            "invocations_matching_files": sum(r.invocations_match for r in self.results),
            "differences": {"expected": sum(d.expected for d in diffs), "unexpected": sum(not d.expected for d in diffs)},
            "files_with_unexpected": sum(bool(r.unexpected) for r in self.results),
        }


@dataclass
class RunViews:
    """What one run has canonicalised (StaticContext.workflow_views; nothing outlives the run): each golden's
    view by path (comparing three trees pairwise reads each file twice; within a run the goldens do not
    change), each JSON text's canonical value (canonicalize's json_memo) and each plain YAML scalar's tag
    (load_workflow's plain_tags). Views are never mutated."""

    views: dict[str, CanonicalWorkflow] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    plain_tags: dict[str, str] = field(default_factory=dict)


def _canonical_views(directory: Path, names: list[str], run: RunViews) -> dict[str, CanonicalWorkflow]:
    """The canonical view of each golden `names` of `directory`, from the run's memo or built."""
    out = {}
    resolved = directory.resolve()
    for name in names:
        key = str(resolved / name)  # (a golden that is itself a symlink is still read once per run and path)
        if key not in run.views:
            run.views[key] = canonicalize(load_workflow(directory / name, run.plain_tags), run.json)
        out[name] = run.views[key]
    return out


def compare_compiled_workflows(
    base_dir: Path | str, other_dir: Path | str, *, base_variant: str, other_variant: str, mode: str = "static",
    views: RunViews | None = None,
) -> WorkflowComparison:
    """Compare the compiled-workflow goldens of two KFP trees (a tree or its compiled-workflows dir each).
    `views` (made per run) keeps what a run has already canonicalised."""
    base, other = golden_dir(base_dir), golden_dir(other_dir)
    base_files = {p.name for p in base.glob("*.yaml")}
    other_files = {p.name for p in other.glob("*.yaml")}
    names = sorted(base_files & other_files)
    run = RunViews() if views is None else views
    base_views, other_views = _canonical_views(base, names, run), _canonical_views(other, names, run)
    results = []
    for name in names:
        a, b = base_views[name], other_views[name]
        results.append(WorkflowResult(name, a.invocations, b.invocations, tuple(_diff_canonical(a, b))))
    return WorkflowComparison(
        base_variant, other_variant, mode, str(base), str(other), tuple(results),
        tuple(sorted(base_files - other_files)), tuple(sorted(other_files - base_files)),
    )


# ------------------------------------------------------------------------------- what a check reports


PairResult = tuple[list[Finding], dict[str, Any]]  # a pair's findings and its static.json summary
# A pair's result on disk is keyed by the code that computes it (this module, the diff walk, the Finding
# type) as well as the goldens' names and bytes, so a change to the rules never reuses an old result.
_CODE_DIGEST = hashlib.sha256(b"".join(hashlib.sha256(Path(file).read_bytes()).digest()
                                       for file in (__file__, harness_diff.__file__, harness_models.__file__))).digest()


@dataclass(frozen=True)
class PairRequest:
    """One pair of trees to compare, as the compiled-workflow check asks for it (picklable: a worker process
    may serve it, `serve_pairs`)."""

    base_dir: str
    other_dir: str
    base_variant: str
    other_variant: str
    mode: str

    def cache_file(self, cache_dir: Path) -> Path:
        """Where this pair's result is kept: named by the code, the pair and both trees' goldens (names and
        bytes). Reading the goldens (~9 MB for three KFP trees) costs ~20 ms; parsing them, seconds."""
        key = hashlib.sha256(_CODE_DIGEST)
        key.update("\0".join((self.base_variant, self.other_variant, self.mode)).encode())
        for tree in (self.base_dir, self.other_dir):
            goldens = golden_dir(tree)
            for path in sorted(goldens.glob("*.yaml")):
                key.update(b"\1" + path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
            key.update(b"\2")
        return cache_dir / "workflows" / f"{key.hexdigest()[:32]}.pickle"


def pair_result(request: PairRequest, cache_dir: Path | None = None, views: RunViews | None = None) -> PairResult:
    """The pair's findings and summary; with `cache_dir`, kept on disk for the next run (a warm run reads a
    small file per pair instead of parsing ~400 goldens). `views` is the run's memo (RunViews)."""
    def compute() -> PairResult:
        comparison = compare_compiled_workflows(
            request.base_dir, request.other_dir, base_variant=request.base_variant,
            other_variant=request.other_variant, mode=request.mode, views=views)
        return comparison.findings(), comparison.summary()

    if cache_dir is None:
        return compute()
    return pickled(request.cache_file(Path(cache_dir)), compute)


def serve_pairs(request: tuple[list[PairRequest], str | None], out: IO[bytes]) -> None:
    """A worker's body (harness.boundary.worker): every pair's result, in order, sharing one run's views."""
    pairs, cache_dir = request
    views = RunViews()
    with cycle_collection_paused():  # (harness.boundary.collector) ~0.1-0.5 s of the worker's ~1.3 s otherwise
        reply(out, lambda: [pair_result(p, Path(cache_dir) if cache_dir else None, views) for p in pairs])
