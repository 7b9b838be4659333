"""Live glue for the security probes (`harness.live.probes`) and the TLS checks (`harness.manifests.tls`).

`security_plan` is PURE (what would be created, sent and checked, for golden files). `SecurityRun` carries
it out on a cluster: a second tenant (`kfpc-tenant-b`, a labelled Profile) with one run, a long-running run
in the first tenant so a sidecar-plugin agent pod exists, the probe pod in the first tenant's namespace,
its log (redacted, parsed, judged), and SubjectAccessReviews for the tenant's `default-editor` on Argo task
results. Objects are created with `kubectl apply` (`harness.boundary.proc`) and read through `harness.boundary.kube`; every
object we create carries the run labels and is deleted again in reverse order. Findings go to
`<out>/security.json`. A probe that cannot run is reported as not verified, never as passed.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.boundary.kube import CORE, Kube
from harness.boundary.proc import Runner
from harness.boundary.redact import redact
from harness.cluster.base import cluster_labels
from harness.errors import HarnessError
from harness.live.probes import (
    PROBE_SCRIPT,
    PROBE_TIMEOUT_SECONDS,
    ProbeTargets,
    build_requests,
    driver_url,
    judge,
    not_applicable,
    parse_probe_log,
    probe_pod,
    user_sa_taskresult_findings,
)
from harness.live.wait import Status, WaitTimeout, wait_for
from harness.manifests.tls import (
    Endpoint,
    driver_connections,
    endpoint_findings,
    plain_http_findings,
    tls_endpoints,
)
from harness.models import Finding, Identity, Mode, Severity, Variant

OTHER_TENANT = "kfpc-tenant-b"
OTHER_OWNER = "tenant-b@example.com"
KFP_API_URL = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
DRIVER_PROBES = ("driver-unauthenticated", "driver-cross-namespace", "driver-file-read")
KFP_PROBES = ("kfp-cross-tenant-runs", "kfp-cross-tenant-run")
AGENT_LABEL = "workflows.argoproj.io/component=agent"
# User code's ServiceAccount writing Argo task results: (check name, verb, group, resource, subresource).
TASK_RESULT_CHECKS = (("patch workflowtasksets/status", "patch", "argoproj.io", "workflowtasksets", "status"),
                      ("create workflowtaskresults", "create", "argoproj.io", "workflowtaskresults", ""))
POD_TIMEOUT = 180  # image pull + the bounded probes (each PROBE_TIMEOUT_SECONDS)


# --- the plan (pure) ----------------------------------------------------------------------------------------
def tenant_profile(namespace: str, owner: str, run_id: str) -> dict[str, Any]:
    """The second tenant: a Kubeflow Profile (the profile controller makes the namespace and its objects)."""
    return {"apiVersion": "kubeflow.org/v1", "kind": "Profile",
            "metadata": {"name": namespace, "labels": cluster_labels(run_id)},
            "spec": {"owner": {"kind": "User", "name": owner}}}


def probe_targets(variant: Variant, mode: Mode, manifests: list[dict[str, Any]],
                  other_run_id: str = "{other_run_id}") -> ProbeTargets:
    return ProbeTargets(tenant_namespace=mode.user_namespace, other_namespace=OTHER_TENANT,
                        driver_url=driver_url(variant, manifests), kfp_api_url=KFP_API_URL, other_run_id=other_run_id)


def skipped_probes(variant: Variant, mode: Mode, targets: ProbeTargets) -> dict[str, str]:
    """probe -> why it cannot run against this variant/mode (reported as not verified)."""
    if not mode.multi_user:
        return {p: f"probes run from a tenant namespace; {mode.name} has no tenants" for p in (*DRIVER_PROBES, *KFP_PROBES)}
    if not targets.driver_url:
        return {p: f"{variant.name} has no network-reachable driver endpoint (driver kind {variant.driver.kind})"
                for p in DRIVER_PROBES}
    return {}


def security_plan(variant: Variant, mode: Mode, manifests: list[dict[str, Any]], *, run_id: str, image: str,
                  workflows_dir: Path | None = None) -> dict[str, Any]:
    """Everything a security run of one (variant, mode) would create, send and check. Pure; golden-testable."""
    plan: dict[str, Any] = {"variant": variant.name, "mode": mode.name}
    targets = probe_targets(variant, mode, manifests)
    skipped = skipped_probes(variant, mode, targets)
    if mode.multi_user:
        requests = [r for r in build_requests(variant, targets) if r.probe not in skipped]
        pod = probe_pod(requests, namespace=mode.user_namespace, image=image, run_id=run_id)
        container = pod["spec"]["containers"][0]
        container["command"] = [*container["command"][:2], "<PROBE_SCRIPT sha256 "
                                + hashlib.sha256(PROBE_SCRIPT.encode()).hexdigest()[:16] + ">"]
        plan["probes"] = {
            "tenant": mode.user_namespace, "other_tenant": tenant_profile(OTHER_TENANT, OTHER_OWNER, run_id),
            "targets": asdict(targets), "requests": [asdict(r) for r in requests], "probe_pod": pod,
            "agent_pod": "a long-running run in the tenant namespace; its agent pod's IP" if "{agent_pod_ip}" in
                         targets.driver_url else "",
            "task_result_checks": [{"check": c[0], "identity": f"{mode.user_namespace}/{mode.workflow_service_account}",
                                    "verb": c[1], "group": c[2], "resource": c[3], "subresource": c[4]}
                                   for c in TASK_RESULT_CHECKS]}
    plan["not_verified"] = dict(sorted(skipped.items()))
    if mode.tls:
        plan["tls"] = {"endpoints": [asdict(e) for e in tls_endpoints(manifests)], "ca_secrets": ca_secrets(manifests),
                       "driver_connections": driver_connections(manifests, workflows_dir)}
    return plan


def ca_secrets(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """Certificate namespace/name -> the namespace/Secret holding its issued certificate and `ca.crt`."""
    found = {}
    for cert in (m for m in manifests if m.get("kind") == "Certificate"):
        meta = cert["metadata"]
        secret = (cert.get("spec") or {}).get("secretName")
        if secret:
            found[f"{meta.get('namespace', '')}/{meta['name']}"] = f"{meta.get('namespace', '')}/{secret}"
    return dict(sorted(found.items()))


# --- live ---------------------------------------------------------------------------------------------------
@dataclass
class SecurityRun:
    """One (variant, mode) on a live cluster. `kubectl` is the argv prefix for the cluster (ClusterHandle)."""

    kube: Kube
    runner: Runner
    kubectl: Sequence[str]
    variant: Variant
    mode: Mode
    manifests: list[dict[str, Any]]  # the install's render (driver URL, Certificates)
    out_dir: Path
    run_id: str
    image: str = "python:3.11"
    poll_interval: float = 2.0
    pod_timeout: int = POD_TIMEOUT
    progress: Callable[[str], None] = lambda _line: None
    created: list[Path] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        return [*self.kube.secrets, *self.runner.secrets]

    def apply(self, name: str, objects: list[dict[str, Any]]) -> Path:
        path = self.out_dir / "security" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        self.created.append(path)
        self.runner.run([*self.kubectl, "apply", "-f", str(path)], timeout=120,
                        fix="check the cluster; the security probes need cluster-admin to create their objects")
        return path

    def cleanup(self) -> None:
        for path in reversed(self.created):
            self.runner.run([*self.kubectl, "delete", "-f", str(path), "--ignore-not-found", "--wait=false"],
                            timeout=120, check=False)
        self.created.clear()

    def other_tenant(self) -> None:
        """Create kfpc-tenant-b and wait until the profile controller made it usable."""
        self.apply("tenant-b.yaml", [tenant_profile(OTHER_TENANT, OTHER_OWNER, self.run_id)])

        def ready() -> Status:
            found = self.kube.find(CORE, "serviceaccounts", self.mode.workflow_service_account, OTHER_TENANT)
            return Status(found is not None, f"ServiceAccount {OTHER_TENANT}/{self.mode.workflow_service_account} "
                                             + ("exists" if found else "not yet created"))

        wait_for(f"tenant {OTHER_TENANT} ready", ready, 300, interval=self.poll_interval, progress=self.progress)

    def agent_pod_ip(self, timeout: int = 300) -> str:
        """The IP of a running Argo agent pod in the tenant namespace (a long-running run must be in flight)."""
        found: list[str] = []

        def running() -> Status:
            pods = self.kube.pods(self.mode.user_namespace, AGENT_LABEL)
            ips = sorted((p.get("status") or {}).get("podIP", "") for p in pods
                         if (p.get("status") or {}).get("phase") == "Running")
            found[:] = [ip for ip in ips if ip]
            return Status(bool(found), f"{len(found)} running agent pod(s) in {self.mode.user_namespace}")

        try:
            wait_for("an Argo agent pod runs in the tenant namespace", running, timeout, interval=self.poll_interval,
                     progress=self.progress)
        except WaitTimeout:
            return ""
        return found[0]

    def probe(self, targets: ProbeTargets, agent_pod_ip: str = "") -> tuple[list[Finding], list[dict[str, Any]]]:
        """Send the probes from a pod in the tenant namespace; one finding per probe (or why not verified)."""
        mode, variant = self.mode.name, self.variant.name
        skipped = skipped_probes(self.variant, self.mode, targets)
        requests = [r for r in build_requests(self.variant, targets) if r.probe not in skipped]
        findings = [not_applicable(p, why, variant=variant, mode=mode) for p, why in sorted(skipped.items())]
        if "{agent_pod_ip}" in targets.driver_url and not agent_pod_ip:
            why = "no running agent pod in the tenant namespace to reach the executor plugin"
            findings += [not_applicable(r.probe, why, variant=variant, mode=mode) for r in requests
                         if r.url.startswith(targets.driver_url.split("/api/")[0])]
            requests = [r for r in requests if "{agent_pod_ip}" not in r.url]
        if not requests:
            return findings, []
        pod = probe_pod(requests, namespace=self.mode.user_namespace, image=self.image, run_id=self.run_id)
        if agent_pod_ip:
            pod["spec"]["containers"][0]["env"].append({"name": "AGENT_POD_IP", "value": agent_pod_ip})
        name = pod["metadata"]["name"]
        self.apply("probe-pod.yaml", [pod])
        log, why = self._probe_log(name)
        responses = {r.probe: r for r in parse_probe_log(log)} if log else {}
        for request in requests:
            response = responses.get(request.probe)
            if response is None:
                findings.append(not_applicable(request.probe, why or "the probe pod printed no result for it",
                                               variant=variant, mode=mode))
            else:
                findings.append(judge(request, response, variant=variant, mode=mode))
        return findings, [asdict(r) for r in responses.values()]

    def _probe_log(self, name: str) -> tuple[str, str]:
        """The probe container's log once it terminated (an Istio sidecar keeps the pod itself Running)."""
        namespace = self.mode.user_namespace

        def done() -> Status:
            pod = self.kube.find(CORE, "pods", name, namespace) or {}
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            probe = next((s for s in statuses if s.get("name") == "probe"), {})
            terminated = (probe.get("state") or {}).get("terminated")
            phase = (pod.get("status") or {}).get("phase", "Pending")
            return Status(bool(terminated) or phase in ("Succeeded", "Failed"), f"probe pod {phase}")

        try:
            wait_for(f"probe pod {namespace}/{name} finishes", done, self.pod_timeout, interval=self.poll_interval,
                     progress=self.progress)
        except WaitTimeout as exc:
            return "", f"the probe pod did not finish in {self.pod_timeout}s ({exc.last.line})"
        return redact(self.kube.pod_log(namespace, name, "probe"), self.secrets), ""

    def task_result_findings(self) -> tuple[list[Finding], dict[str, bool]]:
        identity = Identity(self.mode.user_namespace, self.mode.workflow_service_account)
        answers = {}
        for check, verb, group, resource, subresource in TASK_RESULT_CHECKS:
            review = self.kube.access_review(identity, verb, resource, group=group, subresource=subresource,
                                             namespace=self.mode.user_namespace)
            answers[check] = review["allowed"]
        return user_sa_taskresult_findings(answers, identity=identity.ref, variant=self.variant.name,
                                           mode=self.mode.name), answers

    # -- TLS ----------------------------------------------------------------------------------------------
    def tls_findings(self, presented: Callable[[Endpoint], bytes], workflows_dir: Path | None = None,
                     driver_run_states: Sequence[str] = ()) -> list[Finding]:
        """Each endpoint's certificate against the install's CA, the driver path under TLS, plain-HTTP links.

        `presented(endpoint)` returns the DER leaf certificate the endpoint serves (`leaf_certificate`):
        Python 3.11's ssl gives only the leaf, so intermediates are not checked (cert-manager's CA issuer
        signs leaves directly)."""
        from cryptography import x509

        from harness.manifests.tls import load_pem_chain, verify_endpoint

        mode, variant = self.mode.name, self.variant.name
        findings: list[Finding] = []
        results: dict[Endpoint, list[str]] = {}
        secrets = ca_secrets(self.manifests)
        for endpoint in tls_endpoints(self.manifests):
            namespace = endpoint.service.split("/")[0]
            secret = next((s for s in secrets.values() if s.startswith(f"{namespace}/")), "")
            try:
                ca = load_pem_chain(self.kube.secret_value(namespace, secret.split("/", 1)[1], "ca.crt"))
                leaf = x509.load_der_x509_certificate(presented(endpoint))
            except (HarnessError, OSError, ValueError, IndexError) as exc:
                findings.append(Finding("tls.endpoint-invalid", Severity.INFO, "tls", mode, (variant,),
                                        f"Service {endpoint.service}:{endpoint.port}",
                                        f"not verified: {redact(str(exc), self.secrets)[:200]}", {"status": "skipped"}))
                continue
            results[endpoint] = verify_endpoint([leaf], ca, endpoint)
        findings += endpoint_findings(results, mode=mode, variant=variant)
        if not driver_run_states:
            findings.append(Finding("tls.driver-path", Severity.INFO, "tls", mode, (variant,), "driver path under TLS",
                                    "not verified: no scenario ran in this mode", {"status": "skipped"}))
        elif "SUCCEEDED" in driver_run_states:
            findings.append(Finding("tls.driver-path", Severity.INFO, "tls", mode, (variant,), "driver path under TLS",
                                    f"{list(driver_run_states).count('SUCCEEDED')}/{len(driver_run_states)} run(s) "
                                    "SUCCEEDED with TLS on", {"states": list(driver_run_states)}))
        else:
            findings.append(Finding("tls.driver-path", Severity.ERROR, "tls", mode, (variant,), "driver path under TLS",
                                    "no run succeeded with TLS on", {"states": list(driver_run_states)}))
        findings += plain_http_findings(driver_connections(self.manifests, workflows_dir), mode=mode, variant=variant)
        return findings

    def write(self, findings: list[Finding], extra: dict[str, Any]) -> Path:
        path = self.out_dir / "security.json"
        data = {"variant": self.variant.name, "mode": self.mode.name, "run_id": self.run_id,
                "findings": [f.to_dict() for f in findings], **extra}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(json.dumps(data, indent=2, sort_keys=True), self.secrets) + "\n")
        return path


def leaf_certificate(host: str, port: int, server_name: str, timeout: float = 10) -> bytes:
    """The DER certificate a TLS endpoint presents (no verification here: `verify_endpoint` does it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError(f"{server_name} presented no certificate")
    return der


def forwarded_certificate(cluster: Any, runner: Runner) -> Callable[[Endpoint], bytes]:
    """`presented` for `tls_findings`: port-forward the Service, read the leaf with the first client name."""
    from harness.boundary.kfpapi import PortForward

    def presented(endpoint: Endpoint) -> bytes:
        namespace, service = endpoint.service.split("/", 1)
        with PortForward(cluster, runner, namespace=namespace, service=service, port=endpoint.port,
                         timeout=60) as forward:
            return leaf_certificate("127.0.0.1", forward.port, endpoint.names[0])

    return presented


def run_security(run: SecurityRun, cluster: Any, *, short: Any = None, long_running: Any = None,
                 workflows_dir: Path | None = None, driver_run_states: Sequence[str] = ()) -> list[Finding]:
    """The whole security tier of one (variant, mode): tenant B and its run, the agent pod, the probes, the
    task-result reviews, TLS; security.json written even when a step fails. `short`/`long_running` are
    compiled catalogue Scenarios (single-component, long-running)."""
    import dataclasses

    from harness.boundary.kfpapi import connect

    findings: list[Finding] = []
    extra: dict[str, Any] = {}
    try:
        if run.mode.multi_user:
            targets = probe_targets(run.variant, run.mode, run.manifests)
            agent_ip = ""
            if short is not None:
                run.other_tenant()
                tenant_b = dataclasses.replace(run.mode, user_namespace=OTHER_TENANT)
                with connect(cluster, tenant_b, run.kube, runner=run.runner) as kfp:
                    other = kfp.submit(short.pipeline_file, short.arguments, run_name=f"{short.name}-tenant-b",
                                       experiment=f"kfpc-{run.run_id}")
                targets = dataclasses.replace(targets, other_run_id=other["run_id"])
            if "{agent_pod_ip}" in targets.driver_url and long_running is not None:
                with connect(cluster, run.mode, run.kube, runner=run.runner) as kfp:
                    kfp.submit(long_running.pipeline_file, {**long_running.arguments, "seconds": 600},
                               run_name=f"{long_running.name}-probe-target", experiment=f"kfpc-{run.run_id}")
                agent_ip = run.agent_pod_ip()
            probe_findings, responses = run.probe(targets, agent_ip)
            extra["responses"] = responses
            sar_findings, extra["task_result_checks"] = run.task_result_findings()
            findings += probe_findings + sar_findings
        else:
            findings += [not_applicable(p, why, variant=run.variant.name, mode=run.mode.name) for p, why in
                         skipped_probes(run.variant, run.mode, probe_targets(run.variant, run.mode, run.manifests)).items()]
        if run.mode.tls:
            findings += run.tls_findings(forwarded_certificate(cluster, run.runner), workflows_dir, driver_run_states)
    finally:
        run.cleanup()
        run.write(findings, extra)
    return findings


__all__ = ["PROBE_TIMEOUT_SECONDS", "SecurityRun", "security_plan", "forwarded_certificate", "leaf_certificate"]
