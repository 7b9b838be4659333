"""The security plan (probes, task-result reviews, TLS endpoints) over the shared trees against golden files,
and the live security runner against a FAKE Kubernetes API on 127.0.0.1 (harness.testing.fakeapi) with a fake
`kubectl` on PATH (harness.testing.fakebin): the probe pod's log is scripted, everything else is real.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from harness.config import load_config
from harness.live.security import OTHER_TENANT, SecurityRun, ca_secrets, probe_targets, security_plan
from harness.manifests.tls import Endpoint, tls_endpoints
from harness.testing.fakeapi import FakeCluster
from tests.golden_files import check_golden
from tests.livefakes import make_fakes

CONFIG = load_config()
VARIANTS = ("driver-pod", "sidecar-plugin", "central-driver")
TENANT = "kubeflow-user-example-com"




@pytest.mark.parametrize("mode", ["multi-user", "tls"])
def test_security_plan_all_variants_matches_golden(install_render, kfp_trees, mode):
    plans = [security_plan(CONFIG.variant(v), CONFIG.mode(mode), install_render(v, mode).manifests, run_id="golden",
                           image="python:3.11", workflows_dir=kfp_trees / v / "test_data" / "compiled-workflows")
             for v in VARIANTS]
    text = json.dumps(plans, indent=2, sort_keys=True) + "\n"
    assert str(kfp_trees) not in text
    by_variant = {p["variant"]: p for p in plans}
    if mode == "multi-user":
        # driver-pod has no endpoint: its driver probes are not verified, never passed
        assert set(by_variant["driver-pod"]["not_verified"]) == {"driver-unauthenticated", "driver-cross-namespace",
                                                                 "driver-file-read"}
        central = by_variant["central-driver"]["probes"]
        assert central["targets"]["driver_url"] == \
            "http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080/api/v1/template.execute"
        assert [r["probe"] for r in central["requests"]] == ["driver-unauthenticated", "driver-cross-namespace",
                                                            "driver-file-read", "kfp-cross-tenant-runs",
                                                            "kfp-cross-tenant-run"]
        assert by_variant["sidecar-plugin"]["probes"]["agent_pod"]
        assert central["other_tenant"]["metadata"]["name"] == OTHER_TENANT
    else:
        for plan in plans:
            assert plan["tls"]["endpoints"] and plan["tls"]["ca_secrets"]
            assert len(plan["not_verified"]) == 5  # no tenants in tls mode
        assert any(c["scheme"] == "http" and "ml-pipeline-driver" in c["target"]
                   for c in by_variant["central-driver"]["tls"]["driver_connections"])
    check_golden(f"security-plan.{mode}.json", text)


# --- the live runner against the fake API -------------------------------------------------------------------
def _line(**data) -> str:
    return json.dumps(data)


CENTRAL_LOG = [
    _line(probe="driver-unauthenticated", status=500, message="driver execution failed: failed to get pipeline",
          body_sha256="ab" * 32, body_length=48),
    _line(probe="driver-cross-namespace", status=200, json_keys=["execution-id"], indicators=["execution-id"]),
    _line(probe="driver-file-read", status=400, message="invalid request: component: illegal base64 data"),
    _line(probe="kfp-cross-tenant-runs", status=403, message="PermissionDenied"),
    _line(probe="kfp-cross-tenant-run", status=200, json_keys=["run_id"], indicators=["runs"]),
    "Traceback? no: a stray line the parser ignores",
]


@pytest.fixture
def fake(tmp_path):
    with FakeCluster(multi_user=True) as cluster:
        cluster.kubeconfig(tmp_path / "kubeconfig")
        yield cluster


def _run(tmp_path, fake, variant: str, **kwargs) -> tuple[SecurityRun, object]:
    from harness.boundary.kube import Kube

    fakes = make_fakes(tmp_path / "fakes")
    runner = fakes.runner()
    kube = Kube(str(tmp_path / "kubeconfig"), "fake", runner=runner)
    run = SecurityRun(kube=kube, runner=runner, kubectl=["kubectl", "--kubeconfig", str(tmp_path / "kubeconfig"),
                                                         "--context", "fake"],
                      variant=CONFIG.variant(variant), mode=CONFIG.mode(kwargs.pop("mode", "multi-user")),
                      manifests=kwargs.pop("manifests"), out_dir=tmp_path / "out", run_id="t1", poll_interval=0.05,
                      pod_timeout=kwargs.pop("pod_timeout", 5))
    return run, fakes


def _probe_pod(fake, *, terminated: bool = True, lines=CENTRAL_LOG):
    state = {"terminated": {"exitCode": 0}} if terminated else {"running": {}}
    fake.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kfpc-probe-t1", "namespace": TENANT},
              "spec": {"containers": [{"name": "probe"}, {"name": "istio-proxy"}]},
              "status": {"phase": "Running", "containerStatuses": [{"name": "probe", "state": state},
                                                                    {"name": "istio-proxy", "state": {"running": {}}}]}})
    fake.add_log(TENANT, "kfpc-probe-t1", "probe", list(lines))


def test_security_fake_api_central_probes_judged_from_scripted_pod_log(tmp_path, fake, install_render):
    manifests = install_render("central-driver", "multi-user").manifests
    run, fakes = _run(tmp_path, fake, "central-driver", manifests=manifests)
    _probe_pod(fake)  # the Istio sidecar keeps the pod Running: the probe container's end is what counts
    targets = probe_targets(run.variant, run.mode, manifests, other_run_id="00000002-fake-run")
    findings, responses = run.probe(targets)
    run.cleanup()
    severities = {f.id: f.severity.value for f in findings}
    assert severities == {"security.driver-unauthenticated": "error", "security.driver-cross-namespace": "error",
                          "security.driver-file-read": "info", "security.kfp-cross-tenant-runs": "info",
                          "security.kfp-cross-tenant-run": "error"}
    assert len(responses) == 5
    kubectl = [c for c in fakes.calls("kubectl")]
    assert [c[4] for c in kubectl] == ["apply", "delete"] and kubectl[0][-1].endswith("security/probe-pod.yaml")
    pod = (tmp_path / "out" / "security" / "probe-pod.yaml").read_text()
    assert "00000002-fake-run" in pod and "ml-pipeline-driver.kubeflow.svc.cluster.local:8080" in pod


def test_security_fake_api_sidecar_without_agent_pod_reports_driver_probes_not_verified(tmp_path, fake, install_render):
    manifests = install_render("sidecar-plugin", "multi-user").manifests
    run, _fakes = _run(tmp_path, fake, "sidecar-plugin", manifests=manifests)
    _probe_pod(fake, lines=CENTRAL_LOG[3:5])
    assert run.agent_pod_ip(timeout=0.2) == ""
    findings, _ = run.probe(probe_targets(run.variant, run.mode, manifests), agent_pod_ip="")
    skipped = {f.id for f in findings if f.evidence.get("status") == "skipped"}
    assert skipped == {"security.driver-unauthenticated", "security.driver-cross-namespace", "security.driver-file-read"}
    assert all(f.message.startswith("not verified") for f in findings if f.id in skipped)


def test_security_fake_api_agent_pod_ip_from_running_agent(tmp_path, fake, install_render):
    run, _fakes = _run(tmp_path, fake, "sidecar-plugin", manifests=[])
    fake.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wf-1-agent", "namespace": TENANT,
                                                             "labels": {"workflows.argoproj.io/component": "agent"}},
              "spec": {"containers": [{"name": "main"}]}, "status": {"phase": "Running", "podIP": "10.244.0.17"}})
    assert run.agent_pod_ip(timeout=2) == "10.244.0.17"


def test_security_fake_api_probe_pod_that_never_finishes_is_not_verified(tmp_path, fake, install_render):
    manifests = install_render("central-driver", "multi-user").manifests
    run, _fakes = _run(tmp_path, fake, "central-driver", manifests=manifests, pod_timeout=0.3)
    _probe_pod(fake, terminated=False)
    findings, responses = run.probe(probe_targets(run.variant, run.mode, manifests))
    assert responses == [] and len(findings) == 5
    assert all(f.evidence.get("status") == "skipped" and "did not finish" in f.message for f in findings)


def test_security_fake_api_task_result_reviews_and_redacted_security_json(tmp_path, fake):
    run, _fakes = _run(tmp_path, fake, "central-driver", manifests=[])
    fake.allow(f"{TENANT}/default-editor", "patch", "workflowtasksets", group="argoproj.io", subresource="status")
    findings, answers = run.task_result_findings()
    assert answers == {"patch workflowtasksets/status": True, "create workflowtaskresults": False}
    assert [(f.id, f.subject) for f in findings] == [("security.user-sa-writes-task-results",
                                                      f"ServiceAccount {TENANT}/default-editor")]
    run.kube.remember_secret("eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.c2lnbmF0dXJlLXZhbHVl")
    path = run.write(findings, {"note": "token eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.c2lnbmF0dXJlLXZhbHVl"})
    text = path.read_text()
    assert "c2VjcmV0LXRva2VuLXZhbHVl" not in text and "<redacted>" in text


def test_security_fake_api_tls_leaf_checked_against_ca_secret(tmp_path, fake, install_render, kfp_trees):
    """The CA comes from the Secret the rendered Certificate names; the presented leaf is checked with it."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    manifests = install_render("central-driver", "tls").manifests
    run, _fakes = _run(tmp_path, fake, "central-driver", manifests=manifests, mode="tls")
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kfpc-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    endpoints = tls_endpoints(manifests)
    assert endpoints

    intruder = ec.generate_private_key(ec.SECP256R1())  # signs the one endpoint that must fail

    def leaf_for(endpoint: Endpoint) -> bytes:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
                .issuer_name(name).public_key(leaf_key.public_key()).serial_number(2)
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in endpoint.names]), critical=False)
                .sign(intruder if endpoint == endpoints[0] else key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.DER)

    pem = base64.b64encode(ca.public_bytes(serialization.Encoding.PEM)).decode()
    for secret in set(ca_secrets(manifests).values()):
        namespace, secret_name = secret.split("/")
        fake.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name, "namespace": namespace},
                  "data": {"ca.crt": pem}})
    findings = run.tls_findings(leaf_for, kfp_trees / "central-driver" / "test_data" / "compiled-workflows",
                                driver_run_states=["SUCCEEDED", "FAILED"])
    results = {f.subject: f for f in findings if f.id.startswith("tls.endpoint")}
    first = endpoints[0]
    assert results.pop(f"Service {first.service}:{first.port}").message == \
        "certificate does not chain to the install's CA"
    assert results and all(f.id == "tls.endpoint-valid" for f in results.values())
    driver_path = next(f for f in findings if f.id == "tls.driver-path")
    assert driver_path.severity.value == "info" and driver_path.message.startswith("1/2 run(s) SUCCEEDED")
    plain = [f for f in findings if f.id == "tls.driver-plain-http"]
    assert any("ml-pipeline-driver" in f.subject and f.severity.value == "warning" for f in plain)
