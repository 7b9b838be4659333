"""The command-line layer: the only place that reads argv and the environment; one module per command."""

from harness.cli.main import main

__all__ = ["main"]
