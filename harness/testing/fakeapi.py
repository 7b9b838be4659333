"""A fake Kubernetes API and KFP API served over real HTTP on 127.0.0.1, with state in memory.

It speaks enough of the wire protocol for the official `kubernetes` client, the kfp SDK and `requests`:
/version; generic get/list/watch of any core or group resource (label selectors, `continue`-less lists);
pod logs (container, sinceTime, timestamps); TokenRequest; SubjectAccessReview (from a rule table);
KFP v2beta1 healthz, experiments and runs. Every request is recorded. `simulate` turns a created KFP run
into a realistic Argo Workflow (status.nodes in the shape of each driver variant), pods and logs.

Written with `http.server` in threads rather than kmock: kmock is asyncio/aiohttp and fixture-driven,
while our boundaries are synchronous and the fake must also serve other processes (a fake kubectl
forwarding a port, xdist workers) from plain library code with no pytest import.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

KFP_PREFIX = "/apis/v2beta1/"
ACCESS_ALL = "*"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text.replace(".000000", "")[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: bool  # whether an Authorization header was sent (its value is never kept)


@dataclass
class FakeRun:
    body: dict[str, Any]
    polls_left: int
    final_state: str


@dataclass
class FakeCluster:
    """State of one fake cluster. Use as a context manager: `with FakeCluster() as fake: fake.api_url`."""

    token_factory: Callable[[str, list[str]], str] = lambda ref, audiences: f"fake-token-{ref.replace('/', '-')}"
    multi_user: bool = False
    # SubjectAccessReview rules: (user, verb, group, resource, subresource, namespace, name); "*" matches any
    access_rules: set[tuple[str, str, str, str, str, str, str]] = field(default_factory=set)
    # path regex -> (status, message): answer these requests with an error
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    # called with (fake, run dict) when a run is created; fills in workflow, pods and logs
    on_run: Callable[[FakeCluster, dict[str, Any]], None] | None = None
    polls_until_done: int = 2
    final_state: str = "SUCCEEDED"
    tls: tuple[str, str] | None = None  # (cert file, key file) to serve the KFP API over HTTPS

    def __post_init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
        self.files: dict[tuple[str, str, str], dict[str, str]] = {}  # (ns, pod, container) -> path -> text
        self.requests: list[Recorded] = []
        self.tokens: list[dict[str, Any]] = []  # {identity, audiences, token}: kept only in memory
        self.runs: dict[str, FakeRun] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], str] = {}  # (namespace, service) -> URL a port-forward reaches
        self.lock = threading.RLock()
        self._servers: list[ThreadingHTTPServer] = []

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> FakeCluster:
        self.api_url = self._serve(self._handle_kube)
        self.kfp_url = self._serve(self._handle_kfp, tls=self.tls)
        self.services.setdefault(("kubeflow", "ml-pipeline"), self.kfp_url)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _serve(self, handler: Callable[[_Request], tuple[int, Any, str]], tls: tuple[str, str] | None = None) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = _Request(self.command, split.path, parse_qs(split.query),
                                   json.loads(raw) if raw else None, self.headers.get("Authorization", ""))
                with fake.lock:
                    fake.requests.append(Recorded(request.method, request.path, request.query, request.body,
                                                  bool(request.authorization)))
                for pattern, (status, message) in list(fake.errors.items()):
                    if re.search(pattern, request.path):
                        return self._send(status, _status(status, message), "application/json")
                status, payload, content_type = handler(request)
                self._send(status, payload, content_type)

            def _send(self, status: int, payload: Any, content_type: str) -> None:
                if isinstance(payload, list):  # a watch stream: one JSON event per line, then close
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    for event in payload:
                        self.wfile.write((json.dumps(event) + "\n").encode())
                        self.wfile.flush()
                    return
                body = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        scheme = "http"
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(server)
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    # -- state helpers ----------------------------------------------------------------------------------
    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        api_version, kind = obj["apiVersion"], obj["kind"]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{len(self.objects)}")
        meta.setdefault("creationTimestamp", rfc3339(datetime.now(timezone.utc)))
        key = (api_version, _plural(kind), meta.get("namespace", ""), meta["name"])
        with self.lock:
            self.objects[key] = obj
        return obj

    def objects_of(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [o for (v, p, ns, _), o in sorted(self.objects.items(), key=lambda kv: kv[0])
                    if v == api_version and p == plural and (namespace is None or ns == namespace)]

    def add_log(self, namespace: str, pod: str, container: str, lines: list[str],
                start: datetime | None = None) -> None:
        moment = start or datetime.now(timezone.utc)
        with self.lock:
            bucket = self.logs.setdefault((namespace, pod, container), [])
            bucket.extend((moment + timedelta(seconds=i), line) for i, line in enumerate(lines))

    def allow(self, identity_ref: str, verb: str, resource: str, *, group: str = "", subresource: str = "",
              namespace: str = ACCESS_ALL, name: str = ACCESS_ALL) -> None:
        ns, sa = identity_ref.split("/", 1)
        self.access_rules.add((f"system:serviceaccount:{ns}:{sa}", verb, group, resource, subresource,
                               namespace, name))

    def kubeconfig(self, path: Path, context: str = "fake") -> Path:
        """A kubeconfig that points the official client and kubectl at this fake."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.api_url}}],
            "users": [{"name": context, "user": {"token": "fake-admin-credential"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- Kubernetes API ---------------------------------------------------------------------------------
    def _handle_kube(self, req: _Request) -> tuple[int, Any, str]:
        if req.path == "/version":
            return 200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake"}, "application/json"
        if req.path == "/_fake/files":  # read by harness.testing.fakekubectl for `kubectl exec`
            key = (req.arg("namespace"), req.arg("pod"), req.arg("container"))
            return 200, self.files.get(key, {}), "application/json"
        if req.path == "/_fake/forward":  # read by harness.testing.fakekubectl for `kubectl port-forward`
            return 200, {"url": self.services.get((req.arg("namespace"), req.arg("service")))}, "application/json"
        if req.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" and req.method == "POST":
            return 201, self._review(req.body), "application/json"
        parsed = _parse_path(req.path)
        if parsed is None:
            return 404, _status(404, f"the server could not find the requested resource ({req.path})"), \
                "application/json"
        api_version, namespace, plural, name, sub = parsed
        if sub == "token" and plural == "serviceaccounts" and req.method == "POST":
            return self._token_request(namespace, name, req.body)
        if sub == "log" and plural == "pods":
            return self._log(namespace, name, req)
        if req.method == "POST" and not name and not sub and isinstance(req.body, dict):
            obj = dict(req.body, metadata={**(req.body.get("metadata") or {}), "namespace": namespace})
            if (api_version, plural, namespace, obj["metadata"].get("name")) in self.objects:
                return 409, _status(409, f'{plural} "{obj["metadata"].get("name")}" already exists'), "application/json"
            return 201, self.add(obj), "application/json"
        if req.method == "DELETE" and name and not sub:
            with self.lock:
                gone = self.objects.pop((api_version, plural, namespace, name), None)
            if gone is None:
                return 404, _status(404, f'{plural} "{name}" not found'), "application/json"
            return 200, _status(200, "deleted"), "application/json"
        if req.method != "GET":
            return 405, _status(405, "method not allowed by the fake"), "application/json"
        if name:
            with self.lock:
                obj = self.objects.get((api_version, plural, namespace, name))
            if obj is None:
                return 404, _status(404, f'{plural} "{name}" not found'), "application/json"
            return 200, obj, "application/json"
        items = [o for o in self.objects_of(api_version, plural, namespace if namespace else None)
                 if _selected(o, req.arg("labelSelector"))]
        if req.arg("watch") in ("true", "1"):
            return 200, [{"type": "ADDED", "object": o} for o in items], "application/json"
        kind = items[0]["kind"] + "List" if items else "List"
        return 200, {"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"},
                     "items": items}, "application/json"

    def _token_request(self, namespace: str, name: str, body: Any) -> tuple[int, Any, str]:
        if (CORE_V1, "serviceaccounts", namespace, name) not in self.objects:
            return 404, _status(404, f'serviceaccounts "{name}" not found'), "application/json"
        audiences = list((body or {}).get("spec", {}).get("audiences") or [])
        token = self.token_factory(f"{namespace}/{name}", audiences)
        with self.lock:
            self.tokens.append({"identity": f"{namespace}/{name}", "audiences": audiences, "token": token})
        expires = rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
        return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": body.get("spec", {}), "status": {"token": token, "expirationTimestamp": expires}}, \
            "application/json"

    def _log(self, namespace: str, pod: str, req: _Request) -> tuple[int, Any, str]:
        if (CORE_V1, "pods", namespace, pod) not in self.objects:
            return 404, _status(404, f'pods "{pod}" not found'), "application/json"
        container = req.arg("container")
        if not container:
            containers = self.objects[(CORE_V1, "pods", namespace, pod)]["spec"]["containers"]
            if len(containers) != 1:
                return 400, _status(400, f"a container name must be specified for pod {pod}"), "application/json"
            container = containers[0]["name"]
        lines = self.logs.get((namespace, pod, container), [])
        since = req.arg("sinceTime")
        if since:
            lines = [(t, line) for t, line in lines if t >= parse_time(since)]
        stamped = req.arg("timestamps") == "true"
        text = "".join(f"{rfc3339(t)} {line}\n" if stamped else f"{line}\n" for t, line in lines)
        return 200, text, "text/plain"

    def _review(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec", {})
        attrs = spec.get("resourceAttributes", {})
        wanted = (spec.get("user", ""), attrs.get("verb", ""), attrs.get("group", ""), attrs.get("resource", ""),
                  attrs.get("subresource", ""), attrs.get("namespace", ""), attrs.get("name", ""))
        allowed = any(all(r in (ACCESS_ALL, w) for r, w in zip(rule, wanted, strict=False)) for rule in self.access_rules)
        reason = "allowed by fake rule" if allowed else ""
        return {**body, "status": {"allowed": allowed, "reason": reason}}

    # -- KFP API ----------------------------------------------------------------------------------------
    def _handle_kfp(self, req: _Request) -> tuple[int, Any, str]:
        path = req.path
        if path == KFP_PREFIX + "healthz":
            return 200, {"commit_sha": "fake", "tag_name": "fake", "multi_user": self.multi_user}, "application/json"
        caller = self._caller(req.authorization)
        if caller is None:
            return 401, {"error": "Unauthenticated: no valid bearer token", "code": 16}, "application/json"
        if path == KFP_PREFIX + "experiments" and req.method == "GET":
            wanted = _filter_name(req.arg("filter"))
            found = [e for e in self.experiments.values() if wanted in (None, e["display_name"])
                     and e.get("namespace", "") in ("", req.arg("namespace") or "")]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {}), "application/json"
        if path == KFP_PREFIX + "experiments" and req.method == "POST":
            experiment = {**req.body, "experiment_id": f"exp-{len(self.experiments) + 1}",
                          "created_at": rfc3339(datetime.now(timezone.utc)), "storage_state": "AVAILABLE"}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment, "application/json"
        if path == KFP_PREFIX + "runs" and req.method == "POST":
            return self._create_run(req.body, caller)
        match = re.fullmatch(KFP_PREFIX + r"runs/([^/]+)", path)
        if match and req.method == "GET":
            return self._get_run(match.group(1))
        return 404, {"error": f"not found: {path}", "code": 5}, "application/json"

    def _caller(self, authorization: str) -> dict[str, Any] | None:
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            for issued in self.tokens:
                if issued["token"] == token:
                    return issued
        return None

    def _create_run(self, body: dict[str, Any], caller: dict[str, Any]) -> tuple[int, Any, str]:
        experiment = self.experiments.get(body.get("experiment_id", ""))
        if experiment is None:
            return 400, {"error": "experiment not found", "code": 3}, "application/json"
        run_id = f"{len(self.runs) + 1:08d}-fake-run"
        namespace = experiment.get("namespace") or "kubeflow"
        run = {**body, "run_id": run_id, "state": "PENDING", "created_at": rfc3339(datetime.now(timezone.utc)),
               "namespace": namespace, "submitted_by": caller["identity"]}
        self.runs[run_id] = FakeRun(run, self.polls_until_done, self.final_state)
        if self.on_run:
            self.on_run(self, run)
        return 200, _public_run(run), "application/json"

    def _get_run(self, run_id: str) -> tuple[int, Any, str]:
        fake_run = self.runs.get(run_id)
        if fake_run is None:
            return 404, {"error": f"run {run_id} not found", "code": 5}, "application/json"
        with self.lock:
            if fake_run.polls_left > 0:
                fake_run.polls_left -= 1
                fake_run.body["state"] = "RUNNING"
            else:
                fake_run.body["state"] = fake_run.final_state
                fake_run.body.setdefault("finished_at", rfc3339(datetime.now(timezone.utc)))
        return 200, _public_run(fake_run.body), "application/json"


CORE_V1 = "v1"


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def _public_run(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in ("namespace", "submitted_by")}


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code,
            "reason": {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(code, "")}


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def _parse_path(path: str) -> tuple[str, str, str, str, str] | None:
    """(apiVersion, namespace, plural, name, subresource) of a REST path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    return api_version, namespace, rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _filter_name(raw: str | None) -> str | None:
    if not raw:
        return None
    for predicate in json.loads(raw).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("string_value") or predicate.get("stringValue")
    return None


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
