"""The on-disk ownership ledger: which clusters this host's runs created, who holds them, what to clean.

An entry is written BEFORE `kind create` runs, so a crash at any point leaves a record that
`kfp-conformance clusters prune` can act on. The file is guarded by a `filelock` lock, which also makes
pytest-xdist workers share one cluster per (variant, mode): the first worker claims and creates it, the
others wait for `ready` and join as holders. `max_clusters` counts live clusters on the host under the
same lock (kind is unstable beyond about three per host).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.boundary.proc import kill_recorded, process_start_time
from harness.cluster.base import ClusterHandle
from harness.errors import ClusterError

CREATING, READY, DELETING = "creating", "ready", "deleting"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Claim:
    """What this process did in `acquire`, so cleanup deletes only what it created."""

    name: str = ""
    created: bool = False  # this process claimed the name and ran (or started) the create
    holding: bool = False  # this process is a holder of a ready cluster
    handle: ClusterHandle | None = None
    reused: bool = False
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class LedgerState:
    """The ledger file's two sections: clusters by name, and the child processes (pid -> record) a run started,
    so `clusters prune` can end what a SIGKILLed run left running."""

    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)


class Ledger:
    def __init__(self, path: Path, *, poll: float = 0.5,
                 notify: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.path) + ".lock")
        self.poll = poll
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.notify = notify

    # -- file ------------------------------------------------------------------------------------------
    def _load(self) -> LedgerState:
        """Both sections of the file as read now. A file that is not a ledger is set aside (never deleted: it may
        name clusters) with one line on stderr."""
        if not self.path.is_file():
            return LedgerState()
        try:
            text = self.path.read_text()
            data = json.loads(text) if text.strip() else {}
            clusters, processes = _checked(data)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.replace(aside)
            self.notify(f"warning: the cluster ledger {self.path} is not valid ({_short(exc)}); moved it to {aside} "
                        "and started a new one (`kfp-conformance clusters prune --unlisted` removes kfpc-* "
                        "clusters it named)")
            return LedgerState()
        return LedgerState(clusters, processes)

    def _save(self, state: LedgerState) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")  # unique: never a shared temp name
        doc = {"version": 1, "clusters": state.clusters, "processes": state.processes}
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)

    @contextmanager
    def _locked_state(self) -> Iterator[LedgerState]:
        """The whole file, read under the lock and written back when the block ends: nothing of it is kept
        between blocks, so every change starts from what other processes wrote."""
        with self.lock:
            state = self._load()
            yield state
            self._save(state)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        with self._locked_state() as state:
            yield state.clusters

    def entries(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return self._load().clusters

    def _alive(self, pid: int, entry: dict[str, Any]) -> bool:
        # A pid on another host (shared filesystem) cannot be checked: assume it is alive.
        return entry.get("host") != self.host or pid_alive(pid)

    def _prune_holders(self, entry: dict[str, Any]) -> None:
        entry["holders"] = [p for p in entry.get("holders", []) if self._alive(p, entry)]

    def abandoned(self, entry: dict[str, Any]) -> bool:
        """No live process holds or is creating/deleting this cluster."""
        self._prune_holders(entry)
        return not entry["holders"] and not self._alive(entry.get("owner", -1), entry)

    def _active(self, entry: dict[str, Any]) -> bool:
        self._prune_holders(entry)
        if entry["state"] in (CREATING, DELETING):
            return self._alive(entry.get("owner", -1), entry)
        return bool(entry["holders"])

    # -- acquire / release -------------------------------------------------------------------------------
    def acquire(self, name: str, *, claim: Claim, run_id: str, variant: str, mode: str, provider: str,
                create: Callable[[], ClusterHandle], max_clusters: int, wait_timeout: float,
                reuse: bool = False, progress: Callable[[str], None] = lambda _m: None) -> ClusterHandle:
        """Return a ready cluster for (variant, mode), creating it if no live process has."""
        deadline = time.monotonic() + wait_timeout
        said = ""
        while True:
            waiting = ""
            with self._locked() as clusters:
                if reuse:
                    name = self._reusable(clusters, name, variant, mode, provider)
                claim.name = name
                entry = clusters.get(name)
                if entry and entry["state"] == READY:
                    entry.setdefault("holders", []).append(self.pid)
                    self._prune_holders(entry)
                    claim.holding, claim.reused = True, entry.get("run_id") != run_id
                    claim.entry = dict(entry)
                    claim.handle = ClusterHandle(**entry["handle"])
                    return claim.handle
                if entry and self._alive(entry.get("owner", -1), entry):
                    waiting = f"cluster {name} is {entry['state']} by pid {entry['owner']}"
                else:
                    active = sum(1 for n, e in clusters.items() if n != name and self._active(e))
                    if active >= max_clusters:
                        waiting = f"{active} cluster(s) in use on this host (--max-clusters {max_clusters})"
                    else:
                        # Written before create: a crash from here on leaves a record for `clusters prune`.
                        clusters[name] = {
                            "name": name, "run_id": run_id, "variant": variant, "mode": mode,
                            "provider": provider, "state": CREATING, "owner": self.pid, "host": self.host,
                            "holders": [self.pid], "created_at": time.time(), "keep": False,
                            "stale_entry": bool(entry), "handle": None, "install_digest": "",
                        }
                        claim.created = True
                        break
            if time.monotonic() > deadline:
                raise ClusterError(f"waited {wait_timeout:.0f}s for a cluster: {waiting}",
                                   "raise --max-clusters, or run `kfp-conformance clusters prune` for leftovers")
            if waiting != said:
                progress(f"waiting: {waiting}")
                said = waiting
            time.sleep(self.poll)
        handle = create()  # outside the lock: other workers wait on the `creating` state, not the lock
        with self._locked() as clusters:
            entry = clusters.setdefault(name, {})
            entry.update(state=READY, handle=handle.to_dict())
            claim.handle, claim.holding, claim.entry = handle, True, dict(entry)
        return handle

    def _reusable(self, clusters: dict[str, dict[str, Any]], name: str, variant: str, mode: str,
                  provider: str) -> str:
        """The name of a ready cluster for the same pair kept by an earlier run, else `name`."""
        for other, entry in sorted(clusters.items()):
            if (entry.get("variant"), entry.get("mode"), entry.get("provider")) == (variant, mode, provider) \
                    and entry.get("state") == READY and (entry.get("keep") or self.abandoned(entry)):
                return other
        return name

    def record_install(self, name: str, digest: str) -> None:
        with self._locked() as clusters:
            if name in clusters:
                clusters[name]["install_digest"] = digest

    def release(self, name: str) -> int:
        """Drop this process as a holder; returns how many live holders remain."""
        with self._locked() as clusters:
            entry = clusters.get(name)
            if not entry:
                return 0
            entry["holders"] = [p for p in entry.get("holders", []) if p != self.pid]
            self._prune_holders(entry)
            return len(entry["holders"])

    def begin_delete(self, name: str) -> bool:
        """Mark a cluster as being deleted by this process, unless someone still holds it."""
        with self._locked() as clusters:
            entry = clusters.get(name)
            if entry is None:
                return True  # never recorded as ready (a create interrupted early): delete anyway
            self._prune_holders(entry)
            if [p for p in entry["holders"] if p != self.pid]:
                return False
            entry.update(state=DELETING, owner=self.pid, holders=[])
            return True

    def delete_failed(self, name: str, reason: str) -> None:
        """The delete did not finish: keep the entry (never erase what may still exist) for `clusters prune`."""
        with self._locked() as clusters:
            if name in clusters:
                clusters[name].update(state=DELETING, owner=-1, holders=[], delete_error=reason[:300])

    # -- child processes (recorded so `clusters prune` can end what a SIGKILLed run left running) -------
    def record_process(self, pid: int, argv: list[str]) -> None:
        with self._locked_state() as state:
            # drop records of processes that ended (their owner forgot them, or the pid is gone)
            ended = [k for k, v in state.processes.items() if v.get("host") == self.host and not pid_alive(int(k))]
            for key in ended:
                del state.processes[key]
            state.processes[str(pid)] = {"owner": self.pid, "host": self.host, "start": process_start_time(pid),
                                         "argv": " ".join(Path(argv[0]).name.split() + argv[1:3])}

    def forget_process(self, pid: int) -> None:
        with self._locked_state() as state:
            state.processes.pop(str(pid), None)

    def end_orphans(self) -> list[str]:
        """End recorded children whose harness process is gone (this host only); returns what was ended."""
        ended = []
        with self._locked_state() as state:
            for key, record in list(state.processes.items()):
                if record.get("host") != self.host or pid_alive(int(record.get("owner", -1))):
                    continue
                if kill_recorded(int(key), str(record.get("start", ""))):
                    ended.append(f"{key} ({record.get('argv', '')})")
                del state.processes[key]
        return ended

    def forget(self, name: str) -> None:
        with self._locked() as clusters:
            clusters.pop(name, None)

    def keep(self, name: str, reason: str) -> None:
        with self._locked() as clusters:
            if name in clusters:
                clusters[name].update(keep=True, kept_because=reason, holders=[],
                                      owner=-1 if clusters[name]["state"] == READY else clusters[name]["owner"])


def _checked(data: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The ledger's sections, or ValueError naming what is wrong (a hand edit, a truncated write)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    clusters, processes = data.get("clusters", {}), data.get("processes", {})
    if not isinstance(clusters, dict) or not isinstance(processes, dict):
        raise ValueError("`clusters`/`processes` are not objects")
    for name, entry in clusters.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("state"), str) \
                or not isinstance(entry.get("holders", []), list):
            raise ValueError(f"entry {name!r} is not a cluster record")
        entry.setdefault("holders", [])
        entry.setdefault("name", name)
    return clusters, {k: v for k, v in processes.items() if isinstance(v, dict) and str(k).isdigit()}


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
