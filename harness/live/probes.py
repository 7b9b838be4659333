"""Security probes run from a pod in a tenant namespace (multi-user mode) against each variant.

Each probe is data (what to send, to which in-cluster target) plus a verdict over the response. The
requests are built here (pure); a probe pod in the tenant namespace sends them and prints, per probe,
only the status, the JSON keys and *indicators* (does the body look like a token, a key, a certificate?)
with the body's hash and length — never the body. Targets are restricted to the cluster under test.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

from harness.errors import HarnessError
from harness.manifests.labels import labels_match
from harness.manifests.yamlload import load as load_yaml
from harness.models import Finding, Severity, Variant

TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# Multi-user KFP authenticates a bearer token only if a TokenReview finds audience pipelines.kubeflow.org in
# it (backend/src/apiserver/auth/authenticator_token_review.go ensureAudience, common/const.go
# DefaultTokenReviewAudience @81fc181b1; same on both PoC branches). The pod's default token has the API
# server's audience, so the KFP probes use a projected token, mounted where the kfp SDK and Kubeflow's
# `access-ml-pipeline` PodDefault put it (kfp/client/__init__.py KF_PIPELINES_SA_TOKEN_PATH;
# kubeflow/manifests master tests/poddefaults.access-ml-pipeline.kubeflow-user-example-com.yaml).
KFP_AUDIENCE = "pipelines.kubeflow.org"
KFP_TOKEN_DIR = "/var/run/secrets/kubeflow/pipelines"
KFP_TOKEN_SECONDS = 3600  # as KFP's own persistence agent requests (base/pipeline/ml-pipeline-persistenceagent-deployment.yaml)
MAX_PROBES = 12
PROBE_TIMEOUT_SECONDS = 5
# The Istio sidecar: traffic is redirected to Envoy before it listens, so a request sent too early fails to
# connect. The injector holds the app until pilot-agent reports ready (postStart `pilot-agent wait`, whose URL
# is the status port's /healthz/ready) when holdApplicationUntilProxyStarts is set, and native sidecars
# start the app only after the proxy's startupProbe on /healthz/ready passes (kubeflow/manifests master
# common/istio/istio-install/base/install.yaml: `$holdProxy := and (...) (not $nativeSidecar)`). The script
# also waits on that URL itself and retries refused connections, so no early failure is judged.
PROXY_READY_URL = "http://localhost:15020/healthz/ready"
PROXY_WAIT_SECONDS = 30
CONNECT_ATTEMPTS = 3
HOLD_UNTIL_PROXY = '{"holdApplicationUntilProxyStarts": true}'
# Hosts a probe may target: in-cluster service DNS, pod IPs (filled in at run time), nothing else.
_IN_CLUSTER = re.compile(r"^([a-z0-9-]+\.){2}svc(\.cluster\.local)?$|^\{agent_pod_ip\}$|^10\.|^172\.(1[6-9]|2\d|3[01])\.|^192\.168\.")


@dataclass(frozen=True)
class ProbeRequest:
    probe: str
    description: str
    method: str
    url: str
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = "none"  # none | tenant-token (the pod's projected KFP-audience token, added inside the pod)


@dataclass(frozen=True)
class ProbeResponse:
    """What the probe pod reports: no body, only its shape and indicators."""

    probe: str
    status: int | None  # None: no HTTP response (refused, timeout, DNS)
    error: str = ""
    json_keys: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()  # jwt, pem-key, pem-cert, file-content, execution-id, runs
    body_sha256: str = ""
    body_length: int = 0
    message: str = ""  # a short, already redacted error message (e.g. "driver execution failed: ...")
    proxy: str = ""  # the Istio proxy when the probe was sent: ready | not-ready | "" (not checked)
    attempts: int = 1  # connection attempts (refused connections are retried)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResponse:
        return cls(probe=data["probe"], status=data.get("status"), error=data.get("error", ""),
                   json_keys=tuple(data.get("json_keys", [])), indicators=tuple(data.get("indicators", [])),
                   body_sha256=data.get("body_sha256", ""), body_length=data.get("body_length", 0),
                   message=data.get("message", ""), proxy=data.get("proxy", ""), attempts=data.get("attempts", 1))


@dataclass(frozen=True)
class ProbeTargets:
    tenant_namespace: str
    other_namespace: str
    driver_url: str  # "" when the variant has no network-reachable driver
    kfp_api_url: str
    other_run_id: str = "{other_run_id}"


def driver_url(variant: Variant, manifests: list[dict[str, Any]]) -> str:
    """The in-cluster URL of the driver endpoint, from the variant's facts and its render."""
    kind = variant.driver.kind
    if kind == "central-service":
        deployment = next((m for m in manifests if m.get("kind") == "Deployment"
                           and m["metadata"]["name"] == variant.driver.logs.name), None)
        labels = ((deployment or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels")) or {}
        for svc in (m for m in manifests if m.get("kind") == "Service"):
            selector = svc.get("spec", {}).get("selector") or {}
            if selector and labels_match(selector, labels):
                port = svc["spec"]["ports"][0]["port"]
                return (f"http://{svc['metadata']['name']}.{svc['metadata'].get('namespace', 'kubeflow')}"
                        f".svc.cluster.local:{port}/api/v1/template.execute")
        raise HarnessError(f"no Service selects the {variant.driver.logs.name} Deployment in the render",
                           "check the variant's driver facts in the config")
    if kind == "executor-plugin":
        for cm in (m for m in manifests if m.get("kind") == "ConfigMap"):
            labels = cm["metadata"].get("labels") or {}
            if labels.get("workflows.argoproj.io/configmap-type") == "ExecutorPlugin":
                sidecar = load_yaml(cm["data"]["sidecar.container"]) or {}
                port = sidecar.get("ports", [{}])[0].get("containerPort", 8080)
                # the plugin listens on every interface of the workflow's agent pod (§3.2)
                return f"http://{{agent_pod_ip}}:{port}/api/v1/template.execute"
    return ""  # driver pods expose no endpoint


def _driver_body(variant: Variant, args: dict[str, str]) -> str:
    """The driver request in the variant's wire shape (§3.2 plugin envelope, §3.3 flat JSON with base64)."""
    if variant.driver.kind == "central-service":
        encoded = {k: base64.b64encode(v.encode()).decode() if k in ("component", "task", "container",
                                                                      "kubernetes_config", "runtime_config") else v
                   for k, v in args.items()}
        return json.dumps(encoded, sort_keys=True)
    plugin_args = {k: v for k, v in args.items() if k != "namespace"}
    return json.dumps({"template": {"plugin": {"driver-plugin": {"args": plugin_args}}}}, sort_keys=True)


def build_requests(variant: Variant, targets: ProbeTargets) -> list[ProbeRequest]:
    base_args = {"type": "ROOT_DAG", "pipeline_name": "kfpc-probe", "run_id": "00000000-0000-0000-0000-00000000kfpc",
                 "run_name": "kfpc-probe", "run_display_name": "kfpc-probe", "component": "{}", "task": "{}",
                 "runtime_config": "{}", "namespace": targets.tenant_namespace,
                 "ml_pipeline_server_address": "ml-pipeline.kubeflow", "ml_pipeline_server_port": "8887",
                 "mlmd_server_address": "metadata-grpc-service.kubeflow", "mlmd_server_port": "8080"}
    headers = {"Content-Type": "application/json"}
    requests: list[ProbeRequest] = []
    if targets.driver_url:
        requests += [
            ProbeRequest("driver-unauthenticated", "call the driver endpoint directly without credentials",
                         "POST", targets.driver_url, _driver_body(variant, base_args), headers),
            ProbeRequest("driver-cross-namespace", "ask the driver to act in another tenant's namespace",
                         "POST", targets.driver_url,
                         _driver_body(variant, {**base_args, "namespace": targets.other_namespace}), headers),
            ProbeRequest("driver-file-read", f"a component value that asks the driver to read {TOKEN_FILE}",
                         "POST", targets.driver_url,
                         _driver_body(variant, {**base_args, "type": "CONTAINER", "component": f"@{TOKEN_FILE}",
                                                "task": f"@{TOKEN_FILE}"}), headers),
        ]
    requests += [
        ProbeRequest("kfp-cross-tenant-runs", "list another tenant's runs with this tenant's token", "GET",
                     f"{targets.kfp_api_url}/apis/v2beta1/runs?namespace={targets.other_namespace}",
                     auth="tenant-token"),
        ProbeRequest("kfp-cross-tenant-run", "read another tenant's run (and its artifacts) with this tenant's token",
                     "GET", f"{targets.kfp_api_url}/apis/v2beta1/runs/{targets.other_run_id}", auth="tenant-token"),
    ]
    for request in requests:
        check_in_cluster(request.url)
    if len(requests) > MAX_PROBES:
        raise HarnessError(f"{len(requests)} probes exceed the bound of {MAX_PROBES}", "remove probes")
    return requests


def check_in_cluster(url: str) -> None:
    host = urlparse(url.replace("{agent_pod_ip}", "agent-pod-ip.placeholder.svc")).hostname or ""
    if not _IN_CLUSTER.match(host) and host != "agent-pod-ip.placeholder.svc":
        raise HarnessError(f"probe target {host!r} is not inside the cluster under test",
                           "probes may only target in-cluster Service DNS names or pod IPs")


# --- verdicts -------------------------------------------------------------------------------------------
def judge(request: ProbeRequest, response: ProbeResponse, *, variant: str, mode: str) -> Finding:
    """One finding per probe: `security.<probe>` with severity error when the tenant gained something."""
    fid = f"security.{request.probe}"
    evidence = {"request": {"method": request.method, "url": request.url, "auth": request.auth},
                "response": {k: v for k, v in asdict(response).items() if k != "probe"}}
    subject = f"probe {request.probe} from the tenant namespace"

    def finding(severity: Severity, message: str) -> Finding:
        return Finding(fid, severity, "security", mode, (variant,), subject, message, evidence)

    def not_verified(why: str) -> Finding:
        return Finding(fid, Severity.INFO, "security", mode, (variant,), subject, f"not verified: {why}",
                       {**evidence, "status": "skipped"})

    if response.status is None and response.proxy != "ready":
        # before the sidecar is up a connection fails whatever the target's policy: never a refusal
        return not_verified(f"no HTTP response ({response.error or 'no error recorded'}) and the Istio proxy "
                            f"was {'not ready' if response.proxy == 'not-ready' else 'not confirmed ready'}")
    if request.probe.startswith("kfp-cross-tenant"):
        return _judge_kfp(request, response, finding, not_verified)
    blocked = response.status is None or response.status in (401, 403)
    if request.probe == "driver-file-read":
        leaked = {"jwt", "pem-key", "pem-cert", "file-content"} & set(response.indicators)
        if leaked:
            return finding(Severity.ERROR, f"the driver returned file content ({', '.join(sorted(leaked))}; "
                                           f"sha256 {response.body_sha256[:12]}, {response.body_length} bytes)")
        return finding(Severity.INFO, "no file content came back" + (" (endpoint not reachable)" if blocked else ""))
    if response.status is None:
        return finding(Severity.INFO, f"unreachable from the tenant pod with its proxy ready: {response.error}")
    if blocked:
        return finding(Severity.INFO, f"refused: HTTP {response.status}")
    if request.probe == "driver-unauthenticated":
        return finding(Severity.ERROR, f"the driver answered an unauthenticated request from a tenant pod "
                                       f"(HTTP {response.status}); any tenant can drive executions")
    if request.probe == "driver-cross-namespace":
        if "execution-id" in response.indicators:
            return finding(Severity.ERROR, "the driver created an execution in another tenant's namespace")
        if "forbidden" in response.message.lower():
            return finding(Severity.WARNING, "the driver accepted the other namespace and was stopped only by RBAC")
        return finding(Severity.WARNING, f"the driver accepted a request naming another tenant's namespace "
                                         f"(HTTP {response.status}); outcome: {response.message or 'no message'}")
    return finding(Severity.WARNING, f"unjudged probe response HTTP {response.status}")


def _judge_kfp(request: ProbeRequest, response: ProbeResponse, finding: Callable[[Severity, str], Finding],
               not_verified: Callable[[str], Finding]) -> Finding:
    """KFP answers 401 when authentication failed and 403 when the SubjectAccessReview denied
    (resource/resource_manager.go IsAuthorized @81fc181b1); only 403 shows that isolation held. It reads the
    run before authorizing (server/run_server.go canAccessRun), so a 404 says nothing about access."""
    status = response.status
    if status == 200:
        return finding(Severity.ERROR, "another tenant's runs were readable with this tenant's token")
    if status == 403:
        return finding(Severity.INFO, "refused: HTTP 403 (authenticated, denied by the access review)")
    if status is None:
        return not_verified(f"no HTTP response from the KFP API ({response.error})")
    if status == 401:
        return not_verified("the KFP API did not authenticate the probe's token (HTTP 401), so cross-tenant "
                            f"access was not tested; check the token's audience {KFP_AUDIENCE}")
    if status == 404 and request.probe == "kfp-cross-tenant-run":
        return not_verified("the other tenant's run was not found (HTTP 404), so access to it was not tested")
    return not_verified(f"HTTP {status} from the KFP API: {response.message or 'no message'}")


def not_applicable(probe: str, reason: str, *, variant: str, mode: str) -> Finding:
    """A probe that cannot run against a variant is reported as not verified, never as passed."""
    return Finding(f"security.{probe}", Severity.INFO, "security", mode, (variant,),
                   f"probe {probe} from the tenant namespace", f"not verified: {reason}", {"status": "skipped"})


def user_sa_taskresult_findings(sar: dict[str, bool], *, identity: str, variant: str, mode: str) -> list[Finding]:
    """User code's ServiceAccount writing Argo task results: allowed means user code can forge results."""
    findings = []
    for check, allowed in sorted(sar.items()):
        if allowed:
            findings.append(Finding("security.user-sa-writes-task-results", Severity.WARNING, "security", mode,
                                    (variant,), f"ServiceAccount {identity}",
                                    f"user code's ServiceAccount may {check}: a task can forge driver/task results",
                                    {"check": check}))
    return findings


# --- the probe pod ---------------------------------------------------------------------------------------
# Runs inside the tenant namespace with python's standard library only; prints one JSON line per probe.
# The KFP token file is read before every request: the kubelet rewrites a projected token as it rotates it.
PROBE_SCRIPT = r'''
import hashlib, json, os, re, ssl, time, urllib.error, urllib.request
probes = json.loads(os.environ["KFPC_PROBES"])
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return ""
own_token = read(os.environ.get("KFPC_TOKEN_FILE", "/var/run/secrets/kubernetes.io/serviceaccount/token"))
api_token_file = os.environ.get("KFPC_API_TOKEN_FILE", "")
proxy, ready_url = "", os.environ.get("KFPC_PROXY_READY_URL", "")
if ready_url:
    proxy, deadline = "not-ready", time.monotonic() + PROXY_WAIT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as r:
                if r.status == 200:
                    proxy = "ready"
                    break
        except Exception:
            pass
        time.sleep(0.5)
checks = {"jwt": r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}", "pem-key": r"-----BEGIN [A-Z ]*PRIVATE KEY",
          "pem-cert": r"-----BEGIN CERTIFICATE", "execution-id": r'"execution-id"\s*:\s*"\d+"',
          "runs": r'"runs"\s*:\s*\['}
def refused(e):
    reason = getattr(e, "reason", e)
    return isinstance(reason, (ConnectionRefusedError, ConnectionResetError)) or type(e).__name__ in (
        "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected")
for p in probes:
    out = {"probe": p["probe"], "status": None, "proxy": proxy}
    url = p["url"].replace("{agent_pod_ip}", os.environ.get("AGENT_POD_IP", "0.0.0.0"))
    headers = dict(p.get("headers") or {})
    secrets = [t for t in (own_token,) if t]
    if p.get("auth") == "tenant-token":
        api_token = read(api_token_file)
        if api_token:
            headers["Authorization"] = "Bearer " + api_token
            secrets.append(api_token)
    req = urllib.request.Request(url, data=p["body"].encode() if p.get("body") else None, headers=headers,
                                 method=p["method"])
    status = body = None
    for attempt in range(1, ATTEMPTS + 1):
        out["attempts"] = attempt
        try:
            with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT, context=ssl._create_unverified_context()) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except Exception as e:
            out["error"] = type(e).__name__ + ": " + str(getattr(e, "reason", e))[:120]
            if refused(e) and attempt < ATTEMPTS:
                time.sleep(1)
                continue
        break
    if status is None:
        print(json.dumps(out), flush=True)
        continue
    out.pop("error", None)
    text = body.decode("utf-8", "replace")
    out.update(status=status, body_length=len(body), body_sha256=hashlib.sha256(body).hexdigest())
    out["indicators"] = sorted(k for k, rx in checks.items() if re.search(rx, text))
    if any(t in text for t in secrets):
        out["indicators"].append("file-content")
    try:
        data = json.loads(text)
        out["json_keys"] = sorted(data) if isinstance(data, dict) else []
    except ValueError:
        out["json_keys"] = []
    if status >= 400 and not out["indicators"]:
        out["message"] = re.sub(r"eyJ[\w.-]+", "<redacted>", text[:160])
    print(json.dumps(out), flush=True)
'''.replace("PROBE_TIMEOUT", str(PROBE_TIMEOUT_SECONDS)).replace("PROXY_WAIT", str(PROXY_WAIT_SECONDS)).replace(
    "ATTEMPTS", str(CONNECT_ATTEMPTS))


def probe_pod(requests: list[ProbeRequest], *, namespace: str, image: str, run_id: str,
              service_account: str = "default-editor") -> dict[str, Any]:
    """The Pod that sends the probes from inside the tenant namespace (labelled, bounded).

    The KFP probes authenticate with a projected token for audience `KFP_AUDIENCE` (what a tenant's
    notebook gets from the `access-ml-pipeline` PodDefault); the driver probes send no credentials."""
    deadline = PROXY_WAIT_SECONDS + len(requests) * (PROBE_TIMEOUT_SECONDS + CONNECT_ATTEMPTS - 1) + 30
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"kfpc-probe-{run_id}"[:63], "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "kfp-conformance", "kfp-conformance/run": run_id},
                     "annotations": {"sidecar.istio.io/inject": "true", "proxy.istio.io/config": HOLD_UNTIL_PROXY}},
        "spec": {
            "serviceAccountName": service_account, "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "volumes": [{"name": "kfp-api-token", "projected": {"sources": [{"serviceAccountToken": {
                "path": "token", "audience": KFP_AUDIENCE, "expirationSeconds": KFP_TOKEN_SECONDS}}]}}],
            "containers": [{
                "name": "probe", "image": image, "command": ["python3", "-c", PROBE_SCRIPT],
                "env": [{"name": "KFPC_PROBES", "value": json.dumps([asdict(r) for r in requests], sort_keys=True)},
                        {"name": "KFPC_API_TOKEN_FILE", "value": f"{KFP_TOKEN_DIR}/token"},
                        {"name": "KFPC_PROXY_READY_URL", "value": PROXY_READY_URL}],
                "volumeMounts": [{"name": "kfp-api-token", "mountPath": KFP_TOKEN_DIR, "readOnly": True}],
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "allowPrivilegeEscalation": False},
            }],
        },
    }


def parse_probe_log(text: str) -> list[ProbeResponse]:
    responses = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            responses.append(ProbeResponse.from_dict(json.loads(line)))
    return responses
