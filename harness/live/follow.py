"""Follow the logs of a run's short-lived pods while the run is in flight.

Why: Argo deletes a workflow's agent pod as soon as the workflow completes (workflow/controller/operator.go,
`if woc.hasTaskSetNodes() { DeletePod(..., woc.getAgentPodName()) }`, v3.7.3 and v4.0.8), and the
sidecar-plugin driver removes each `/kfp/log/<logID>.log` file at the end of the request that wrote it
(ntny/pipelines central-driver-poc-backup backend/src/driver/rpc_handler.go, deferred `os.Remove`). What it
logged is only on the `driver-plugin` container's stdout (its logrus logger writes to stdout and the file,
backend/src/common/util/context_logger.go) while the pod exists, so it must be read before completion.

`LogFollower.poll()` is called from the harness's run wait loop (before each read of the run state): it
finds the run's agent pods and opens one `follow=true` log stream per pod and container, from the start of
the container's log; a stream ends by itself when the container stops (pod deleted). `stop()` closes what
is still open and returns `{"<pod>/<container>": text}`. The text is not redacted here: the collector
redacts everything it writes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from harness.boundary.kube import ARGO_WORKFLOWS, Kube
from harness.errors import HarnessError

AGENT_SELECTOR = "workflows.argoproj.io/component=agent"  # Argo workflow/controller/agent.go labels
CONNECT_WAIT = 10.0  # seconds poll() waits for a new stream to be open, so no line is lost to a race


@dataclass
class _Stream:
    key: str
    chunks: list[str] = field(default_factory=list)
    response: Any = None
    error: str = ""
    opened: threading.Event = field(default_factory=threading.Event)
    closed_by_us: bool = False
    thread: threading.Thread | None = None


@dataclass
class LogFollower:
    """Follows `container` of the agent pods of the Workflow labelled `pipeline/runid=<run_id>`."""

    kube: Kube
    namespace: str
    run_id: str
    container: str
    timeout: float = 3600.0
    workflow: str = ""
    streams: dict[str, _Stream] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def poll(self) -> None:
        """Attach to agent pods not yet followed. Failures are recorded, never raised: the run goes on."""
        try:
            if not self.workflow:
                found = self.kube.list(*ARGO_WORKFLOWS, self.namespace, label_selector=f"pipeline/runid={self.run_id}")
                if not found:
                    return
                self.workflow = found[0]["metadata"]["name"]
            pods = self.kube.pods(self.namespace, f"workflows.argoproj.io/workflow={self.workflow},{AGENT_SELECTOR}")
        except HarnessError as exc:
            self._problem(f"find agent pods: {exc.line()}")
            return
        for pod in pods:
            name = pod["metadata"]["name"]
            containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
            key = f"{name}/{self.container}"
            if self.container not in containers or key in self.streams:
                continue
            stream = _Stream(key)
            self.streams[key] = stream
            stream.thread = threading.Thread(target=self._read, args=(stream, name), daemon=True,
                                             name=f"kfpc-follow-{name}")
            stream.thread.start()
            stream.opened.wait(CONNECT_WAIT)

    def _read(self, stream: _Stream, pod: str) -> None:
        try:
            stream.response = self.kube.follow_log(self.namespace, pod, self.container, timeout=self.timeout)
        except HarnessError as exc:
            stream.error = exc.line()
            stream.opened.set()
            return
        stream.opened.set()
        try:
            for chunk in stream.response.stream(4096, decode_content=True):
                stream.chunks.append(chunk.decode("utf-8", errors="replace"))
        except Exception as exc:  # noqa: BLE001 - a closed or broken stream ends the follow, whatever the type
            if not stream.closed_by_us:
                stream.error = f"stream broke: {type(exc).__name__}"

    def _problem(self, line: str) -> None:
        if line not in self.problems:
            self.problems.append(line)

    def stop(self, grace: float = 5.0) -> dict[str, str]:
        """Wait up to `grace` seconds for streams to end (pods deleted at completion), close the rest."""
        for stream in self.streams.values():
            if stream.thread is not None:
                stream.thread.join(grace)
        for stream in self.streams.values():
            if stream.thread is not None and stream.thread.is_alive() and stream.response is not None:
                # shutting the socket down ends the blocked read at once (close() would wait for the reader)
                stream.closed_by_us = True
                sock = getattr(getattr(stream.response, "connection", None), "sock", None)
                with contextlib.suppress(OSError):
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                stream.thread.join(1.0)
            if stream.error:
                self._problem(f"follow {stream.key}: {stream.error}")
        return {key: "".join(s.chunks) for key, s in sorted(self.streams.items())}
