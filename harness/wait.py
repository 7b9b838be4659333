"""Named conditions with deadlines, progress lines and early failure on states that cannot recover.

A condition is a function returning a `Status`; `wait_for` polls it with tenacity until it is done, the
deadline passes (`WaitTimeout`, carrying the last status) or it reports an impossible state
(`WaitImpossible`, e.g. an image name the kubelet rejects). Conditions read the cluster through
`kubectl ... -o json` via `harness.proc`, so the fake kubectl on PATH exercises them in tests.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from harness.errors import CommandFailedError, CommandTimeoutError
from harness.proc import Runner

# Waiting reasons no amount of waiting fixes (CrashLoopBackOff and ImagePullBackOff can: a registry push
# or a dependency may still arrive).
IMPOSSIBLE_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})


@dataclass(frozen=True)
class Status:
    done: bool
    line: str
    pending: tuple[str, ...] = ()  # objects not ready yet (named in errors and diagnostics)
    impossible: str = ""


class WaitTimeout(Exception):
    def __init__(self, name: str, timeout: float, last: Status) -> None:
        self.name, self.timeout, self.last = name, timeout, last
        super().__init__(f"{name}: not done after {timeout:.0f}s ({last.line})")


class WaitImpossible(Exception):
    def __init__(self, name: str, last: Status) -> None:
        self.name, self.last = name, last
        super().__init__(f"{name}: {last.impossible}")


def wait_for(name: str, check: Callable[[], Status], timeout: float, *, interval: float = 2.0,
             progress: Callable[[str], None] = lambda _line: None) -> Status:
    """Poll `check` until done; print a progress line whenever the status line changes."""
    last: list[Status] = [Status(False, "not checked yet")]

    def attempt() -> Status:
        status = check()
        if status.line != last[0].line:
            progress(f"{name}: {status.line}")
        last[0] = status
        if status.impossible:
            raise WaitImpossible(name, status)
        return status

    try:
        return Retrying(retry=retry_if_result(lambda s: not s.done), stop=stop_after_delay(timeout),
                        wait=wait_fixed(interval), reraise=False)(attempt)
    except RetryError:
        raise WaitTimeout(name, timeout, last[0]) from None


def _kubectl_json(runner: Runner, kubectl: Sequence[str], args: Sequence[str]) -> tuple[dict | None, str]:
    try:
        result = runner.run([*kubectl, *args], timeout=60, check=False)
    except CommandTimeoutError as exc:
        return None, exc.problem
    if result.returncode != 0:
        return None, (result.stderr.strip().splitlines() or ["kubectl failed"])[-1]
    try:
        return json.loads(result.stdout), ""
    except ValueError:
        return None, "kubectl answered something that is not JSON"


def pod_problem(pod: dict) -> tuple[bool, str]:
    """(ready, reason) of one pod: Succeeded or condition Ready=True counts as ready."""
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return True, ""
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    reasons = [((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
               for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])]
    reason = next((r for r in reasons if r), status.get("phase", "Unknown"))
    return ready, "" if ready else reason


def pods_ready(runner: Runner, kubectl: Sequence[str], namespace: str, skip: Sequence[str]) -> Callable[[], Status]:
    """KFP's wait_for_pods.py: every pod in the namespace Ready, skipping names matching `skip` globs."""

    def check() -> Status:
        data, error = _kubectl_json(runner, kubectl, ["get", "pods", "-n", namespace, "-o", "json"])
        if data is None:
            return Status(False, f"cannot list pods: {error}")
        pods = [p for p in data.get("items", [])
                if not any(fnmatch.fnmatch(p["metadata"]["name"], pattern) for pattern in skip)]
        pending: list[str] = []
        impossible = ""
        for pod in pods:
            ready, reason = pod_problem(pod)
            if not ready:
                pending.append(f"{pod['metadata']['name']} ({reason})")
                if reason in IMPOSSIBLE_REASONS:
                    impossible = f"pod {pod['metadata']['name']} is {reason}"
        if not pods:
            return Status(False, f"no pods in {namespace} yet")
        if pending:
            return Status(False, f"{len(pods) - len(pending)}/{len(pods)} pods ready; waiting for "
                          + ", ".join(sorted(pending)), tuple(sorted(pending)), impossible)
        return Status(True, f"{len(pods)}/{len(pods)} pods ready")

    return check


def object_exists(runner: Runner, kubectl: Sequence[str], kind: str, name: str, namespace: str) -> Callable[[], Status]:
    def check() -> Status:
        try:
            result = runner.run([*kubectl, "get", kind, name, "-n", namespace, "-o", "name"], timeout=60, check=False)
        except (CommandFailedError, CommandTimeoutError) as exc:
            return Status(False, exc.problem)
        if result.returncode == 0:
            return Status(True, f"{kind} {namespace}/{name} exists")
        return Status(False, f"{kind} {namespace}/{name} does not exist yet", (f"{kind}/{namespace}/{name}",))

    return check
