"""THE retry policy for calls at the API boundaries (Kubernetes API in `harness.boundary.kube`, KFP API in
`harness.boundary.kfpapi`): only calls that are safe to repeat (GET/LIST/WATCH start; TokenRequest and
SubjectAccessReview creates, which change nothing), only on transient answers (5xx, 429, a dropped or refused
connection), with exponential backoff and jitter, a bounded number of attempts and a bounded total time.

What counts as transient follows Argo's controller (util/errors/errors.go `isTransientErr` at v3.7.3:
TooManyRequests, ServiceUnavailable, ServerTimeout, "connection reset by peer"/"connection refused"
network errors), which retries its own Kubernetes calls with util/retry/retry.go `DefaultRetry` (5 steps,
exponential). Our waits are longer because a kind API server restarting under load takes seconds, not
milliseconds. A 429's `Retry-After` (seconds) is honoured up to the policy's largest wait.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

T = TypeVar("T")

# Status 0 stands for "no HTTP answer": connection refused, reset or dropped mid-answer.
TRANSIENT_STATUSES = frozenset({0, 429})  # and every 5xx but 501 (below)


def transient_status(status: int | None) -> bool:
    """5xx, 429, or no answer at all (0/None). 501 Not Implemented is not transient, it never changes."""
    if status is None:
        return True
    return status in TRANSIENT_STATUSES or (status >= 500 and status != 501)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # first try included
    initial: float = 0.5  # seconds before the 2nd attempt, doubled each time (with jitter)
    max_wait: float = 8.0
    max_total: float = 60.0  # never retry past this many seconds since the first attempt

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        return min(self.initial * (2 ** max(attempt - 1, 0)), self.max_wait)


def default_policy() -> RetryPolicy:
    """The policy, scaled by env KFPC_RETRY_SCALE (tests and fault trials use 0 for no sleeping)."""
    scale = float(os.environ.get("KFPC_RETRY_SCALE", "1") or 1)
    base = RetryPolicy()
    return dataclasses.replace(base, initial=base.initial * scale, max_wait=base.max_wait * scale)


def call(fn: Callable[[], T], *, is_transient: Callable[[BaseException], bool],
         policy: RetryPolicy | None = None, retry_after: Callable[[BaseException], float | None] | None = None,
         on_retry: Callable[[BaseException, int], None] | None = None) -> T:
    """`fn()`, repeated while it raises an exception `is_transient` accepts; the last exception is re-raised
    unchanged (callers already turn it into a one-line HarnessError)."""
    policy = policy or default_policy()

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after(exc) if (retry_after and exc is not None) else None
        return policy.wait(state.attempt_number, hinted) * (1 if hinted is not None else _jitter())

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry and exc is not None:
            on_retry(exc, state.attempt_number)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.max_total),
        wait=wait, retry=tenacity.retry_if_exception(is_transient), reraise=True, before_sleep=before_sleep)
    return retrying(fn)


def _jitter() -> float:
    """0.5..1.0: spreads retries of parallel workers (full jitter would allow near-zero waits)."""
    import random

    return 0.5 + random.random() / 2  # noqa: S311 - timing jitter, not security


def retry_after_seconds(headers: Any) -> float | None:
    """A numeric `Retry-After` header (the API server's priority-and-fairness 429 sends seconds)."""
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def requests_get(url: str, *, policy: RetryPolicy | None = None, **kwargs: Any) -> Any:
    """`requests.get` under the policy: repeated on connection errors, timeouts and transient statuses. Returns
    the last response (the caller reports its status) or re-raises the last `requests.RequestException`."""
    import requests

    def once() -> Any:
        return requests.get(url, **kwargs)

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                                _TransientAnswer))

    def checked() -> Any:
        answer = once()
        if transient_status(answer.status_code):
            raise _TransientAnswer(answer)
        return answer

    try:
        return call(checked, is_transient=transient, policy=policy,
                    retry_after=lambda exc: retry_after_seconds(exc.answer.headers)
                    if isinstance(exc, _TransientAnswer) else None)
    except _TransientAnswer as exc:
        return exc.answer


class _TransientAnswer(Exception):
    def __init__(self, answer: Any) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.answer = answer
