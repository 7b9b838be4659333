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
from harness.probes import (
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
from harness.render import Renderer

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
