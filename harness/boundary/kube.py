"""THE Kubernetes API boundary: get, list, watch, logs, events, TokenRequest, SubjectAccessReview, exec.

Built on the official `kubernetes` client (auth, TLS and kubeconfig handling are its job). Objects come back
as plain wire-format dicts (camelCase, as `kubectl get -o json` shows them) because bundles store them as
evidence. Every error is a `KubeApiError(status, reason)` whose text passed through `harness.boundary.redact`, and any
token this boundary hands out is remembered so that later errors and logs are redacted too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from harness.boundary.proc import Runner
from harness.boundary.redact import redact
from harness.boundary.retry import RetryPolicy, retry_after_seconds, transient_status
from harness.boundary.retry import call as retry_call
from harness.errors import ClusterError, HarnessError
from harness.models import Identity

# Core API group lives at /api/v1, every other group at /apis/<group>/<version>.
CORE = "v1"
ARGO_WORKFLOWS = ("argoproj.io/v1alpha1", "workflows")


class KubeApiError(HarnessError):
    """The API server answered with an error (status 0: it could not be reached)."""

    exit_code = 1

    def __init__(self, status: int, reason: str, what: str, fix: str = "", *,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.reason = reason
        self.what = what
        self.retry_after = retry_after
        super().__init__(f"Kubernetes API {what} failed: {status} {reason}".rstrip(),
                         fix or _FIXES.get(status, "check the cluster with `kubectl get --raw /version`"))


_FIXES = {
    0: "check that the cluster is running and the kubeconfig/context point at it",
    401: "the kubeconfig credentials were rejected; refresh them (kind export kubeconfig)",
    403: "the kubeconfig user lacks this permission; use a cluster-admin context",
    404: "the object does not exist (yet); check the install and namespace",
}


def api_path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
    """REST path of a resource collection or object, e.g. /apis/argoproj.io/v1alpha1/namespaces/x/workflows."""
    base = "/api/v1" if api_version == CORE else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


@dataclass
class Kube:
    """A connection to one cluster through a kubeconfig file and context."""

    kubeconfig: str
    context: str | None = None
    secrets: list[str] = field(default_factory=list, repr=False)  # token values: never shown
    request_timeout: float = 30
    runner: Runner | None = field(default=None, repr=False)  # `kubectl exec`; its repr lists secrets
    retry_policy: RetryPolicy | None = field(default=None, repr=False)  # None: harness.boundary.retry.default_policy()

    def __post_init__(self) -> None:
        configuration = k8s.Configuration()
        try:
            k8s_config.load_kube_config(config_file=str(self.kubeconfig), context=self.context,
                                        client_configuration=configuration, persist_config=False)
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            raise ClusterError(f"cannot load kubeconfig {self.kubeconfig} (context {self.context or 'current'}): "
                               f"{redact(str(exc), self.secrets)}",
                               "check the path and context (kind get kubeconfig --name NAME)") from None
        # urllib3 would otherwise repeat failed requests itself (3 times, POSTs included when the connection
        # failed before sending): harness.boundary.retry is the one policy, applied only to calls safe to repeat.
        configuration.retries = urllib3.util.Retry(total=0, raise_on_status=False)
        self.api = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(self.api)

    @classmethod
    def for_cluster(cls, cluster: Any, **kwargs: Any) -> Kube:
        """From a `harness.cluster.base.ClusterHandle` (anything with .kubeconfig and .context)."""
        return cls(str(cluster.kubeconfig), getattr(cluster, "context", None) or None, **kwargs)

    def remember_secret(self, value: str) -> None:
        if value and value not in self.secrets:
            self.secrets.append(value)

    # -- low level --------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
              body: Any = None, what: str = "", stream: bool = False, timeout: float | None = None,
              retry: bool | None = None) -> Any:
        """One request. `retry` (default: GET only) repeats it under `harness.boundary.retry` on 5xx, 429 and dropped
        connections; callers pass True for POSTs that change nothing (TokenRequest, SubjectAccessReview)."""
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        what = what or f"{method} {path}"

        def once() -> Any:
            try:
                response = self.api.call_api(
                    path, method, query_params=params, body=body,
                    header_params={"Accept": "application/json", "Content-Type": "application/json"},
                    auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
                    _request_timeout=timeout or self.request_timeout,
                )
                if stream:
                    return response
                # read inside the try: a connection dropped mid-answer raises here (urllib3 ProtocolError)
                return response.data.decode("utf-8", errors="replace")
            except ApiException as exc:
                reason = redact(f"{exc.reason or ''} {_status_message(exc.body)}".strip(), self.secrets)
                raise KubeApiError(exc.status or 0, reason, what,
                                   retry_after=retry_after_seconds(exc.headers)) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise KubeApiError(0, redact(type(exc).__name__ + ": " + str(exc), self.secrets)[:300],
                                   what) from None

        if not (method == "GET" if retry is None else retry):
            return once()
        return retry_call(once, is_transient=_transient, policy=self.retry_policy,
                          retry_after=lambda exc: getattr(exc, "retry_after", None))

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        text = self._call(method, path, **kwargs)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise KubeApiError(0, "answer is not JSON", kwargs.get("what") or f"{method} {path}") from None

    # -- objects ----------------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version", what="GET /version")

    def create(self, api_version: str, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object (a scenario's Secret or ConfigMap). Its data is never echoed in errors."""
        name = (body.get("metadata") or {}).get("name", "")
        return self._json("POST", api_path(api_version, plural, namespace), body=body,
                          what=f"create {plural} {namespace}/{name}")

    def delete(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        self._call("DELETE", api_path(api_version, plural, namespace, name),
                   what=f"delete {plural} {namespace + '/' if namespace else ''}{name}")

    def get(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        path = api_path(api_version, plural, namespace, name)
        return self._json("GET", path, what=f"get {plural} {namespace + '/' if namespace else ''}{name}")

    def find(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Like get, but None when the object does not exist."""
        try:
            return self.get(api_version, plural, name, namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, plural: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        """All items (follows `continue` tokens), each with apiVersion/kind filled in like kubectl does."""
        path = api_path(api_version, plural, namespace)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._json("GET", path, query={"labelSelector": label_selector, "fieldSelector": field_selector,
                                                  "limit": 500, "continue": token},
                              what=f"list {plural}{' in ' + namespace if namespace else ''}")
            kind = str(page.get("kind", "")).removesuffix("List")
            for item in page.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def watch(self, api_version: str, plural: str, namespace: str | None = None, *,
              label_selector: str | None = None, timeout_seconds: int = 60) -> Iterator[dict[str, Any]]:
        """Watch events ({type, object}) until the server closes the stream or `timeout_seconds` pass."""
        path = api_path(api_version, plural, namespace)

        def list_func(**kwargs: Any) -> Any:
            query = {"watch": "true", "labelSelector": label_selector,
                     "timeoutSeconds": kwargs.get("timeout_seconds"),
                     "resourceVersion": kwargs.get("resource_version"), "allowWatchBookmarks": "false"}
            return self._call("GET", path, query=query, stream=True, what=f"watch {plural}",
                              timeout=timeout_seconds + 10)

        watcher = k8s_watch.Watch()
        try:
            for event in watcher.stream(list_func, timeout_seconds=timeout_seconds):
                yield {"type": event["type"], "object": event["raw_object"]}
        except ApiException as exc:  # the client raises on an ERROR event (e.g. 410 Gone: resourceVersion too old)
            raise KubeApiError(exc.status or 0, redact(str(exc.reason or ""), self.secrets)[:300],
                               f"watch {plural}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # the stream dropped after it started
            raise KubeApiError(0, redact(type(exc).__name__ + ": " + str(exc), self.secrets)[:300],
                               f"watch {plural}") from None
        finally:
            watcher.stop()

    # -- pods, logs, events -----------------------------------------------------------------------------
    def pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.list(CORE, "pods", namespace, label_selector=label_selector)

    def pod_log(self, namespace: str, pod: str, container: str | None = None, *, since_time: str | None = None,
                timestamps: bool = False, previous: bool = False, limit_bytes: int | None = None) -> str:
        """Container log text, redacted. `since_time` is RFC 3339 (the API's sinceTime)."""
        text = self._call("GET", api_path(CORE, "pods", namespace, pod, "log"),
                          query={"container": container, "sinceTime": since_time,
                                 "timestamps": "true" if timestamps else None,
                                 "previous": "true" if previous else None, "limitBytes": limit_bytes},
                          what=f"logs of pod {namespace}/{pod}{' -c ' + container if container else ''}")
        return redact(text, self.secrets)

    def follow_log(self, namespace: str, pod: str, container: str, *, timeout: float = 3600) -> Any:
        """An open `follow=true` log stream from the container's start (urllib3 response: `.stream()`,
        `.close()`), for harness.live.follow. Not redacted here: the caller redacts what it keeps."""
        return self._call("GET", api_path(CORE, "pods", namespace, pod, "log"),
                          query={"container": container, "follow": "true"}, stream=True, timeout=timeout,
                          what=f"follow logs of pod {namespace}/{pod} -c {container}")

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.list(CORE, "events", namespace)

    # -- identities -------------------------------------------------------------------------------------
    def request_token(self, identity: Identity, *, audiences: list[str] | None = None,
                      expiration_seconds: int = 3600) -> str:
        """A TokenRequest for a ServiceAccount (what `kubectl create token` does). The value is remembered
        for redaction and never logged."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": audiences or [], "expirationSeconds": expiration_seconds}}
        answer = self._json("POST", api_path(CORE, "serviceaccounts", identity.namespace, identity.name, "token"),
                            body=body, what=f"TokenRequest for {identity.ref}", retry=True)
        token = str((answer.get("status") or {}).get("token") or "")
        if not token:
            raise KubeApiError(200, "TokenRequest answered without a token", f"TokenRequest for {identity.ref}")
        self.remember_secret(token)
        return token

    def access_review(self, identity: Identity, verb: str, resource: str, *, group: str = "",
                      subresource: str = "", namespace: str = "", name: str = "") -> dict[str, Any]:
        """SubjectAccessReview for a ServiceAccount: {allowed, denied, reason} as the API server decides."""
        attributes = {k: v for k, v in {"verb": verb, "group": group, "resource": resource,
                                        "subresource": subresource, "namespace": namespace,
                                        "name": name}.items() if v}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": f"system:serviceaccount:{identity.namespace}:{identity.name}",
                         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{identity.namespace}",
                                    "system:authenticated"],
                         "resourceAttributes": attributes}}
        answer = self._json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body,
                            what=f"SubjectAccessReview for {identity.ref}", retry=True)
        status = answer.get("status") or {}
        return {"allowed": bool(status.get("allowed")), "denied": bool(status.get("denied")),
                "reason": redact(str(status.get("reason") or ""), self.secrets)}

    # -- secrets: values only for public material (CA certificates); metadata otherwise ------------------
    def secret_value(self, namespace: str, name: str, key: str) -> bytes:
        """One decoded key of a Secret. Callers use it for CA certificates only; it is never logged."""
        import base64

        secret = self.get(CORE, "secrets", name, namespace)
        encoded = (secret.get("data") or {}).get(key)
        if not encoded:
            raise KubeApiError(404, f"Secret {namespace}/{name} has no key {key!r}",
                               f"read Secret {namespace}/{name}", "wait for cert-manager to issue the certificate")
        return base64.b64decode(encoded)

    def secret_metadata(self, namespace: str) -> list[dict[str, Any]]:
        """Secrets in a namespace as name/type/annotations only: the data never leaves this boundary."""
        return [{"name": s["metadata"]["name"], "type": s.get("type", ""),
                 "annotations": {k: v for k, v in (s["metadata"].get("annotations") or {}).items()
                                 if k.startswith("kubernetes.io/")}}
                for s in self.list(CORE, "secrets", namespace)]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, KubeApiError) and transient_status(exc.status)


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _status_message(body: Any) -> str:
    if not body:
        return ""
    try:
        return str(json.loads(body).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return str(body)[:300]

