"""Start-up of the command line (issue 13: commands that need no Kubernetes client start in < 0.3 s; the
figures are in benchmarks/RESULTS.md). What is asserted here is the cause, in a fresh interpreter: a command
imports only its own module, and the usage still lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.cli.main import COMMANDS

NAMES = [module.rsplit(".", 1)[1] for module in COMMANDS]

_PROGRAM = """
import contextlib, io, json, sys
from harness.cli.main import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                  "modules": sorted(m for m in sys.modules if m.startswith(("harness.", "requests", "kubernetes")))}))
"""


def _run(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROGRAM, *argv], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_command_imports_only_its_own_command_module() -> None:
    matrix = _run("matrix")
    assert matrix["code"] == 0 and json.loads(matrix["out"])
    commands = {m for m in matrix["modules"] if m in COMMANDS}
    assert commands == {"harness.cli.matrix"}
    # the CI matrix is a plan of its own (harness.plan.matrix); the install plans, clusters and clients are not
    assert not [m for m in matrix["modules"] if m.startswith(("harness.plan.build", "harness.cluster", "harness.live",
                                                                "requests", "kubernetes"))]


def test_help_and_a_misspelt_command_still_list_every_command() -> None:
    usage = _run("--help")
    assert usage["code"] == 0 and all(name in usage["out"] for name in NAMES)
    misspelt = _run("statc")
    assert misspelt["code"] == 2
    assert misspelt["err"].count("\n") == 1 and all(f"'{name}'" in misspelt["err"] for name in NAMES)
