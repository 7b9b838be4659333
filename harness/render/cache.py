"""Values pickled on disk, for caches whose file name already holds the key (a content digest).

Shared by the render cache (parsed manifests next to a render) and the compiled-workflow comparison
(canonical views of the goldens): warm runs skip YAML parsing, which dominates them.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def pickled(path: Path, build: Callable[[], T]) -> T:
    """The value pickled at `path`, or `build()` written there atomically; a torn or stale file is rebuilt.

    Only for the harness's own cache files: unpickling runs code, so never point it at someone else's file.
    """
    if path.is_file():
        try:
            return pickle.loads(path.read_bytes())  # noqa: S301 - our own cache, written below
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass  # stale or torn entry: rebuild it
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return value


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write `path` through a temporary file of this process and thread (renders run in threads, xdist workers
    in processes), then rename it: a concurrent reader sees a whole file or none."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
