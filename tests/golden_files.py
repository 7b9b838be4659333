"""Golden-file comparison for plans: regenerate with KFPC_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KFPC_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with KFPC_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"plan differs from {path}; if intended, regenerate with KFPC_UPDATE_GOLDEN=1"
