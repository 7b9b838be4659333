"""The harness's error tree. Every error names the problem and the fix, and renders as one line."""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input or an environment problem the user can fix. The CLI prints it as one line."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        # one line always: a YAML parser's or a server's multi-line message is folded, never printed as is
        problem, fix = (" ".join(str(text).split()) for text in (self.problem, self.fix))
        return f"{problem} ({fix})" if fix else problem


class ConfigError(HarnessError):
    """The variants/modes catalogue or a scenario file is invalid."""

    def __init__(self, path: str, problem: str, fix: str = "fix the file and run again") -> None:
        self.path = path
        super().__init__(f"{path}: {problem}", fix)


class SourceError(HarnessError):
    """A KFP source tree cannot be resolved (missing path, unknown ref, offline clone)."""


class RenderError(HarnessError):
    """kustomize could not render an overlay."""


class MissingBinaryError(HarnessError):
    """A required executable (kind, kubectl, git, docker) is not installed."""


class CommandFailedError(HarnessError):
    """A subprocess exited non-zero. argv and stderr are already redacted."""

    exit_code = 1

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str, fix: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no output"
        super().__init__(f"`{' '.join(argv[:4])}` exited {returncode}: {tail}", fix)


class CommandTimeoutError(HarnessError):
    exit_code = 1


class BundleError(HarnessError):
    """An evidence bundle is missing, invalid or of an unknown schema version."""


class ClusterError(HarnessError):
    """A cluster could not be created, reached or made ready."""

    exit_code = 1
