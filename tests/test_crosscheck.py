"""Install cross-checks: images, the driver's TLS CA, network exposure; hand-written cases and real trees."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from harness.config import load_config
from harness.manifests.labels import labels_match, selector_matches
from harness.models import parse_image, split_image
from harness.static.crosscheck import (
    classify_image,
    collect_images,
    driver_ca_wiring,
    image_findings,
    is_cluster_local_registry,
    network_findings,
    parse_carrier,
    service_exposure,
    tls_findings,
)


@pytest.fixture(scope="module")
def config():
    return load_config()


def deployment(name, labels, containers, namespace="kubeflow", volumes=None):
    spec = {"containers": containers}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}}}


def service(name, selector, namespace="kubeflow", port=8080):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "ports": [{"port": port}]}}


# --- images -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "ids"), [
    ("ghcr.io/kubeflow/kfp-driver:dummy", ["image.placeholder"]),
    ("ghcr.io/kubeflow/kfp-driver:TODO", ["image.placeholder"]),
    ("kind-registry:5000/driver:latest", ["image.local-registry"]),
    ("localhost:5000/driver:ci", ["image.local-registry"]),
    ("kind-registry:5000/launcher", ["image.local-registry", "image.untagged"]),
    ("ghcr.io/containerd/busybox", ["image.untagged"]),
    ("mysql:8.4", []),
    ("gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0", []),
    ("quay.io/argoproj/argoexec@sha256:" + "a" * 64, []),
    ("", ["image.unresolvable"]),
    ("$(DRIVER_IMAGE)", ["image.unresolvable"]),
    ("ghcr.io/Kubeflow/Driver:1", ["image.unresolvable"]),
])
def test_classify_image(image, ids):
    assert [i for i, _sev, _why in classify_image(image)] == ids


def test_parse_image_follows_docker_host_rule():
    assert parse_image("chrislusf/seaweedfs:4.18").domain == ""  # Docker Hub, not a host named chrislusf
    assert parse_image("kind-registry:5000/driver:ci").domain == "kind-registry:5000"
    assert parse_image("ghcr.io/kubeflow/kfp-driver").tag == ""
    assert is_cluster_local_registry("10.0.0.5:5000") and not is_cluster_local_registry("ghcr.io")


def test_split_image_keeps_repository_as_written_and_port_is_not_a_tag():
    digest = "sha256:" + "a" * 64
    assert split_image("chrislusf/seaweedfs:4.18") == ("chrislusf/seaweedfs", "4.18")
    assert split_image("kind-registry:5000/driver") == ("kind-registry:5000/driver", "")
    assert split_image(f"ghcr.io/kubeflow/kfp-driver:2.5@{digest}") == ("ghcr.io/kubeflow/kfp-driver", f"@{digest}")
    assert split_image("$(DRIVER_IMAGE):v1") == ("$(DRIVER_IMAGE):v1", "")  # not a reference: nothing to split


def test_collect_images_from_every_place():
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "image": "init:1"}],
                "containers": [{"name": "main", "image": "main:1"}]}}}}}}
    api = deployment("ml-pipeline", {"app": "a"}, [{
        "name": "api", "image": "api:1", "env": [{"name": "V2_DRIVER_IMAGE", "value": "drv:1"},
                                                 {"name": "OTHER", "value": "not-an-image"}],
        "args": ["--executor-image", "exec:1", "--x=1", "--other-image=oth:1"]}])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ml-pipeline-driver-agent", "namespace": "ns"},
          "data": {"sidecar.container": "name: driver-plugin\nimage: ghcr.io/kubeflow/kfp-driver:dummy\n",
                   "cacheImage": "busybox", "script.sh": "echo image: no {"}}
    found = {(r.image, r.subject, r.location, r.embedded) for r in collect_images([cron, api, cm])}
    assert found == {
        ("init:1", "CronJob ns/c", "spec.jobTemplate.spec.template.spec.initContainers[init].image", False),
        ("main:1", "CronJob ns/c", "spec.jobTemplate.spec.template.spec.containers[main].image", False),
        ("api:1", "Deployment kubeflow/ml-pipeline", "spec.template.spec.containers[api].image", False),
        ("drv:1", "Deployment kubeflow/ml-pipeline", "spec.template.spec.containers[api].env[V2_DRIVER_IMAGE].value", True),
        ("exec:1", "Deployment kubeflow/ml-pipeline", "spec.template.spec.containers[api].args[--executor-image]", True),
        ("oth:1", "Deployment kubeflow/ml-pipeline", "spec.template.spec.containers[api].args[--other-image]", True),
        ("ghcr.io/kubeflow/kfp-driver:dummy", "ConfigMap ns/ml-pipeline-driver-agent", 'data["sidecar.container"].image', True),
        ("busybox", "ConfigMap ns/ml-pipeline-driver-agent", 'data["cacheImage"]', True),
    }


def test_real_sidecar_product_render_has_placeholder_driver_in_configmap_string(install_render):
    manifests = install_render("sidecar-plugin", "standalone", "product").manifests
    findings = image_findings(collect_images(manifests), mode="standalone", variants=("sidecar-plugin",))
    placeholder = [f for f in findings if f.id == "image.placeholder"]
    assert [(f.subject, f.evidence["image"]) for f in placeholder] == [
        ("ConfigMap kubeflow/ml-pipeline-driver-agent", "ghcr.io/kubeflow/kfp-driver:dummy")]
    evidence = placeholder[0].evidence
    assert evidence["used_at"][0]["location"] == 'data["sidecar.container"].image'
    assert "kustomize `images:` transforms never rewrite it" in evidence["note"]
    # the same repository appears elsewhere with a real tag: the transform/patch reached only that one
    assert evidence["same_repository_elsewhere"] == ["ghcr.io/kubeflow/kfp-driver:2.16.0"]
    assert placeholder[0].blocking


def test_real_ci_renders_use_the_kind_registry_and_no_placeholder(install_render):
    for variant in ("sidecar-plugin", "central-driver"):
        findings = image_findings(collect_images(install_render(variant, "standalone").manifests),
                                  mode="standalone", variants=(variant,))
        assert not [f for f in findings if f.id in ("image.placeholder", "image.unresolvable")]
        local = {f.evidence["image"] for f in findings if f.id == "image.local-registry"}
        assert "kind-registry:5000/apiserver:latest" in local
    # CD's CI overlay rewrites the driver Deployment; SC's driver only sits in the ConfigMap string
    cd = collect_images(install_render("central-driver", "standalone").manifests)
    assert ("kind-registry:5000/driver:latest", "Deployment kubeflow/ml-pipeline-driver") in {
        (r.image, r.subject) for r in cd}


# --- TLS CA wiring ----------------------------------------------------------------------------------

CERT = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "kfp-api-tls-cert", "namespace": "kubeflow"},
        "spec": {"isCA": True, "secretName": "the-ca"}}


def test_parse_carrier():
    assert parse_carrier("ConfigMap/ml-pipeline-driver-agent (data.sidecar.container)") == \
        parse_carrier("ConfigMap/ml-pipeline-driver-agent  (data.sidecar.container) ")
    carrier = parse_carrier("Deployment/ml-pipeline (env V2_DRIVER_IMAGE)")
    assert (carrier.kind, carrier.name, carrier.detail) == ("Deployment", "ml-pipeline", "env V2_DRIVER_IMAGE")


def test_central_service_driver_wired_only_with_a_ca_volume_mount(config):
    variant, mode = config.variant("central-driver"), config.mode("tls")
    bare = deployment("ml-pipeline-driver", {"app": "d"}, [{"name": "ml-pipeline-driver", "image": "d:1"}])
    assert not driver_ca_wiring([CERT, bare], variant, mode).wired
    mounted = deployment("ml-pipeline-driver", {"app": "d"}, [{
        "name": "ml-pipeline-driver", "image": "d:1", "volumeMounts": [{"name": "ca", "mountPath": "/kfp/certs"}]}],
        volumes=[{"name": "ca", "secret": {"secretName": "the-ca"}}])
    wiring = driver_ca_wiring([CERT, mounted], variant, mode)
    assert wiring.wired and "/kfp/certs" in wiring.reason
    other_secret = copy.deepcopy(mounted)
    other_secret["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] = "unrelated"
    assert not driver_ca_wiring([CERT, other_secret], variant, mode).wired


def test_no_certificate_means_nothing_to_wire(config):
    wiring = driver_ca_wiring([], config.variant("central-driver"), config.mode("tls"))
    assert not wiring.wired and "no cert-manager Certificate" in wiring.reason


def test_tls_findings_only_in_tls_modes(config):
    wiring = driver_ca_wiring([CERT], config.variant("central-driver"), config.mode("tls"))
    assert tls_findings([wiring], mode=config.mode("standalone")) == []
    assert [f.id for f in tls_findings([wiring], mode=config.mode("tls"))] == ["tls.driver-ca-missing"]


def test_real_tls_wiring_differs_between_variants(install_render, config):
    mode = config.mode("tls")
    wirings = [driver_ca_wiring(install_render(v, "tls").manifests, config.variant(v), mode)
               for v in ("driver-pod", "sidecar-plugin", "central-driver")]
    assert {w.variant: w.wired for w in wirings} == {
        "driver-pod": True, "sidecar-plugin": True, "central-driver": False}
    assert {w.variant: sorted({s.name for s in w.ca_secrets}) for w in wirings} == {
        "driver-pod": ["kfp-api-tls-cert"], "sidecar-plugin": ["argo-workflows-agent-ca-certificates"],
        "central-driver": ["argo-workflows-agent-ca-certificates"]}
    findings = {(f.id, f.variants): f for f in tls_findings(wirings, mode=mode)}
    missing = findings[("tls.driver-ca-missing", ("central-driver",))]
    assert missing.subject == "Deployment kubeflow/ml-pipeline-driver, Service kubeflow/ml-pipeline-driver"
    assert missing.evidence["evidence"]["Deployment kubeflow/ml-pipeline-driver spec.template.spec.volumes"] == []
    plugin = findings[("tls.driver-ca-wired", ("sidecar-plugin",))]
    assert plugin.subject == "ConfigMap kubeflow/ml-pipeline-driver-agent"
    assert "argo-workflows-agent-ca-certificates" in plugin.evidence["evidence"][
        'ConfigMap kubeflow/ml-pipeline-driver-agent data["sidecar.container"].volumeMounts']
    pod = findings[("tls.driver-ca-wired", ("driver-pod",))]
    assert "CABUNDLE_SECRET_NAME=kfp-api-tls-cert" in pod.message
    differs = findings[("tls.driver-ca-differs", ("driver-pod", "sidecar-plugin", "central-driver"))]
    assert "not in central-driver" in differs.message


def test_real_plugin_without_ca_mount_is_missing(install_render, config):
    """The standalone (non-TLS) sidecar spec has no CA mount; grafted onto the TLS render it must fail."""
    tls = copy.deepcopy(install_render("sidecar-plugin", "tls").manifests)
    plain = install_render("sidecar-plugin", "standalone").manifests
    plain_cm = next(m for m in plain if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "ml-pipeline-driver-agent")
    tls = [plain_cm if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "ml-pipeline-driver-agent" else m for m in tls]
    wiring = driver_ca_wiring(tls, config.variant("sidecar-plugin"), config.mode("tls"))
    assert not wiring.wired and "does not mount" in wiring.reason


def test_wiring_follows_catalogue_data_not_variant_names(install_render, config):
    """Rename the variant: the rule comes from driver.kind and carriers only."""
    renamed = replace(config.variant("central-driver"), name="my-fork")
    wiring = driver_ca_wiring(install_render("central-driver", "tls").manifests, renamed, config.mode("tls"))
    assert wiring.variant == "my-fork" and not wiring.wired


# --- network exposure -------------------------------------------------------------------------------


def test_selector_matches_expressions():
    labels = {"app": "seaweedfs", "tier": "x"}
    assert selector_matches({"matchExpressions": [{"key": "app", "operator": "In", "values": ["seaweedfs"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["seaweedfs"]}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert selector_matches({}, labels)
    assert not selector_matches({"matchLabels": {"app": "other"}}, labels)
    assert labels_match({"app": "seaweedfs"}, labels) and not labels_match({"app": "seaweedfs", "zone": "a"}, labels)
    with pytest.raises(ValueError, match="'Like'"):
        selector_matches({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["x"]}]}, labels)


def test_network_policy_and_authorization_policy_protect_services():
    api = deployment("api", {"app": "api"}, [{"name": "c", "image": "i:1"}])
    drv = deployment("drv", {"app": "drv"}, [{"name": "c", "image": "i:1"}])
    base = [api, service("api", {"app": "api"})]
    other = [*base, drv, service("drv", {"app": "drv"})]
    found = network_findings(base, other, mode="standalone", variants=("a", "b"))
    assert [(f.id, f.subject) for f in found if f.id == "network.unprotected-service"] == [
        ("network.unprotected-service", "Service kubeflow/drv")]
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "drv", "namespace": "kubeflow"},
              "spec": {"podSelector": {"matchLabels": {"app": "drv"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {}}]}]}}
    assert not [f for f in network_findings(base, [*other, netpol], mode="m", variants=("a", "b"))
                if f.id == "network.unprotected-service"]
    allow_all = copy.deepcopy(netpol)
    allow_all["spec"]["ingress"] = [{}]  # admits everyone: not a protection
    assert [f.subject for f in network_findings(base, [*other, allow_all], mode="m", variants=("a", "b"))
            if f.id == "network.unprotected-service"] == ["Service kubeflow/drv"]
    invalid = copy.deepcopy(netpol)  # the API server rejects an unknown operator: the policy protects nothing
    invalid["spec"]["podSelector"]["matchExpressions"] = [{"key": "app", "operator": "Like", "values": ["d"]}]
    assert [f.subject for f in network_findings(base, [*other, invalid], mode="m", variants=("a", "b"))
            if f.id == "network.unprotected-service"] == ["Service kubeflow/drv"]
    elsewhere = copy.deepcopy(netpol)
    elsewhere["metadata"]["namespace"] = "other"
    assert [f.subject for f in network_findings(base, [*other, elsewhere], mode="m", variants=("a", "b"))
            if f.id == "network.unprotected-service"] == ["Service kubeflow/drv"]
    ns_wide = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
               "metadata": {"name": "all", "namespace": "kubeflow"}, "spec": {}}
    exposure = {e.subject: e.protected_by for e in service_exposure([*other, ns_wide])}
    assert exposure == {"Service kubeflow/api": ["AuthorizationPolicy kubeflow/all"],
                        "Service kubeflow/drv": ["AuthorizationPolicy kubeflow/all"]}


def test_service_that_loses_its_policy_is_reported():
    api = deployment("api", {"app": "api"}, [{"name": "c", "image": "i:1"}])
    authz = {"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
             "metadata": {"name": "api", "namespace": "kubeflow"}, "spec": {"selector": {"matchLabels": {"app": "api"}}}}
    svc = service("api", {"app": "api"})
    found = network_findings([api, svc, authz], [api, svc], mode="m", variants=("a", "b"))
    assert [(f.id, f.subject) for f in found if f.severity.value == "error"] == [
        ("network.unprotected-service", "Service kubeflow/api")]
    assert "no longer protected" in found[0].message


@pytest.mark.parametrize("mode", ["standalone", "multi-user"])
def test_real_central_driver_adds_unprotected_driver_service(install_render, mode):
    base = install_render("sidecar-plugin", mode).manifests
    other = install_render("central-driver", mode).manifests
    found = network_findings(base, other, mode=mode, variants=("sidecar-plugin", "central-driver"))
    errors = [f for f in found if f.id == "network.unprotected-service"]
    assert [f.subject for f in errors] == ["Service kubeflow/ml-pipeline-driver"]
    assert errors[0].evidence["ports"] == [8080]
    assert errors[0].evidence["backends"] == ["Deployment kubeflow/ml-pipeline-driver"]


def test_real_multi_user_api_server_is_protected_by_istio(install_render):
    exposure = {e.subject: e for e in service_exposure(install_render("central-driver", "multi-user").manifests)}
    assert exposure["Service kubeflow/ml-pipeline"].protected_by == ["AuthorizationPolicy kubeflow/ml-pipeline"]
    assert exposure["Service kubeflow/seaweedfs"].protected_by == [
        "AuthorizationPolicy kubeflow/seaweedfs-service", "NetworkPolicy kubeflow/seaweedfs"]


def test_real_tree_against_itself_has_no_new_exposure(install_render):
    render = install_render("central-driver", "standalone").manifests
    found = network_findings(render, render, mode="standalone", variants=("central-driver", "central-driver"))
    assert [f.id for f in found] == ["network.unprotected-services"]


def test_service_exposure_finds_a_cronjobs_pods_by_their_template_labels():
    """A CronJob's pod labels are under spec.jobTemplate.spec.template.metadata (batch/v1), not
    spec.template.metadata: the Service's backends and the policy protecting them must be found there."""
    from harness.static.crosscheck import service_exposure

    labels = {"app": "nightly"}
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "kubeflow"},
               "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                   "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "report", "namespace": "kubeflow"},
               "spec": {"selector": labels, "ports": [{"port": 80}]}}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "only-ui", "namespace": "kubeflow"},
              "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "ui"}}}]}]}}
    [exposure] = service_exposure([cronjob, service, policy])
    assert exposure.backends == ["CronJob kubeflow/report"] and exposure.protected_by == ["NetworkPolicy kubeflow/only-ui"]


def test_exposure_and_network_checks_agree_on_which_pods_a_service_selects():
    """One rule (harness.manifests.services, as the EndpointSlice controller's syncService): same namespace, every
    selector pair in the pod template's labels; an ExternalName Service or one without a selector routes to no
    pod. The exposure check used to give an ExternalName Service the driver role of the pods it named."""
    from harness.manifests.services import service_backends
    from harness.static.exposure import backend_roles

    labels = {"app": "ml-pipeline-driver"}
    driver = deployment("ml-pipeline-driver", labels, [{"name": "driver", "image": "ghcr.io/kubeflow/kfp-driver:2"}])
    elsewhere = deployment("ml-pipeline-driver", labels, [{"name": "d", "image": "ghcr.io/kubeflow/kfp-driver:2"}],
                           namespace="other")
    plain, no_selector, wider = service("plain", labels), service("none", {}), service("wider", {**labels, "x": "y"})
    external = service("external", labels)
    external["spec"].update(type="ExternalName", externalName="driver.example.com")
    manifests = [driver, elsewhere, plain, no_selector, wider, external]
    assert [service_backends(s, manifests) for s in (plain, no_selector, wider, external)] == [[driver], [], [], []]
    roles = {key[3]: found for key, found in backend_roles(manifests).items()}
    assert roles == {"plain": {"driver"}, "none": set(), "wider": set(), "external": set()}
    exposed = {e.subject: e.backends for e in service_exposure(manifests)}
    assert exposed == {"Service kubeflow/plain": ["Deployment kubeflow/ml-pipeline-driver"],
                       "Service kubeflow/wider": []}
