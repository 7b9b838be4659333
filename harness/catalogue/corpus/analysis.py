"""Static analysis of one compiled pipeline (IR): what it uses and which driver outputs it exercises.

Works on the plain dicts of a pipeline spec that `entry.py` already validated against the KFP protos.
The vocabulary of kfp-kubernetes features comes from the kfp-kubernetes proto itself, so a new KFP
feature shows up under its own name without a code change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

RUNTIME = "<runtime>"  # a name only known at run time (a task output, an input without a default)
DRIVER_OUTPUTS = ("condition", "iteration-count", "cached-decision", "pod-spec-patch")
CONSTRUCTS = ("condition", "loop", "caching", "retry", "exit-handler", "ignore-upstream-failure", "importer",
              "resources", "accelerator", "env")
# Images the KFP compiler turns into Argo resource templates (kfp-kubernetes CreatePVC/DeletePVC):
# features, not images any node pulls.
STUB_IMAGES = {"argostub/createpvc": "pvc-create", "argostub/deletepvc": "pvc-delete"}
_CONSTRUCT_OUTPUT = {"condition": "condition", "loop": "iteration-count", "caching": "cached-decision",
                     "resources": "pod-spec-patch", "accelerator": "pod-spec-patch"}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# cached: read from the installed kfp-kubernetes proto, constant for the process; no run data
@cache
def kubernetes_features() -> dict[str, str]:
    """kfp-kubernetes executor config key -> feature id, read from the kfp-kubernetes proto itself."""
    return {f.json_name: _kebab(f.json_name) for f in k8s_pb2.KubernetesExecutorConfig.DESCRIPTOR.fields}


# cached: read from the installed KFP pipeline-spec proto, constant for the process; no run data
@cache
def pipeline_config_features() -> dict[str, str]:
    """Platform `pipelineConfig` key -> feature id (workspace, pipeline-level TTLs and deadlines)."""
    fields = pipeline_spec_pb2.PipelineConfig.DESCRIPTOR.fields
    return {f.json_name: f.json_name if f.json_name == "workspace" else "pipeline-" + _kebab(f.json_name)
            for f in fields}


def known_features() -> set[str]:
    return {*kubernetes_features().values(), *pipeline_config_features().values(), *STUB_IMAGES.values()}


def analyse(spec: dict[str, Any], kubernetes: dict[str, Any]) -> dict[str, Any]:
    """A validated pipeline spec and its kubernetes platform spec -> the CorpusEntry fields they give."""
    components: dict[str, Any] = spec.get("components") or {}
    executors: dict[str, Any] = (spec.get("deploymentSpec") or {}).get("executors") or {}
    root_inputs = ((spec["root"].get("inputDefinitions") or {}).get("parameters")) or {}
    tasks = _all_tasks(spec)
    constructs: set[str] = set()
    for task in tasks:
        trigger = task.get("triggerPolicy") or {}
        if trigger.get("condition"):
            constructs.add("condition")
        if trigger.get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED":
            constructs.add("ignore-upstream-failure")
        if {"parameterIterator", "artifactIterator", "iteratorPolicy"} & task.keys():
            constructs.add("loop")
        if (task.get("cachingOptions") or {}).get("enableCache"):
            constructs.add("caching")
        if task.get("retryPolicy"):
            constructs.add("retry")
    if any(name.startswith("comp-exit-handler") for name in components):
        constructs.add("exit-handler")

    images: set[str] = set()
    features: set[str] = set()
    importer_uris: set[str] = set()
    for label, executor in executors.items():
        container = executor.get("container")
        if container:
            image = container.get("image", "")
            if image in STUB_IMAGES:
                features.add(STUB_IMAGES[image])
            elif image:
                images.add(image)
            resources = container.get("resources") or {}
            if resources:
                constructs.add("resources")
            if resources.get("accelerator"):
                constructs.add("accelerator")
            if container.get("env"):
                constructs.add("env")
        if "importer" in executor:
            constructs.add("importer")
            importer_uris.update(_importer_uris(label, executor["importer"], components, tasks, root_inputs))

    secrets: set[str] = set()
    config_maps: set[str] = set()
    executor_configs = (kubernetes.get("deploymentSpec") or {}).get("executors") or {}
    k8s_names = kubernetes_features()
    for cfg in executor_configs.values():
        features.update(k8s_names.get(key, _kebab(key)) for key, value in cfg.items() if value)
        for item in [*cfg.get("secretAsEnv", []), *cfg.get("secretAsVolume", [])]:
            if not item.get("optional"):
                secrets.add(_object_name(item, "secretName", "secretNameParameter", root_inputs))
        for item in [*cfg.get("configMapAsEnv", []), *cfg.get("configMapAsVolume", [])]:
            if not item.get("optional"):
                config_maps.add(_object_name(item, "configMapName", "configMapNameParameter", root_inputs))
    config_names = pipeline_config_features()
    features.update(config_names.get(key, _kebab(key)) for key, value in
                    (kubernetes.get("pipelineConfig") or {}).items() if value)

    outputs = {_CONSTRUCT_OUTPUT[c] for c in constructs if c in _CONSTRUCT_OUTPUT}
    if executor_configs:
        outputs.add("pod-spec-patch")
    arguments = {name: p["defaultValue"] for name, p in root_inputs.items() if "defaultValue" in p}
    generated = tuple(sorted(name for name, p in root_inputs.items()
                             if "defaultValue" not in p and not p.get("isOptional")))
    arguments.update({name: generated_argument(name, root_inputs[name].get("parameterType", "")) for name in generated})
    return dict(
        pipeline_name=spec["pipelineInfo"]["name"],
        components=tuple(sorted(n.removeprefix("comp-") for n in components)),
        images=tuple(sorted(images)),
        importer_uris=tuple(sorted(importer_uris)),
        features=tuple(sorted(features)),
        constructs=tuple(c for c in CONSTRUCTS if c in constructs),
        driver_outputs=tuple(o for o in DRIVER_OUTPUTS if o in outputs),
        arguments=arguments,
        generated_arguments=generated,
        secrets=tuple(sorted(secrets)),
        config_maps=tuple(sorted(config_maps)),
    )


def generated_argument(name: str, parameter_type: str) -> Any:
    """A value for a required input without a default, by type, as KFP's E2E does
    (`testutil.GetPipelineRunTimeInputs`), but derived from the name instead of random so that every
    variant runs with the same arguments and outputs stay comparable."""
    number = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 1000
    return {
        "NUMBER_INTEGER": number,
        "NUMBER_DOUBLE": number / 1000,
        "BOOLEAN": True,
        "STRUCT": {"A": str(number / 1000), "B": str((number + 1) / 1000)},
        "LIST": [f"kfpc-{name}"],
    }.get(parameter_type, f"kfpc-{name}")


def _all_tasks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    dags = [spec["root"].get("dag") or {}]
    dags += [c["dag"] for c in (spec.get("components") or {}).values() if isinstance(c, dict) and c.get("dag")]
    return [task for dag in dags for task in (dag.get("tasks") or {}).values()]


def _resolve_input(name: str, root_inputs: Mapping[str, Any]) -> str:
    """A component input -> the root default it carries. Heuristic: the compiler names pass-through inputs
    `pipelinechannel--<root input>`; anything fed by a task output is only known at run time."""
    param = root_inputs.get(name.removeprefix("pipelinechannel--")) or {}
    value = param.get("defaultValue")
    return str(value) if value not in (None, "") else RUNTIME


def _object_name(item: dict[str, Any], literal: str, parameter: str, root_inputs: Mapping[str, Any]) -> str:
    if item.get(literal):
        return str(item[literal])
    ref = item.get(parameter) or {}
    if "runtimeValue" in ref:
        return str((ref["runtimeValue"] or {}).get("constant") or RUNTIME)
    if "componentInputParameter" in ref:
        return _resolve_input(ref["componentInputParameter"], root_inputs)
    return RUNTIME


def _importer_uris(label: str, importer: dict[str, Any], components: Mapping[str, Any],
                   tasks: list[dict[str, Any]], root_inputs: Mapping[str, Any]) -> set[str]:
    uri = importer.get("artifactUri") or {}
    if "constant" in uri:
        constant = uri["constant"]  # a protobuf Value: plain JSON, or {stringValue: ...} in old files
        return {str(constant.get("stringValue", constant) if isinstance(constant, dict) else constant)}
    param = uri.get("runtimeParameter")
    if not param:
        return {RUNTIME}
    comps = {name for name, c in components.items() if c.get("executorLabel") == label}
    found: set[str] = set()
    for task in tasks:
        if (task.get("componentRef") or {}).get("name") in comps:
            given = ((task.get("inputs") or {}).get("parameters") or {}).get(param) or {}
            if "runtimeValue" in given:
                found.add(str((given["runtimeValue"] or {}).get("constant") or RUNTIME))
            elif "componentInputParameter" in given:
                found.add(_resolve_input(given["componentInputParameter"], root_inputs))
            else:
                found.add(RUNTIME)
    return found or {RUNTIME}


