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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from harness.plan.migration import plural

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

    # every TokenRequest answers a new token, as the API server signs a fresh JWT each time
    token_factory: Callable[[str, list[str]], str] = \
        lambda ref, audiences: f"fake-token-{ref.replace('/', '-')}-{uuid.uuid4().hex[:12]}"
    multi_user: bool = False
    # SubjectAccessReview rules: (user, verb, group, resource, subresource, namespace, name); "*" matches any
    access_rules: set[tuple[str, str, str, str, str, str, str]] = field(default_factory=set)
    # path regex -> (status, message): answer these requests with an error
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    # one-shot faults, consumed in order by the first matching request: (method or "*", path regex, status),
    # status 0 = drop the connection without an answer (what a restarting API server or a broken
    # port-forward does), -1 = act on the request, then drop the answer; 429 answers carry `Retry-After: 0`
    faults: list[tuple[str, str, int]] = field(default_factory=list)
    # called with (fake, run dict) when a run is created; fills in workflow, pods and logs
    on_run: Callable[[FakeCluster, dict[str, Any]], None] | None = None
    polls_until_done: int = 2
    final_state: str = "SUCCEEDED"
    tls: tuple[str, str] | None = None  # (cert file, key file) to serve the KFP API over HTTPS
    # added to the fake's clock: tokens expire against it (advance it to expire what was issued)
    clock_offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
        self.files: dict[tuple[str, str, str], dict[str, str]] = {}  # (ns, pod, container) -> path -> text
        self.requests: list[Recorded] = []
        self.tokens: list[dict[str, Any]] = []  # {identity, audiences, token}: kept only in memory
        self.runs: dict[str, FakeRun] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], str] = {}  # (namespace, service) -> URL a port-forward reaches
        # run id -> called once when the run reaches its final state (what the workflow controller does at
        # completion, e.g. delete the agent pod: harness.testing.fakerun)
        self.on_complete: dict[str, Callable[[FakeCluster], None]] = {}
        self.closing = threading.Event()  # ends open log follows when the fake shuts down
        self.lock = threading.RLock()
        self._servers: list[ThreadingHTTPServer] = []

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> FakeCluster:
        self.api_url = self._serve(self._handle_kube)
        self.kfp_url = self._serve(self._handle_kfp, tls=self.tls)
        self.services.setdefault(("kubeflow", "ml-pipeline"), self.kfp_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
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
                fault = fake._take_fault(request.method, request.path)
                if fault == -1:  # the server acted on the request, then the answer was lost
                    handler(request)
                if fault in (0, -1):
                    self.close_connection = True  # no status line at all: the client sees a dropped connection
                    return None
                if fault is not None:
                    return self._send(fault, _status(fault, "injected fault"), "application/json")
                status, payload, content_type = handler(request)
                self._send(status, payload, content_type)

            def _send(self, status: int, payload: Any, content_type: str) -> None:
                if isinstance(payload, Iterator):  # a follow stream: text chunks until the source ends
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for chunk in payload:
                            self.wfile.write(chunk.encode())
                            self.wfile.flush()
                    except OSError:  # the client closed its end
                        pass
                    return
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
                if status == 429:
                    self.send_header("Retry-After", "0")
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

    def _take_fault(self, method: str, path: str) -> int | None:
        with self.lock:
            for index, (want, pattern, status) in enumerate(self.faults):
                if want in ("*", method) and re.search(pattern, path):
                    del self.faults[index]
                    return status
        return None

    # -- state helpers ----------------------------------------------------------------------------------
    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        api_version, kind = obj["apiVersion"], obj["kind"]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{len(self.objects)}")
        meta.setdefault("creationTimestamp", rfc3339(datetime.now(timezone.utc)))
        key = (api_version, plural(kind), meta.get("namespace", ""), meta["name"])
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

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.clock_offset

    def _token_request(self, namespace: str, name: str, body: Any) -> tuple[int, Any, str]:
        if (CORE_V1, "serviceaccounts", namespace, name) not in self.objects:
            return 404, _status(404, f'serviceaccounts "{name}" not found'), "application/json"
        spec = (body or {}).get("spec") or {}
        audiences = list(spec.get("audiences") or [])
        # TokenRequestSpec.expirationSeconds defaults to 1 hour and may not be under 10 minutes
        # (k8s.io/api authentication/v1 TokenRequestSpec; apiserver validation answers 422 Invalid)
        seconds = int(spec.get("expirationSeconds") or TOKEN_DEFAULT_SECONDS)
        if seconds < TOKEN_MIN_SECONDS:
            return 422, _status(422, f"TokenRequest.authentication.k8s.io \"{name}\" is invalid: "
                                     "spec.expirationSeconds: Invalid value: may not specify a duration less "
                                     "than 10 minutes"), "application/json"
        token = self.token_factory(f"{namespace}/{name}", audiences)
        expires = self.now() + timedelta(seconds=seconds)
        with self.lock:
            self.tokens.append({"identity": f"{namespace}/{name}", "audiences": audiences, "token": token,
                                "expires": expires})
        return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {**spec, "expirationSeconds": seconds},
                     "status": {"token": token, "expirationTimestamp": rfc3339(expires)}}, "application/json"

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
        if req.arg("follow") == "true":
            return 200, self._follow(namespace, pod, container, stamped), "text/plain"
        return 200, "".join(_log_line(t, line, stamped) for t, line in lines), "text/plain"

    def _follow(self, namespace: str, pod: str, container: str, stamped: bool) -> Iterator[str]:
        """`follow=true`: every line so far, then new ones as they are added, until the pod is gone (the
        kubelet ends the stream when the container stops; a deleted pod's containers stop)."""
        sent = 0
        while True:
            with self.lock:
                lines = list(self.logs.get((namespace, pod, container), []))
                alive = (CORE_V1, "pods", namespace, pod) in self.objects
            for moment, line in lines[sent:]:
                yield _log_line(moment, line, stamped)
            sent = len(lines)
            if not alive or self.closing.is_set():
                return
            time.sleep(0.01)

    def _review(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec", {})
        attrs = spec.get("resourceAttributes", {})
        wanted = (spec.get("user", ""), attrs.get("verb", ""), attrs.get("group", ""), attrs.get("resource", ""),
                  attrs.get("subresource", ""), attrs.get("namespace", ""), attrs.get("name", ""))
        allowed = any(all(r in (ACCESS_ALL, w) for r, w in zip(rule, wanted, strict=False)) for rule in self.access_rules)
        reason = "allowed by fake rule" if allowed else ""
        return {**body, "status": {"allowed": allowed, "reason": reason}}

    # -- KFP API ----------------------------------------------------------------------------------------
    # Upstream (kubeflow/pipelines 81fc181b1, same files on the SC and CD branches): standalone skips authn
    # and authz (resource/resource_manager.go IsAuthorized returns nil unless multi-user); multi-user
    # authenticates the `Authorization: Bearer` token by a TokenReview for audience TOKEN_REVIEW_AUDIENCE
    # (auth/authenticator_token_review.go, common/const.go DefaultTokenReviewAudience), then asks a
    # SubjectAccessReview for pipelines.kubeflow.org/<resource> in the namespace. Errors are gRPC statuses
    # through grpc-gateway v2: HTTP 401/403/404/400 with {code, message, details[google.rpc.Status]}
    # (common/util/error.go UserError.GRPCStatus).
    def _handle_kfp(self, req: _Request) -> tuple[int, Any, str]:
        path = req.path
        if path == KFP_PREFIX + "healthz":  # a plain HTTP handler outside the gateway: no authentication
            return 200, {"commit_sha": "fake", "tag_name": "fake", "multi_user": self.multi_user}, "application/json"
        if path == KFP_PREFIX + "experiments" and req.method == "GET":
            namespace = req.arg("namespace") or ""
            denied = self._kfp_authorize(req, "list", "experiments", namespace, "Failed to list experiments")
            if denied:
                return denied
            wanted = _filter_name(req.arg("filter"))
            found = [e for e in self.experiments.values() if wanted in (None, e["display_name"])
                     and e.get("namespace", "") in ("", namespace)]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {}), "application/json"
        if path == KFP_PREFIX + "experiments" and req.method == "POST":
            denied = self._kfp_authorize(req, "create", "experiments", (req.body or {}).get("namespace") or "",
                                         "Failed to create an experiment")
            if denied:
                return denied
            experiment = {**req.body, "experiment_id": f"exp-{len(self.experiments) + 1}",
                          "created_at": rfc3339(datetime.now(timezone.utc)), "storage_state": "AVAILABLE"}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment, "application/json"
        if path == KFP_PREFIX + "runs" and req.method == "POST":
            return self._create_run(req)
        if path == KFP_PREFIX + "runs" and req.method == "GET":
            return self._list_runs(req)
        match = re.fullmatch(KFP_PREFIX + r"runs/([^/]+)", path)
        if match and req.method == "GET":
            return self._get_run(req, match.group(1))
        return _kfp_error(5, f"not found: {path}")

    def _caller(self, authorization: str) -> dict[str, Any] | None:
        """The issued token a `Bearer` header carries, or None (unknown or not a bearer header)."""
        if not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            for issued in reversed(self.tokens):  # newest first: a factory may repeat a value
                if issued["token"] == token:
                    return issued
        return None

    def _kfp_authenticate(self, req: _Request) -> tuple[str, str]:
        """(user, "") or ("", why the TokenReview failed). Kubernetes authenticates a token for a TokenReview
        only if it is unexpired and its audiences intersect spec.audiences (TokenReviewStatus.audiences);
        KFP then requires its audience in status.audiences (ensureAudience)."""
        if not req.authorization:
            return "", "Request header error: there is no user identity header."
        issued = self._caller(req.authorization)
        if issued is None:
            return "", "Review.Status.Authenticated is false. Error [invalid bearer token]"
        if issued.get("expires") and self.now() >= issued["expires"]:
            return "", "Review.Status.Authenticated is false. Error [invalid bearer token, service account " \
                       "token has expired]"
        if TOKEN_REVIEW_AUDIENCE not in issued["audiences"]:
            return "", (f"Review.Status.Authenticated is false. Error [invalid bearer token, token audiences "
                        f"{issued['audiences']} is invalid for the target audiences [\"{TOKEN_REVIEW_AUDIENCE}\"]]")
        namespace, name = issued["identity"].split("/", 1)
        return f"system:serviceaccount:{namespace}:{name}", ""

    def _kfp_authorize(self, req: _Request, verb: str, resource: str, namespace: str,
                       what: str) -> tuple[int, Any, str] | None:
        """None when allowed, else the error answer (multi-user only; standalone skips both checks)."""
        if not self.multi_user:
            return None
        if not namespace:
            return _kfp_error(3, f"{what}: Invalid input error: A {resource[:-1]} cannot have an empty namespace "
                                 "in multi-user mode")
        user, why = self._kfp_authenticate(req)
        if not user:
            external = "Failed to check authorization. User identity is empty in the request header"
            return _kfp_error(16, f"{what}: Unauthenticated: {external}: {why}", external)
        review = self._review({"spec": {"user": user, "resourceAttributes": {
            "verb": verb, "group": "pipelines.kubeflow.org", "resource": resource, "namespace": namespace}}})
        if review["status"]["allowed"]:
            return None
        external = (f"User '{user}' is not authorized with reason:  (request: &ResourceAttributes{{Namespace:"
                    f"{namespace},Verb:{verb},Group:pipelines.kubeflow.org,Version:v1beta1,Resource:{resource}}})")
        return _kfp_error(7, f"{what}: PermissionDenied: {external}: Unauthorized access", external)

    def _kfp_identity(self, req: _Request) -> str:
        issued = self._caller(req.authorization)
        return issued["identity"] if issued else ""

    def _create_run(self, req: _Request) -> tuple[int, Any, str]:
        body = req.body or {}
        experiment = self.experiments.get(body.get("experiment_id", ""))
        if experiment is None:
            return _kfp_error(5, f"Failed to create a run: experiment {body.get('experiment_id', '')} not found")
        namespace = experiment.get("namespace") or "kubeflow"
        denied = self._kfp_authorize(req, "create", "runs", namespace, "Failed to create a run due to "
                                     f"authorization error. Check if you have write permissions to namespace {namespace}")
        if denied:
            return denied
        run_id = f"{len(self.runs) + 1:08d}-fake-run"
        run = {**body, "run_id": run_id, "state": "PENDING", "created_at": rfc3339(datetime.now(timezone.utc)),
               "namespace": namespace, "submitted_by": self._kfp_identity(req)}
        self.runs[run_id] = FakeRun(run, self.polls_until_done, self.final_state)
        if self.on_run:
            self.on_run(self, run)
        return 200, _public_run(run), "application/json"

    def _list_runs(self, req: _Request) -> tuple[int, Any, str]:
        namespace = req.arg("namespace") or ("" if self.multi_user else "kubeflow")
        experiment_id = req.arg("experiment_id")
        if experiment_id:  # the experiment decides the namespace (run_server.go listRuns @81fc181b1)
            if experiment_id not in self.experiments:
                return _kfp_error(5, "Failed to list runs due to error fetching namespace for experiment "
                                       f"{experiment_id}. Try filtering based on namespace")
            namespace = self.experiments[experiment_id].get("namespace") or "kubeflow"
        denied = self._kfp_authorize(req, "list", "runs", namespace, "Failed to list runs due to authorization "
                                     f"error. Check if you have permission to access namespace {namespace}")
        if denied:
            return denied
        found = [_public_run(r.body) for r in self.runs.values() if r.body["namespace"] == namespace
                 and experiment_id in (None, r.body.get("experiment_id"))]
        # EmitUnpopulated is false (common/utils.go CustomMarshaler): an empty list is `{}`
        return 200, ({"runs": found, "total_size": len(found)} if found else {}), "application/json"

    def _get_run(self, req: _Request, run_id: str) -> tuple[int, Any, str]:
        fake_run = self.runs.get(run_id)
        if fake_run is None:  # canAccessRun reads the run before it authorizes: 404 comes first
            return _kfp_error(5, f"Failed to get a run: Failed to authorize the request: Failed to authorize with "
                                 f"the run ID {run_id}: ResourceNotFoundError: Run {run_id} not found")
        namespace = fake_run.body["namespace"]
        denied = self._kfp_authorize(req, "get", "runs", namespace, f"Failed to get a run: Failed to authorize the "
                                     f"request: Failed to access run {run_id}. Check if you have access to "
                                     f"namespace {namespace}")
        if denied:
            return denied
        with self.lock:
            if fake_run.polls_left > 0:
                fake_run.polls_left -= 1
                fake_run.body["state"] = "RUNNING"
            else:
                fake_run.body["state"] = fake_run.final_state
                fake_run.body.setdefault("finished_at", rfc3339(datetime.now(timezone.utc)))
                hook = self.on_complete.pop(run_id, None)
                if hook is not None:
                    hook(self)
        return 200, _public_run(fake_run.body), "application/json"


CORE_V1 = "v1"


def _log_line(moment: datetime, line: str, stamped: bool) -> str:
    """A container log line as the API returns it; `timestamps=true` prefixes RFC 3339 with nanoseconds
    (Kubernetes core/v1 PodLogOptions.timestamps; the kubelet writes RFC3339Nano)."""
    if not stamped:
        return f"{line}\n"
    stamp = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"
    return f"{stamp} {line}\n"
TOKEN_DEFAULT_SECONDS = 3600
TOKEN_MIN_SECONDS = 600
TOKEN_REVIEW_AUDIENCE = "pipelines.kubeflow.org"
# gRPC code -> HTTP status, as grpc-gateway v2 runtime.HTTPStatusFromCode maps them
_GRPC_HTTP = {3: 400, 5: 404, 7: 403, 16: 401}


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


def _kfp_error(code: int, message: str, external: str = "") -> tuple[int, Any, str]:
    """A KFP API error as grpc-gateway writes a UserError: the status carries the wrapped internal message and
    one google.rpc.Status detail with the external message (common/util/error.go GRPCStatus)."""
    body = {"code": code, "message": message,
            "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": code,
                         "message": external or message}]}
    return _GRPC_HTTP[code], body, "application/json"


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code,
            "reason": {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(code, "")}


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


