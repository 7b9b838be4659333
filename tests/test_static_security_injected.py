"""The static tier's security checks on copies of the real central-driver tree, one injected change each.

Each test copies the shared tree to tmp_path, edits one manifest as a pull request could, renders the copy
with the real pinned kustomize (standalone CI overlay) and compares it with the unmodified tree's render.
Benign rewrites (key order, comments, a file split, a metadata label) must give no security finding.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness.config import load_config
from harness.models import Finding, Severity
from harness.rbac import evaluator as rbac
from harness.rbac.evaluator import compare_driver_permissions, dangling_driver_bindings, driver_side
from harness.static.exposure import exposure_findings
from harness.static.hardening import hardening_findings
from harness.static.inventory import diff_inventories
from harness.static.security_checks import credential_findings

VARIANT = "central-driver"
PIPELINE = Path("manifests/kustomize/base/pipeline")
VARIANTS = (VARIANT, "candidate")  # base = the shared tree, other = the edited copy


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def base(install_render) -> list[dict]:
    return install_render(VARIANT, "standalone").manifests


@pytest.fixture
def tree(kfp_trees: Path, tmp_path: Path) -> Path:
    copy = tmp_path / VARIANT
    shutil.copytree(kfp_trees / VARIANT, copy, ignore=shutil.ignore_patterns(".git", "test_data"), symlinks=True)
    return copy


def _render(shared_renderer, config, tree: Path) -> list[dict]:
    return shared_renderer.render_install(tree, config.mode("standalone"), "ci").manifests


def _edit(path: Path, change) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _security(base: list[dict], other: list[dict], config) -> list[Finding]:
    found = hardening_findings(base, other, mode="standalone", variants=VARIANTS)
    found += exposure_findings(base, other, mode="standalone", variants=VARIANTS,
                               other_variant=config.variant(VARIANT))
    found += credential_findings(base, other, mode="standalone", variants=VARIANTS)
    return found


def _driver_container(docs: list[dict]) -> dict:
    return docs[0]["spec"]["template"]["spec"]["containers"][0]


def test_injected_nodeport_driver_service_is_an_exposure_error(tree, base, shared_renderer, config) -> None:
    _edit(tree / PIPELINE / "ml-pipeline-driver-service.yaml", lambda d: d[0]["spec"].update(type="NodePort"))
    found = _security(base, _render(shared_renderer, config, tree), config)
    assert [(f.id, f.severity, f.subject) for f in found] == [
        ("exposure.service-type", Severity.ERROR, "Service kubeflow/ml-pipeline-driver")]
    message = found[0].message
    assert "spec.type is NodePort in candidate" in message and "fronts the driver" in message
    assert found[0].evidence["variant"] == "candidate" and found[0].evidence["path"] == "spec.type"


def test_injected_load_balancer_external_ips_and_traffic_policy(tree, base, shared_renderer, config) -> None:
    _edit(tree / PIPELINE / "ml-pipeline-apiserver-service.yaml",
          lambda d: d[0]["spec"].update(type="LoadBalancer", externalIPs=["203.0.113.7"]))
    found = _security(base, _render(shared_renderer, config, tree), config)
    ids = sorted((f.id, f.subject) for f in found)
    assert ids == [("exposure.external-ips", "Service kubeflow/ml-pipeline"),
                   ("exposure.service-type", "Service kubeflow/ml-pipeline")]
    assert all("fronts the API server" in f.message for f in found)


def test_injected_host_network_privileged_driver_pod_is_a_hardening_error(tree, base, shared_renderer,
                                                                          config) -> None:
    def weaken(docs: list[dict]) -> None:
        docs[0]["spec"]["template"]["spec"]["hostNetwork"] = True
        _driver_container(docs)["securityContext"]["privileged"] = True

    _edit(tree / PIPELINE / "ml-pipeline-driver-deployment.yaml", weaken)
    found = _security(base, _render(shared_renderer, config, tree), config)
    by_id = {f.id: f for f in found}
    assert set(by_id) == {"hardening.hostNamespaces", "hardening.privileged"}
    assert all(f.severity is Severity.ERROR and f.subject == "Deployment kubeflow/ml-pipeline-driver" for f in found)
    assert "spec.template.spec.hostNetwork" in by_id["hardening.hostNamespaces"].message
    privileged = by_id["hardening.privileged"]
    assert "container ml-pipeline-driver" in privileged.message and "in candidate" in privileged.message
    assert privileged.evidence["fields"][0]["path"] == \
        "spec.template.spec.containers[ml-pipeline-driver].securityContext.privileged"
    assert privileged.evidence["level"] == "privileged" and privileged.evidence["baseline_level"] == "restricted"


def test_injected_restricted_only_weakening_is_a_warning_when_the_level_stays(tree, base, shared_renderer,
                                                                              config) -> None:
    """runAsUser 0 breaks a restricted control: the driver drops from restricted to baseline -> error. From
    there, allowing privilege escalation breaks another restricted control but the level stays -> warning."""
    _edit(tree / PIPELINE / "ml-pipeline-driver-deployment.yaml",
          lambda d: _driver_container(d)["securityContext"].update(runAsUser=0))
    first = _render(shared_renderer, config, tree)
    found = _security(base, first, config)
    assert [(f.id, f.severity) for f in found] == [("hardening.runAsUser", Severity.ERROR)]
    second = tree.parent / "second"  # the renderer keys a tree path's digest once: edit a fresh copy
    shutil.copytree(tree, second, symlinks=True)
    _edit(second / PIPELINE / "ml-pipeline-driver-deployment.yaml",
          lambda d: _driver_container(d)["securityContext"].update(allowPrivilegeEscalation=True))
    again = hardening_findings(first, _render(shared_renderer, config, second), mode="standalone", variants=VARIANTS)
    assert [(f.id, f.severity) for f in again] == [("hardening.allowPrivilegeEscalation", Severity.WARNING)]
    assert again[0].evidence["baseline_level"] == again[0].evidence["level"] == "baseline"


def test_injected_literal_credential_env_is_found_by_fingerprint_only(tree, base, shared_renderer, config) -> None:
    canary = "kfpc-canary-Pa55w0rd-7f3e"
    _edit(tree / PIPELINE / "ml-pipeline-driver-deployment.yaml",
          lambda d: _driver_container(d)["env"].append({"name": "MINIO_SECRET_KEY", "value": canary}))
    found = _security(base, _render(shared_renderer, config, tree), config)
    assert [(f.id, f.severity, f.subject) for f in found] == [
        ("credential.literal", Severity.WARNING, "Deployment kubeflow/ml-pipeline-driver")]
    assert "containers[ml-pipeline-driver].env[MINIO_SECRET_KEY].value" in found[0].message
    assert "in candidate" in found[0].message and "sha256:" in found[0].message
    assert canary not in repr(found[0].to_dict())


def test_injected_aws_key_in_configmap_is_an_error(tree, base, shared_renderer, config) -> None:
    key = "AKIA" + "KFPCCANARY7F3E0Q"  # AWS access key id shape, not a real key
    _edit(tree / PIPELINE / "ml-pipeline-ui-configmap.yaml",
          lambda d: d[0].setdefault("data", {}).update({"s3.properties": f"endpoint=s3.amazonaws.com\nkey={key}\n"}))
    found = _security(base, _render(shared_renderer, config, tree), config)
    assert ("credential.literal", Severity.ERROR) in {(f.id, f.severity) for f in found}
    assert all(f.subject == "ConfigMap kubeflow/ml-pipeline-ui-configmap" and "in candidate" in f.message
               and 'data["s3.properties"]' in f.message for f in found)
    assert key not in repr([f.to_dict() for f in found])


def test_injected_edit_clusterrole_bound_to_driver_is_reported(tree, base, shared_renderer, config,
                                                               monkeypatch) -> None:
    """Bound to the built-in `edit`: with the cluster's roles known it grants what `edit` grants (error); without
    the dump (harness/data/builtin-clusterroles-*.yaml) it is a not-verified warning, never `grants nothing`."""
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "ml-pipeline-driver-edit"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "ServiceAccount", "name": "ml-pipeline-driver"}]}
    _edit(tree / PIPELINE / "ml-pipeline-driver-rolebinding.yaml", lambda d: d.append(binding))
    other = _render(shared_renderer, config, tree)
    variant, mode = config.variant(VARIANT), config.mode("standalone")
    side = driver_side(config, variant, mode, other)
    # without a dump of the cluster's roles: named, with the variant, as not verified
    monkeypatch.setattr(rbac, "builtin_cluster_roles", lambda *_: rbac.BuiltinRoles("", ""))
    warnings = dangling_driver_bindings(side, "standalone")
    assert [(f.id, f.severity, f.subject, f.variants) for f in warnings] == [
        ("rbac.dangling-binding", Severity.WARNING, "RoleBinding kubeflow/ml-pipeline-driver-edit", (VARIANT,))]
    assert "built-in ClusterRole" in warnings[0].message and "not verified" in warnings[0].message
    # with the real apiserver's roles (harness/data/builtin-clusterroles-v1.34.0.yaml): `edit` reads Secrets
    monkeypatch.undo()
    assert rbac.builtin_cluster_roles().version == "v1.34.0"
    assert dangling_driver_bindings(side, "standalone") == []
    gained = compare_driver_permissions(driver_side(config, variant, mode, base), side, "standalone")
    assert any(f.id in ("rbac.permission-gained", "rbac.permission-broadened") and f.severity is Severity.ERROR
               and "secrets" in f.message and f.subject == "ServiceAccount kubeflow/ml-pipeline-driver"
               and "ml-pipeline-driver-edit -> ClusterRole edit" in str(f.evidence) for f in gained)


@pytest.mark.parametrize("rewrite", ["key-order", "comments", "file-split", "metadata-label"])
def test_benign_rewrites_give_no_security_finding(rewrite, tree, base, shared_renderer, config) -> None:
    deployment = tree / PIPELINE / "ml-pipeline-driver-deployment.yaml"
    if rewrite == "key-order":
        docs = list(yaml.safe_load_all(deployment.read_text()))
        reordered = [dict(reversed(list(d.items()))) for d in docs]
        reordered[0]["spec"] = dict(reversed(list(reordered[0]["spec"].items())))
        deployment.write_text(yaml.safe_dump_all(reordered, sort_keys=False))
    elif rewrite == "comments":
        deployment.write_text("# the central driver\n" + deployment.read_text().replace(
            "replicas: 1", "replicas: 1  # one is enough"))
    elif rewrite == "file-split":
        source = tree / PIPELINE / "pipeline-runner-sa.yaml"
        first, second = [d for d in source.read_text().split("\n---\n") if d.strip()]
        source.write_text(first)
        (tree / PIPELINE / "pipeline-runner-sa-token.yaml").write_text(second)
        _edit(tree / PIPELINE / "kustomization.yaml",
              lambda d: d[0]["resources"].insert(d[0]["resources"].index("pipeline-runner-sa.yaml") + 1,
                                                 "pipeline-runner-sa-token.yaml"))
    else:
        _edit(deployment, lambda d: d[0]["metadata"]["labels"].update({"team": "pipelines"}))
    other = _render(shared_renderer, config, tree)
    assert _security(base, other, config) == []
    diff = diff_inventories(base, other)
    if rewrite == "metadata-label":  # the inventory still tells the reviewer, as info
        assert list(diff.changed) == [("apps", "Deployment", "kubeflow", "ml-pipeline-driver")]
    else:
        assert diff.empty
