"""Schema validation: built-in kinds, CRDs from the render, unknown kinds, and the real shared trees."""

from __future__ import annotations

import copy
import time

import pytest

from harness.errors import ConfigError
from harness.static.validate import DEFAULT_KUBERNETES_VERSION, SchemaValidator, supported_version

DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "kubeflow"},
    "spec": {"selector": {"matchLabels": {"app": "d"}},
             "template": {"metadata": {"labels": {"app": "d"}},
                          "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}},
}
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object",
                 "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                     "size": {"type": "integer"},
                     "port": {"x-kubernetes-int-or-string": True},
                     "note": {"type": "string", "nullable": True},
                     "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                 }}}}}}]},
}


def widget(**spec):
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "kubeflow"},
            "spec": spec}


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    return SchemaValidator()


def test_default_version_is_a_bundled_one_and_bad_versions_are_one_line_errors():
    assert supported_version(DEFAULT_KUBERNETES_VERSION) == "1.34.0"
    assert supported_version("v1.34.7") == "1.34.0"
    with pytest.raises(ConfigError, match="no schemas for Kubernetes 1.2"):
        supported_version("1.2")
    with pytest.raises(ConfigError, match="choose a version between"):
        SchemaValidator("banana")


def test_valid_builtin_passes(validator):
    report = validator.validate([DEPLOY])
    assert report.checked == 1 and report.errors == [] and report.unverified == {}


def test_builtin_type_error_and_unknown_field_name_the_path(validator):
    bad = copy.deepcopy(DEPLOY)
    bad["spec"]["replicas"] = "two"
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    report = validator.validate([bad])
    assert [(e.subject, e.path) for e in report.errors] == [
        ("Deployment kubeflow/d", "spec.replicas"),
        ("Deployment kubeflow/d", "spec.template.spec.containers[main]"),
    ]
    assert "imagePullPolice" in report.errors[1].message
    findings = report.findings(mode="standalone", variants=("x",))
    assert {f.id for f in findings} == {"validate.schema-error"} and all(f.blocking for f in findings)


def test_non_strict_allows_unknown_fields():
    bad = copy.deepcopy(DEPLOY)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    assert SchemaValidator(strict=False).validate([bad]).errors == []


def test_custom_resource_is_checked_against_crd_in_render(validator):
    good = widget(size=3, port="http", note=None, extra={"anything": {"goes": 1}})
    bad = widget(size="big", colour="red")
    bad["metadata"]["name"] = "bad"
    report = validator.validate([CRD, good, bad])
    assert report.checked == 3 and report.unverified == {}
    assert sorted((e.subject, e.path) for e in report.errors) == [
        ("Widget kubeflow/bad", "spec"), ("Widget kubeflow/bad", "spec.size")]
    assert all(e.schema == "CRD widgets.example.com" for e in report.errors)


def test_crd_from_another_render_can_be_passed(validator):
    report = validator.validate([widget(size=1)], extra_crds=[CRD])
    assert report.checked == 1 and report.errors == []


def test_kind_without_schema_is_not_verified_not_passed(validator):
    policy = {"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "p", "namespace": "kubeflow"}, "spec": {}}
    report = validator.validate([policy, widget(size=1)])
    assert report.checked == 0
    assert report.unverified == {"AuthorizationPolicy (security.istio.io/v1beta1)": ["AuthorizationPolicy kubeflow/p"],
                                 "Widget (example.com/v1)": ["Widget kubeflow/w"]}
    findings = report.findings(mode="multi-user", variants=("x",))
    assert [(f.id, f.severity.value) for f in findings] == [("validate.no-schema", "info")] * 2


def test_non_kubernetes_group_never_uses_a_builtin_schema(validator):
    # networking.istio.io/NetworkPolicy would map to the built-in networkpolicy-networking file by name
    fake = {"apiVersion": "networking.istio.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"}}
    assert validator.validate([fake]).unverified == {"NetworkPolicy (networking.istio.io/v1)": ["NetworkPolicy n"]}


# --- the real shared trees --------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["driver-pod", "sidecar-plugin", "central-driver"])
def test_real_multi_user_renders(install_render, validator, variant):
    manifests = install_render(variant, "multi-user").manifests
    started = time.monotonic()
    report = validator.validate(manifests)
    elapsed = time.monotonic() - started
    assert report.errors == []
    # the Argo and metacontroller CRDs come with the render, so their custom resources are verified
    assert any(m["kind"] == "DecoratorController" for m in manifests)
    assert not any(k.startswith("DecoratorController") for k in report.unverified)
    assert set(report.unverified) == {"AuthorizationPolicy (security.istio.io/v1beta1)",
                                      "DestinationRule (networking.istio.io/v1alpha3)",
                                      "VirtualService (networking.istio.io/v1alpha3)"}
    assert report.checked + sum(len(v) for v in report.unverified.values()) == len(manifests)
    assert elapsed < 10  # a loose sanity bound; the benchmark is in benchmarks/


def test_real_tls_render_lists_cert_manager_kinds_as_unverified(install_render, validator):
    report = validator.validate(install_render("central-driver", "tls").manifests)
    assert report.errors == []
    assert set(report.unverified) == {"Certificate (cert-manager.io/v1)", "Issuer (cert-manager.io/v1)"}


def test_real_render_with_injected_error_is_caught(install_render, validator):
    manifests = copy.deepcopy(install_render("sidecar-plugin", "standalone").manifests)
    target = next(m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "ml-pipeline")
    target["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8888"
    report = validator.validate(manifests)
    assert [(e.subject, e.path) for e in report.errors] == [
        ("Deployment kubeflow/ml-pipeline", "spec.template.spec.containers[ml-pipeline-api-server].ports[http].containerPort")]


def test_one_validator_tells_apart_two_crds_of_one_kind_by_their_schema():
    """A run's validator remembers each distinct object's errors; the key is the schema's content, so a render
    whose CRD declares the same kind differently gets its own verdict for the very same object."""
    run_validator = SchemaValidator()
    as_string = copy.deepcopy(CRD)
    as_string["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"] = {
        "type": "string"}
    obj = widget(size="big")
    first = run_validator.validate([CRD, obj])
    second = run_validator.validate([as_string, obj])
    assert [e.path for e in first.errors] == ["spec.size"] and first.errors[0].schema == "CRD widgets.example.com"
    assert second.errors == []
    assert run_validator.validate([CRD, obj]).summary() == first.summary()


def test_one_validator_over_many_installs_reports_what_fresh_validators_do(install_render):
    """Objects recur across modes and variants: one validator per run reuses their errors, and every report is
    the one a validator that never saw the others gives (checked counts, errors, unverified kinds)."""
    run_validator = SchemaValidator()
    for variant in ("driver-pod", "central-driver"):
        for mode in ("standalone", "tls"):
            manifests = copy.deepcopy(install_render(variant, mode).manifests)
            manifests[0] = {**manifests[0], "spec": "not an object"}  # an error that must be reported each time
            shared = run_validator.validate(manifests).summary()
            assert shared == SchemaValidator().validate(manifests).summary()
            assert shared["errors"] and shared["checked"] > 50
