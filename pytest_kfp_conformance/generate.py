"""Live test parameters come from the selection (`--kfpc-config`, `--kfpc-variant`, `--kfpc-mode`), never
from a config loaded at import or from hard-coded variant names.

- `kfpc_cluster` x `live_scenario`: every selected (variant, mode) pair x every catalogue scenario;
- `kfpc_cluster` for security: the selected pairs whose mode is multi-user or TLS (the probes' modes);
- `migration_move`: (from, to, mode) for every selected pair of variants whose driver kinds allow an in-place
  move (harness.plan.migration.check_movable), in the selected modes other than TLS.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import HarnessError


def selected_pairs(selection: Any) -> list[str]:
    return [f"{v.name}.{m.name}" for v in selection.variants for m in selection.modes]


def migration_moves(selection: Any) -> list[tuple[str, str, str]]:
    from harness.plan.migration import check_movable

    old = selection.config.variant(selection.baseline)  # the deployed baseline; --rollback covers the reverse
    moves = []
    for new in selection.variants:
        try:
            check_movable(old, new)
        except HarnessError:
            continue
        moves += [(old.name, new.name, m.name) for m in selection.modes if not m.tls]
    return moves


def generate_live(metafunc: pytest.Metafunc, selection: Any) -> None:
    """Expand a test marked `kfpc_live("scenarios" | "security" | "migration")` over the selection."""
    marker = metafunc.definition.get_closest_marker("kfpc_live")
    what = marker.args[0] if marker and marker.args else ""
    if what == "scenarios":
        from harness.catalogue import scenarios as catalogue

        names = sorted(s.name for s in catalogue.discover(modes=[m.name for m in selection.modes]))
        metafunc.parametrize("kfpc_cluster", selected_pairs(selection), indirect=True)
        metafunc.parametrize("live_scenario", names)
    elif what == "security":
        pairs = [f"{v.name}.{m.name}" for v in selection.variants for m in selection.modes if m.multi_user or m.tls]
        metafunc.parametrize("kfpc_cluster", pairs, indirect=True)
    elif what == "migration":
        moves = migration_moves(selection)
        metafunc.parametrize("migration_move", moves, ids=[f"{a}-to-{b}-{m}" for a, b, m in moves])
