"""Security probes: request building on the real renders, verdicts on documented responses, and the probe
pod's script run for real against a fake driver served over HTTP on 127.0.0.1 (the only thing faked)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness.config import load_config
from harness.errors import HarnessError
from harness.live.probes import (
    PROBE_SCRIPT,
    ProbeRequest,
    ProbeResponse,
    ProbeTargets,
    build_requests,
    check_in_cluster,
    driver_url,
    judge,
    parse_probe_log,
    probe_pod,
    user_sa_taskresult_findings,
)
from harness.render.kustomize import Renderer

REPO = Path(__file__).resolve().parent.parent
CONFIG = load_config()


@pytest.fixture(scope="module")
def mu_renders(kfp_trees: Path, shared_renderer: Renderer) -> dict:
    renderer = shared_renderer
    mode = CONFIG.mode("multi-user")
    return {v: renderer.render_install(kfp_trees / v, mode).manifests for v in CONFIG.variants}


def _targets(url: str) -> ProbeTargets:
    return ProbeTargets("kubeflow-user-example-com", "kfpc-tenant-b", url, "http://ml-pipeline.kubeflow.svc:8888")


def test_driver_url_per_variant_from_real_renders(mu_renders: dict) -> None:
    assert driver_url(CONFIG.variant("central-driver"), mu_renders["central-driver"]) == \
        "http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080/api/v1/template.execute"
    assert driver_url(CONFIG.variant("sidecar-plugin"), mu_renders["sidecar-plugin"]) == \
        "http://{agent_pod_ip}:8080/api/v1/template.execute"
    assert driver_url(CONFIG.variant("driver-pod"), mu_renders["driver-pod"]) == ""


def test_central_request_is_flat_json_with_base64_specs_and_namespace(mu_renders: dict) -> None:
    variant = CONFIG.variant("central-driver")
    requests = {r.probe: r for r in build_requests(variant, _targets(driver_url(variant, mu_renders["central-driver"])))}
    body = json.loads(requests["driver-cross-namespace"].body)
    assert body["namespace"] == "kfpc-tenant-b" and body["type"] == "ROOT_DAG"
    file_read = json.loads(requests["driver-file-read"].body)
    assert base64.b64decode(file_read["component"]).decode() == "@/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert requests["kfp-cross-tenant-runs"].auth == "tenant-token"


def test_sidecar_request_uses_the_plugin_envelope(mu_renders: dict) -> None:
    variant = CONFIG.variant("sidecar-plugin")
    requests = {r.probe: r for r in build_requests(variant, _targets(driver_url(variant, mu_renders["sidecar-plugin"])))}
    args = json.loads(requests["driver-unauthenticated"].body)["template"]["plugin"]["driver-plugin"]["args"]
    assert args["type"] == "ROOT_DAG" and "namespace" not in args  # the plugin takes its pod's namespace


def test_driver_pod_variant_gets_only_kfp_api_probes() -> None:
    probes = [r.probe for r in build_requests(CONFIG.variant("driver-pod"), _targets(""))]
    assert probes == ["kfp-cross-tenant-runs", "kfp-cross-tenant-run"]


@pytest.mark.parametrize("url", ["https://example.com/x", "http://8.8.8.8/", "http://localhost:8888/"])
def test_targets_outside_the_cluster_are_refused(url: str) -> None:
    with pytest.raises(HarnessError, match="not inside the cluster"):
        check_in_cluster(url)


DOCUMENTED = yaml.safe_load((REPO / "fixtures" / "probes" / "documented-responses.yaml").read_text())


@pytest.mark.parametrize("case", DOCUMENTED, ids=[c["name"] for c in DOCUMENTED])
def test_verdict_on_documented_response(case: dict) -> None:
    response = ProbeResponse.from_dict(case["response"])
    request = ProbeRequest(response.probe, "", "POST", "http://ml-pipeline-driver.kubeflow.svc:8080/x")
    finding = judge(request, response, variant=case["variant"], mode="multi-user")
    assert (finding.id, finding.severity.value) == (case["expect"]["id"], case["expect"]["severity"])
    verified = case["expect"].get("verified", True)
    assert (finding.evidence.get("status") != "skipped") == verified
    assert finding.message.startswith("not verified") != verified


def test_user_sa_allowed_to_patch_tasksets_is_reported() -> None:
    findings = user_sa_taskresult_findings(
        {"patch workflowtasksets/status": True, "create workflowtaskresults": False},
        identity="kubeflow-user-example-com/default-editor", variant="central-driver", mode="multi-user")
    assert [f.message for f in findings] == [
        "user code's ServiceAccount may patch workflowtasksets/status: a task can forge driver/task results"]


class _LeakyDriver(BaseHTTPRequestHandler):
    """A driver that echoes the file a `component: @path` names: what the file-read probe must catch."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        component = base64.b64decode(body.get("component", "")).decode()
        if component.startswith("@"):
            payload = b"driver execution failed: bad component: " + Path(component[1:]).read_bytes()
            self.send_response(500)
        elif body.get("namespace") == "kfpc-tenant-b":
            payload = json.dumps({"execution-id": "42", "iteration-count": "0"}).encode()
            self.send_response(200)
        else:
            payload = b"driver execution failed: no pipeline"
            self.send_response(500)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        ok = self.headers.get("Authorization", "").startswith("Bearer ")
        self.send_response(403 if not ok else 403)
        self.end_headers()
        self.wfile.write(b'{"error":"forbidden"}')

    def log_message(self, *args) -> None:
        pass


def test_probe_script_fake_driver_http_catches_file_leak_without_printing_it(tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLWNhbmFyeQ"
    (tmp_path / "token").write_text(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LeakyDriver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        variant = CONFIG.variant("central-driver")
        # the in-cluster URLs are swapped for the fake driver's address; the bodies are the real ones
        requests = [ProbeRequest(r.probe, r.description, r.method, r.url.replace(
            "http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080", base).replace(
            "http://ml-pipeline.kubeflow.svc:8888", base), r.body, r.headers, r.auth)
            for r in build_requests(variant, _targets("http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080/x"))]
        requests = [r if "component" not in r.body else ProbeRequest(
            r.probe, r.description, r.method, r.url, r.body.replace(
                base64.b64encode(b"@/var/run/secrets/kubernetes.io/serviceaccount/token").decode(),
                base64.b64encode(f"@{tmp_path / 'token'}".encode()).decode()), r.headers, r.auth) for r in requests]
        env = {**os.environ, "KFPC_PROBES": json.dumps([r.__dict__ for r in requests]),
               "KFPC_TOKEN_FILE": str(tmp_path / "token")}
        out = subprocess.run([sys.executable, "-c", PROBE_SCRIPT], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout
    finally:
        server.shutdown()
    assert token not in out, "the probe pod must never print what it found"
    verdicts = {r.probe: judge(next(q for q in requests if q.probe == r.probe), r, variant="central-driver",
                               mode="multi-user") for r in parse_probe_log(out)}
    assert verdicts["driver-file-read"].blocking and "file content" in verdicts["driver-file-read"].message
    assert verdicts["driver-cross-namespace"].blocking
    assert verdicts["driver-unauthenticated"].blocking
    assert not verdicts["kfp-cross-tenant-runs"].blocking


def test_probe_pod_is_bounded_labelled_and_carries_no_token(mu_renders: dict) -> None:
    variant = CONFIG.variant("central-driver")
    requests = build_requests(variant, _targets(driver_url(variant, mu_renders["central-driver"])))
    pod = probe_pod(requests, namespace="kubeflow-user-example-com", image="python:3.11", run_id="r1")
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] <= 120
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kfp-conformance"
    assert "Bearer" not in json.dumps(pod["spec"]["containers"][0]["env"])


# --- defect 7: the KFP probes authenticate the way multi-user KFP requires (fake Kubernetes + KFP API) -----
def _kubelet_files(pod: dict, kube, tmp_path: Path) -> dict[str, str]:
    """What the kubelet does for the probe container, against the fake TokenRequest API: the automounted
    token (API-server audience) and every projected serviceAccountToken source (its audience and lifetime),
    written under tmp_path; returns the container env with mount paths mapped to those files."""
    from harness.models import Identity

    spec, container = pod["spec"], pod["spec"]["containers"][0]
    identity = Identity(pod["metadata"]["namespace"], spec["serviceAccountName"])
    (tmp_path / "sa").mkdir()
    (tmp_path / "sa" / "token").write_text(kube.request_token(identity))
    env = {"KFPC_TOKEN_FILE": str(tmp_path / "sa" / "token")}
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    mapped: dict[str, str] = {}
    for volume in spec.get("volumes", []):
        for source in (volume.get("projected") or {}).get("sources", []):
            token = source.get("serviceAccountToken")
            if token and volume["name"] in mounts:
                directory = tmp_path / volume["name"]
                directory.mkdir(exist_ok=True)
                (directory / token["path"]).write_text(kube.request_token(
                    identity, audiences=[token["audience"]] if token.get("audience") else [],
                    expiration_seconds=token.get("expirationSeconds", 3600)))
                mapped[mounts[volume["name"]]] = str(directory)
    for item in container["env"]:
        value = item["value"]
        for mount, local in mapped.items():
            value = value.replace(mount, local)
        env[item["name"]] = value
    return env


@pytest.mark.parametrize("leaky", [False, True], ids=["isolated", "rbac-leak"])
def test_probes_fake_api_kfp_probes_authenticate_with_projected_audience_token(tmp_path: Path, leaky: bool) -> None:
    """The fake KFP API authenticates like multi-user KFP (TokenReview for pipelines.kubeflow.org, then a
    SubjectAccessReview): the probe's token must get past authentication, so the verdict reflects isolation
    (403: held; 200 when RBAC leaks: error), never a 401 taken for a refusal."""
    from harness.boundary.kube import Kube
    from harness.testing.fakeapi import FakeCluster, FakeRun

    tenant, other = "kubeflow-user-example-com", "kfpc-tenant-b"
    with FakeCluster(multi_user=True) as fake:
        for namespace in (tenant, other):
            fake.add({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": "default-editor", "namespace": namespace}})
            fake.allow(f"{namespace}/default-editor", "*", "*", group="pipelines.kubeflow.org", namespace=namespace)
        if leaky:  # a misconfigured binding gives tenant A the other tenant's runs
            fake.allow(f"{tenant}/default-editor", "*", "runs", group="pipelines.kubeflow.org", namespace=other)
        fake.runs["b-run"] = FakeRun({"run_id": "b-run", "display_name": "b", "namespace": other, "state": "SUCCEEDED",
                                      "submitted_by": f"{other}/default-editor"}, 0, "SUCCEEDED")
        kube = Kube(str(fake.kubeconfig(tmp_path / "kubeconfig")), "fake")
        in_cluster = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
        requests = build_requests(CONFIG.variant("driver-pod"),
                                  ProbeTargets(tenant, other, "", in_cluster, other_run_id="b-run"))
        pod = probe_pod(requests, namespace=tenant, image="python:3.11", run_id="r1")
        env = _kubelet_files(pod, kube, tmp_path)
        env["KFPC_PROBES"] = env["KFPC_PROBES"].replace(in_cluster, fake.kfp_url)
        env["KFPC_PROXY_READY_URL"] = ""  # no mesh here; the proxy wait has its own test
        out = subprocess.run([sys.executable, "-c", PROBE_SCRIPT], env={**os.environ, **env}, capture_output=True,
                             text=True, timeout=60, check=True).stdout
        issued = [t["audiences"] for t in fake.tokens]
    assert ["pipelines.kubeflow.org"] in issued  # the projected token asked for KFP's audience
    responses = {r.probe: r for r in parse_probe_log(out)}
    verdicts = {r.probe: judge(r, responses[r.probe], variant="driver-pod", mode="multi-user") for r in requests}
    assert {p: responses[p].status for p in verdicts} == ({"kfp-cross-tenant-runs": 403, "kfp-cross-tenant-run": 403}
                                                           if not leaky else
                                                           {"kfp-cross-tenant-runs": 200, "kfp-cross-tenant-run": 200})
    assert all(v.blocking == leaky for v in verdicts.values())
    assert not any(v.message.startswith("not verified") for v in verdicts.values())


# --- defect 11: the probes do not race the Istio sidecar ----------------------------------------------------
def test_probe_pod_holds_the_app_until_the_istio_proxy_is_ready(mu_renders: dict) -> None:
    variant = CONFIG.variant("central-driver")
    pod = probe_pod(build_requests(variant, _targets(driver_url(variant, mu_renders["central-driver"]))),
                    namespace="kubeflow-user-example-com", image="python:3.11", run_id="r1")
    assert json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"]) == \
        {"holdApplicationUntilProxyStarts": True}
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["KFPC_PROXY_READY_URL"] == "http://localhost:15020/healthz/ready"


def test_probe_script_fake_istio_proxy_waits_until_ready_and_never_judges_an_early_refusal(tmp_path: Path) -> None:
    """A fake pilot-agent readiness endpoint turns ready after a delay; until then the fake driver's port
    refuses connections, as Envoy's redirected port does before the proxy listens. The probes must wait and
    then reach the driver; with the proxy never ready, the refused probes are 'not verified'."""
    import socket
    import time

    ready_at = time.monotonic() + 1.5
    driver = ThreadingHTTPServer(("127.0.0.1", 0), _LeakyDriver, bind_and_activate=False)
    driver.server_bind()  # bound, not listening: connecting is refused like a port Envoy does not serve yet

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            up = time.monotonic() >= ready_at
            if up and not getattr(driver, "started", False):
                driver.started = True
                driver.server_activate()
                threading.Thread(target=driver.serve_forever, daemon=True).start()
            self.send_response(200 if up else 503)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    readiness = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=readiness.serve_forever, daemon=True).start()
    with socket.socket() as probe_socket:
        assert probe_socket.connect_ex(("127.0.0.1", driver.server_address[1])) != 0  # refused before "ready"
    variant = CONFIG.variant("central-driver")
    base = f"http://127.0.0.1:{driver.server_address[1]}"
    requests = [ProbeRequest(r.probe, r.description, r.method, base + "/api/v1/template.execute", r.body, r.headers)
                for r in build_requests(variant, _targets("http://ml-pipeline-driver.kubeflow.svc.cluster.local:8080/x"))
                if r.probe == "driver-unauthenticated"]
    (tmp_path / "token").write_text("not-a-real-token")
    env = {**os.environ, "KFPC_PROBES": json.dumps([r.__dict__ for r in requests]),
           "KFPC_TOKEN_FILE": str(tmp_path / "token")}
    try:
        waited = subprocess.run([sys.executable, "-c", PROBE_SCRIPT], capture_output=True, text=True, timeout=60,
                                check=True, env={**env, "KFPC_PROXY_READY_URL": f"http://127.0.0.1:"
                                                                                f"{readiness.server_address[1]}/"}).stdout
    finally:
        readiness.shutdown()
        driver.shutdown() if getattr(driver, "started", False) else driver.server_close()
    response = parse_probe_log(waited)[0]
    assert response.status == 500, response.error  # reached the driver once the proxy was up
    assert response.proxy == "ready"
    assert judge(requests[0], response, variant="central-driver", mode="multi-user").blocking

    # never ready: a refused connection is reported as not verified, never as "refused"
    refused = ProbeResponse("driver-unauthenticated", None, error="URLError: [Errno 111] Connection refused",
                            proxy="not-ready", attempts=3)
    finding = judge(requests[0], refused, variant="central-driver", mode="multi-user")
    assert finding.message.startswith("not verified") and finding.evidence["status"] == "skipped"
