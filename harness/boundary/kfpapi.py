"""THE KFP API boundary: a port-forward to `svc/ml-pipeline`, a ServiceAccount token, the TLS CA, a client.

Follows KFP CI (kfp-variants.md §2): the API is reached through `kubectl port-forward svc/ml-pipeline 8888`;
standalone authenticates as `kubeflow/pipeline-runner` (like `kubectl create token pipeline-runner -n
kubeflow`), multi-user as the profile's `default-editor` with audience `pipelines.kubeflow.org`. Both are
`<mode.user_namespace>/<mode.workflow_service_account>` in the config, so no mode name is checked here. With
TLS the CA comes from the Secret named by the rendered KFP API Certificate's `spec.secretName` (key
`ca.crt`), written to a 0600 temp file outside the out dir. The token lives only in memory and is
registered for redaction with the Kubernetes boundary. A TokenRequest token lives `TOKEN_SECONDS` (an hour),
shorter than a long run plus collection, so `TokenSource` requests a new one at 80% of its life and whenever
the API answers 401.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
import tenacity
import urllib3

from harness.boundary.kube import Kube
from harness.boundary.proc import Runner
from harness.boundary.redact import redact
from harness.boundary.retry import call as retry_call
from harness.boundary.retry import requests_get, transient_status
from harness.errors import ClusterError, HarnessError
from harness.models import Identity, Mode

SERVICE = ("kubeflow", "ml-pipeline")
SERVICE_PORT = 8888
MULTI_USER_AUDIENCE = "pipelines.kubeflow.org"
CA_KEY = "ca.crt"
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")
TOKEN_SECONDS = 3600
# The kubelet rotates a projected token once it is older than 80% of its life (k8s.io/api core/v1
# ServiceAccountTokenProjection.expirationSeconds); an API token we request ourselves follows the same rule.
REFRESH_FRACTION = 0.8
T = TypeVar("T")


class KfpApiError(HarnessError):
    """The KFP API refused or failed a request (message redacted)."""

    exit_code = 1


@dataclass
class TokenSource:
    """A ServiceAccount token for the KFP API that is requested again before it expires or when rejected.

    Multi-user KFP authenticates every request by a TokenReview (auth/authenticator_token_review.go at
    kubeflow/pipelines 81fc181b1, unchanged on both PoC branches), and Kubernetes does not authenticate an
    expired token, so a token requested once per pair stops working an hour into the pair."""

    kube: Kube
    identity: Identity
    audiences: list[str]
    also_redact: list[str] = field(default_factory=list, repr=False)  # e.g. the kubectl runner's secrets
    seconds: int = TOKEN_SECONDS
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _token: str = field(default="", repr=False)
    _issued: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current(self) -> str:
        with self._lock:
            if not self._token or self.clock() - self._issued >= self.seconds * REFRESH_FRACTION:
                self._request()
            return self._token

    def refresh(self, rejected: str = "") -> str:
        """A new token, unless another thread already replaced the `rejected` one."""
        with self._lock:
            if not rejected or rejected == self._token:
                self._request()
            return self._token

    def _request(self) -> None:
        issued = self.clock()
        token = self.kube.request_token(self.identity, audiences=self.audiences, expiration_seconds=self.seconds)
        if token not in self.also_redact:
            self.also_redact.append(token)
        self._token, self._issued = token, issued


def _credentials(tokens: TokenSource) -> Any:
    """kfp SDK credentials (kfp.client.TokenCredentialsBase): the generated client calls the hook before
    every request (kfp_server_api Configuration.get_api_key_with_prefix), so the SDK always sends the
    current token."""
    from kfp.client import TokenCredentialsBase

    class _Refreshing(TokenCredentialsBase):
        def refresh_api_key_hook(self, config: Any) -> None:
            config.api_key["authorization"] = tokens.current()

    return _Refreshing()


@dataclass
class KfpSession:
    """A connected, authenticated KFP API. `secrets` holds values every writer must redact."""

    host: str
    namespace: str
    identity: Identity
    multi_user: bool
    ca_file: str | None
    client: Any  # kfp.Client
    secrets: list[str] = field(default_factory=list, repr=False)
    tokens: TokenSource | None = field(default=None, repr=False)

    def submit(self, pipeline_file: str, arguments: dict[str, Any], *, run_name: str,
               experiment: str, enable_caching: bool | None = False) -> dict[str, Any]:
        """Create a run of a compiled pipeline (IR YAML) in the session's namespace: {run_id, created_at}.

        Caching is off by default: a reused cluster may run the same scenario again, and cache hits would
        skip the drivers and executors whose behaviour we compare. None keeps the compiled settings.
        """
        from kfp_server_api.exceptions import ApiException

        tried: list[bool] = []

        def attempt() -> Any:
            # Idempotent submission: after a lost answer (5xx, 429, dropped connection) the run may exist;
            # find it by its client-chosen name (unique in the experiment kfpc-<run id>) before creating again.
            if tried:
                found = self._find_run(run_name, experiment)
                if found is not None:
                    return found
            tried.append(True)
            # the SDK prints UI links on stdout; keep the CLI's output ours
            with contextlib.redirect_stdout(io.StringIO()):
                return self._refreshing(lambda: self.client.create_run_from_pipeline_package(
                    pipeline_file, arguments=dict(arguments), run_name=run_name, experiment_name=experiment,
                    namespace=self.namespace if self.multi_user else None, enable_caching=enable_caching,
                )).run_info

        try:
            run = retry_call(attempt, is_transient=_lost_answer)
        except ApiException as exc:
            raise KfpApiError(f"KFP API refused the run {run_name}: {exc.status} "
                              f"{redact(str(exc.body or exc.reason), self.secrets)[:300]}",
                              "check the ml-pipeline logs and the token's permissions") from None
        except urllib3.exceptions.HTTPError as exc:
            raise KfpApiError(f"KFP API unreachable while submitting the run {run_name}: {type(exc).__name__}",
                              "check the port-forward to svc/ml-pipeline") from None
        return {"run_id": run.run_id, "created_at": _iso(run.created_at), "display_name": run_name}

    def _find_run(self, run_name: str, experiment: str) -> Any:
        """The run named `run_name` in `experiment`, or None. `display_name` is a filterable run field
        (backend/src/apiserver/model/run.go runAPIToModelFieldMap @81fc181b1); checked here too."""
        namespace = self.namespace if self.multi_user else None
        try:
            experiment_id = self.client.get_experiment(experiment_name=experiment, namespace=namespace).experiment_id
        except ValueError:  # no such experiment: nothing was created
            return None
        predicate = {"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": run_name}]}
        page = self.client.list_runs(experiment_id=experiment_id, namespace=namespace, page_size=100,
                                     filter=json.dumps(predicate))
        for run in page.runs or []:
            if run.display_name == run_name and run.experiment_id in (None, "", experiment_id):
                return run
        return None

    def _refreshing(self, call: Callable[[], T]) -> T:
        """`call`; after a 401 (the SDK's ApiException or a plain read's `_Rejected`) once more with a new
        token, unless another thread already replaced the rejected one. The one way every KFP API call meets an
        expired or rotated token. Safe for creates: KFP authenticates before it creates anything
        (server/run_server.go createRun -> canAccessRun)."""
        from kfp_server_api.exceptions import ApiException

        sent = self.tokens.current() if self.tokens else ""
        try:
            return call()
        except (ApiException, _Rejected) as exc:
            if exc.status != 401 or self.tokens is None:
                raise
            self.tokens.refresh(sent)
            return call()

    def get_run(self, run_id: str) -> dict[str, Any]:
        """`GET /apis/v2beta1/runs/{id}` as the wire JSON (run_details.task_details included)."""
        def read() -> Any:
            token = self.tokens.current() if self.tokens else ""
            answer = requests_get(f"{self.host}/apis/v2beta1/runs/{run_id}", timeout=30,
                                  headers={"Authorization": f"Bearer {token}"} if token else {},
                                  verify=self.ca_file if self.ca_file else True)
            if answer.status_code == 401:
                raise _Rejected(answer)
            return answer

        try:
            answer = self._refreshing(read)
        except _Rejected as rejected:  # still 401 with a new token: reported below like any other status
            answer = rejected.answer
        except requests.RequestException as exc:
            raise KfpApiError(f"KFP API unreachable while reading run {run_id}: "
                              f"{type(exc).__name__}",
                              "check the port-forward to svc/ml-pipeline") from None
        if answer.status_code != 200:
            raise KfpApiError(f"KFP API answered {answer.status_code} for run {run_id}: "
                              f"{redact(answer.text, self.secrets)[:300]}", "check the ml-pipeline logs")
        return answer.json()


class _Rejected(Exception):
    """A 401 answer to a plain HTTP read, raised so that `KfpSession._refreshing` handles it as it handles the
    SDK's ApiException(401)."""

    status = 401

    def __init__(self, answer: Any) -> None:
        super().__init__("HTTP 401")
        self.answer = answer


def _lost_answer(exc: BaseException) -> bool:
    """A create whose answer may have been lost: 5xx, 429 or a connection error (kfp_server_api uses urllib3)."""
    from kfp_server_api.exceptions import ApiException

    return isinstance(exc, urllib3.exceptions.HTTPError) or (isinstance(exc, ApiException)
                                                             and transient_status(exc.status))


def token_identity(mode: Mode) -> tuple[Identity, list[str]]:
    """Who the harness acts as in a mode, and the token audiences (CI's choice, §2)."""
    audiences = [MULTI_USER_AUDIENCE] if mode.multi_user else []
    return Identity(mode.user_namespace, mode.workflow_service_account), audiences


def ca_secret(manifests: Iterable[dict[str, Any]]) -> tuple[str, str] | None:
    """(namespace, secretName) of the cert-manager Certificate that serves the KFP API (its dnsNames hold
    `ml-pipeline`), read from the rendered install rather than guessed from the variant."""
    for manifest in manifests:
        if manifest.get("kind") != "Certificate" or not str(manifest.get("apiVersion", "")).startswith("cert-manager"):
            continue
        spec = manifest.get("spec") or {}
        if SERVICE[1] in (spec.get("dnsNames") or []) and spec.get("secretName"):
            return (manifest.get("metadata") or {}).get("namespace") or SERVICE[0], spec["secretName"]
    return None


def _manifests(renders: Any) -> list[dict[str, Any]]:
    if renders is None:
        return []
    if hasattr(renders, "manifests"):
        return list(renders.manifests)
    return list(renders)


class PortForward:
    """`kubectl port-forward -n kubeflow svc/ml-pipeline :8888` in the background; `.port` once ready."""

    def __init__(self, cluster: Any, runner: Runner, *, namespace: str, service: str, port: int,
                 timeout: float) -> None:
        self.argv = [runner.which("kubectl"), "--kubeconfig", str(cluster.kubeconfig)]
        if getattr(cluster, "context", None):
            self.argv += ["--context", cluster.context]
        self.argv += ["port-forward", "-n", namespace, f"svc/{service}", f":{port}", "--address", "127.0.0.1"]
        self.runner, self.timeout = runner, timeout
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self._stderr: list[str] = []

    def __enter__(self) -> PortForward:
        self.process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.runner.environ(),
            start_new_session=True,
        )
        threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True).start()
        found: list[int] = []
        reader = threading.Thread(target=self._read_port, args=(found,), daemon=True)
        reader.start()
        reader.join(self.timeout)
        if not found:
            self.__exit__()
            tail = redact("".join(self._stderr[-5:]).strip(), self.runner.secrets) or "no output"
            raise ClusterError(f"kubectl port-forward to svc/ml-pipeline was not ready in {self.timeout:.0f}s: "
                               f"{tail.splitlines()[-1]}", "check that the ml-pipeline pods are ready")
        self.port = found[0]
        return self

    def _read_port(self, found: list[int]) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            match = FORWARDING.search(line)
            if match:
                found.append(int(match.group(1)))
                # keep draining stdout so kubectl never blocks on a full pipe
                threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
                return

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _wait_healthy(host: str, ca_file: str | None, timeout: float) -> None:
    """The API answers healthz through the forward (kubectl accepts before the pod link is up)."""

    @tenacity.retry(stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(0.2), reraise=True,
                    retry=tenacity.retry_if_exception_type((requests.RequestException, KfpApiError)))
    def probe() -> None:
        answer = requests.get(f"{host}/apis/v2beta1/healthz", timeout=5, verify=ca_file if ca_file else True)
        if answer.status_code != 200:
            raise KfpApiError(f"healthz answered {answer.status_code}")

    try:
        probe()
    except (requests.RequestException, KfpApiError) as exc:
        raise ClusterError(f"KFP API at {host} is not healthy after {timeout:.0f}s ({type(exc).__name__})",
                           "check `kubectl -n kubeflow get pods` and the ml-pipeline logs") from None


@contextlib.contextmanager
def connect(cluster: Any, mode: Mode, kube: Kube, *, renders: Any = None, runner: Runner | None = None,
            endpoint: str | None = None, timeout: float = 60) -> Iterator[KfpSession]:
    """A `KfpSession` for one (cluster, mode). `endpoint` (a NodePort URL) skips the port-forward.

    Order: token first (fails fast with a clear error if the ServiceAccount is missing), then the CA, then
    the forward and a healthz probe, then the kfp SDK client.
    """
    import kfp

    runner = runner or Runner(secrets=kube.secrets)
    identity, audiences = token_identity(mode)
    # kubectl errors (port-forward) are redacted too; the Kube boundary remembers every token it issues
    tokens = TokenSource(kube, identity, audiences, also_redact=runner.secrets)
    tokens.current()
    secrets = kube.secrets  # shared list: the token is already in it
    with contextlib.ExitStack() as stack:
        ca_file: str | None = None
        if mode.tls:
            where = ca_secret(_manifests(renders))
            if where is None:
                raise ClusterError("TLS mode, but the rendered install has no cert-manager Certificate for "
                                   "ml-pipeline with a spec.secretName", "pass the install render as renders=")
            ca = kube.secret_value(where[0], where[1], CA_KEY)
            ca_file = stack.enter_context(_private_file(ca, suffix=".crt"))
        scheme = "https" if mode.tls else "http"
        if endpoint:
            host = endpoint.rstrip("/")
        else:
            forward = stack.enter_context(PortForward(cluster, runner, namespace=SERVICE[0], service=SERVICE[1],
                                                      port=SERVICE_PORT, timeout=timeout))
            # `localhost` is in the KFP API certificate's dnsNames (base-tls-certs/kfp-api-cert.yaml)
            host = f"{scheme}://localhost:{forward.port}" if mode.tls else f"{scheme}://127.0.0.1:{forward.port}"
        _wait_healthy(host, ca_file, timeout)
        with warnings.catch_warnings():  # the SDK warns on every construction that it needs KFP >= 2.0.0b2
            warnings.simplefilter("ignore", FutureWarning)
            client = kfp.Client(host=host, credentials=_credentials(tokens), ssl_ca_cert=ca_file,
                                namespace=mode.user_namespace)
        # The SDK seeds its namespace from ~/.config/kfp/context.json; a user's leftover multi-user context
        # must not leak into a standalone run, so the mode decides.
        client._context_setting["namespace"] = mode.user_namespace if mode.multi_user else ""
        yield KfpSession(host=host, namespace=mode.user_namespace, identity=identity, multi_user=mode.multi_user,
                         ca_file=ca_file, client=client, secrets=secrets, tokens=tokens)


@contextlib.contextmanager
def _private_file(content: bytes, suffix: str) -> Iterator[str]:
    """A 0600 temp file in the system temp dir (never under the out dir), removed on exit."""
    handle, path = tempfile.mkstemp(prefix="kfpc-", suffix=suffix)
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, content)
        os.close(handle)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)
