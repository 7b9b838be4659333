"""Named conditions with deadlines, progress lines and early failure on states that cannot recover.

A condition is a function returning a `Status`; `wait_for` polls it with tenacity until it is done, the
deadline passes (`WaitTimeout`, carrying the last status) or it reports an impossible state
(`WaitImpossible`, e.g. an image name the kubelet rejects). Conditions read the cluster through
`kubectl ... -o json` via `harness.boundary.proc`, so the fake kubectl on PATH exercises them in tests.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from harness.boundary.proc import Runner
from harness.errors import CommandFailedError, CommandTimeoutError

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


def _list_pods(runner: Runner, kubectl: Sequence[str], namespace: str, skip: Sequence[str],
               selector: str = "") -> tuple[list[dict] | None, str]:
    args = ["get", "pods", "-n", namespace, *(["-l", selector] if selector else []), "-o", "json"]
    data, error = _kubectl_json(runner, kubectl, args)
    if data is None:
        return None, f"cannot list pods: {error}"
    return [p for p in data.get("items", [])
            if not any(fnmatch.fnmatch(p["metadata"]["name"], pattern) for pattern in skip)], ""


def pods_ready(runner: Runner, kubectl: Sequence[str], namespace: str, skip: Sequence[str],
               selector: str = "") -> Callable[[], Status]:
    """`kubectl wait --for=condition=Ready pods [--all | -l SELECTOR]` as KFP CI uses it for istio-system and the
    profile controller, but polled: no pod yet is "not yet", never success or an error."""
    where = f"{namespace} ({selector})" if selector else namespace

    def check() -> Status:
        pods, error = _list_pods(runner, kubectl, namespace, skip, selector)
        if pods is None:
            return Status(False, error)
        pending: list[str] = []
        impossible = ""
        for pod in pods:
            ready, reason = pod_problem(pod)
            if not ready:
                pending.append(f"{pod['metadata']['name']} ({reason})")
                if reason in IMPOSSIBLE_REASONS:
                    impossible = f"pod {pod['metadata']['name']} is {reason}"
        if not pods:
            return Status(False, f"no pods in {where} yet")
        if pending:
            return Status(False, f"{len(pods) - len(pending)}/{len(pods)} pods ready; waiting for "
                          + ", ".join(sorted(pending)), tuple(sorted(pending)), impossible)
        return Status(True, f"{len(pods)}/{len(pods)} pods ready")

    return check


def ci_pod_status(pod: dict) -> tuple[str, int, int, tuple[str, ...]]:
    """What wait_for_pods.py compares between polls (get_pod_statuses, kubeflow/pipelines@81fc181b1
    .github/resources/scripts/kfp-readiness/wait_for_pods.py): phase, ready and total containers, and the
    waiting reasons/messages."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = []
    for cs in containers:
        state = (cs.get("state") or {}).get("waiting")
        if state is not None:
            waiting.append(f"{cs.get('name')} - {state.get('reason')}" + (f": {state['message']}" if state.get("message") else ""))
    return (status.get("phase", ""), sum(1 for cs in containers if cs.get("ready")), len(containers), tuple(waiting))


def _ci_ready(status: tuple[str, int, int, tuple[str, ...]]) -> bool:
    """wait_for_pods.py is_pod_ready: Succeeded, or Running with every container ready."""
    phase, ready, total, _waiting = status
    return phase == "Succeeded" or (phase == "Running" and ready == total)


def pods_calm(runner: Runner, kubectl: Sequence[str], namespace: str, skip: Sequence[str],
              polls: int) -> Callable[[], Status]:
    """KFP's wait_for_pods.py check_pods: done when the statuses of every pod (skipping `skip` globs) are all
    ready (Succeeded, or Running with every container ready) AND identical to the previous poll's for `polls`
    polls in a row; any change (a restart, a new pod) starts the count again. Unlike upstream, an empty
    namespace is not ready (upstream's all() of nothing is True; KFP's namespace is never empty when ready)."""
    state: dict[str, Any] = {"previous": None, "stable": 0}

    def check() -> Status:
        pods, error = _list_pods(runner, kubectl, namespace, skip)
        if pods is None:
            state["previous"], state["stable"] = None, 0
            return Status(False, error)
        statuses = {p["metadata"]["name"]: ci_pod_status(p) for p in pods}
        not_ready = sorted(f"{p['metadata']['name']} ({pod_problem(p)[1] or 'not all containers ready'})"
                           for p in pods if not _ci_ready(statuses[p["metadata"]["name"]]))
        impossible = next((f"pod {p['metadata']['name']} is {pod_problem(p)[1]}" for p in pods
                           if pod_problem(p)[1] in IMPOSSIBLE_REASONS), "")
        if statuses and not not_ready and statuses == state["previous"]:
            state["stable"] += 1
        else:
            state["stable"] = 0
        state["previous"] = statuses
        if not statuses:
            return Status(False, f"no pods in {namespace} yet")
        if not_ready:
            return Status(False, f"{len(statuses) - len(not_ready)}/{len(statuses)} pods ready; waiting for "
                          + ", ".join(not_ready), tuple(not_ready), impossible)
        if state["stable"] >= polls:
            return Status(True, f"{len(statuses)}/{len(statuses)} pods ready and unchanged over {polls} polls")
        return Status(False, f"{len(statuses)}/{len(statuses)} pods ready; unchanged over {state['stable']}/{polls} "
                      "polls")

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
