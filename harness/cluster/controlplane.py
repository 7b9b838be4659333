"""The `controlplane` provider: a real Kubernetes control plane as local processes, without Docker.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on 127.0.0.1 (free ports), with
per-run certificates and service-account keys (`harness.cluster.pki`), `--authorization-mode=Node,RBAC`
and the default admission plugins plus NodeRestriction, as kubeadm (and so kind) configures the apiserver
(kubernetes cmd/kubeadm/app/phases/controlplane/manifests.go @v1.34.0, getAPIServerCommand). There are no
kubelets: kwok (sigs.k8s.io/kwok v0.7.0) plays one fake Node and gives scheduled pods a Running/Ready
status with its default "fast" stages (kwok pkg/kwok/cmd/root.go, getDefaultPodStages), so Deployments
become Available; no container ever runs. PersistentVolumeClaims are bound by the real PV controller to
hostPath PersistentVolumes we pre-create (kind has a local-path provisioner instead; nothing is written).

Binaries come from `scripts/controlplane-build.sh` (built from Go modules into a cache) or a user directory
(`KFPC_CONTROLPLANE_BIN_DIR`, or envtest's `KUBEBUILDER_ASSETS`). State (certificates, admin kubeconfig,
etcd data, logs, pids) lives under the cache, never under out/. Processes are stopped on exit, error and
signal (the caller's `finally`), die with their parent (PR_SET_PDEATHSIG), and are listed by pid in
`processes.json` so `kfp-conformance clusters prune` can stop them after a crash.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cluster.base import ClusterHandle
from harness.cluster.pki import SERVICE_CIDR, Pki, write_pki
from harness.errors import ClusterError, MissingBinaryError

if TYPE_CHECKING:  # imported where a plane is started: ~70 ms that `--help` and `run --plan` never need
    import requests

K8S_VERSION = "v1.34.0"  # kindest/node pinned in fixtures/variants.yaml (live.node_image)
REQUIRED = ("etcd", "kube-apiserver")
OPTIONAL = ("kube-controller-manager", "kube-scheduler", "kwok")
BUILD_FIX = "run `bash scripts/controlplane-build.sh` (builds them once into the cache), " \
            "or set KFPC_CONTROLPLANE_BIN_DIR to a directory holding them"
KWOK_NODE = "kfpc-kwok-node"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
PERSISTENT_VOLUMES = 12  # enough for every PVC of a KFP install with prerequisites


def _cache_root(env: dict[str, str]) -> Path:
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-conformance" / "controlplane"


def binary_dir(env: dict[str, str] | None = None) -> Path:
    """A user directory (KFPC_CONTROLPLANE_BIN_DIR, KUBEBUILDER_ASSETS) or the build script's cache."""
    env = dict(env or {})  # the caller passes its environment (the library never reads it)
    explicit = env.get("KFPC_CONTROLPLANE_BIN_DIR") or env.get("KUBEBUILDER_ASSETS")
    if explicit:
        return Path(explicit)
    return Path(env.get("KFPC_CP_CACHE") or _cache_root(env)) / env.get("KFPC_CP_K8S_VERSION", K8S_VERSION) / "bin"


def find_binaries(env: dict[str, str] | None = None) -> dict[str, Path]:
    """Name -> executable for every component present; a missing etcd or kube-apiserver is one clear error."""
    directory = binary_dir(env)
    found = {n: directory / n for n in (*REQUIRED, *OPTIONAL)
             if (directory / n).is_file() and os.access(directory / n, os.X_OK)}
    missing = [n for n in REQUIRED if n not in found]
    if missing:
        raise MissingBinaryError(f"control-plane binaries missing in {directory}: {', '.join(missing)}", BUILD_FIX)
    return found


def state_root(env: dict[str, str] | None = None) -> Path:
    env = dict(env or {})  # the caller passes its environment (the library never reads it)
    return Path(env.get("KFPC_CONTROLPLANE_STATE") or _cache_root(env) / "clusters")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Child side of Popen: SIGTERM this process when the harness process dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def stop_recorded(directory: Path, timeout: float = 15) -> list[str]:
    """Stop the processes `processes.json` lists, in reverse start order; only pids whose command line
    is still the recorded executable (a recycled pid is never signalled). Returns the stopped names."""
    record = directory / "processes.json"
    if not record.is_file():
        return []
    entries = json.loads(record.read_text())
    stopped = []
    for entry in reversed(entries):
        pid = int(entry["pid"])
        if _cmdline(pid)[:1] != [entry["exe"]]:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _cmdline(pid)[:1] == [entry["exe"]]:
            time.sleep(0.1)
        if _cmdline(pid)[:1] == [entry["exe"]]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stopped.append(entry["name"])
    return stopped


@dataclass
class ControlPlane:
    """One running control plane. Use as a context manager (or call start/stop)."""

    name: str
    directory: Path
    binaries: dict[str, Path]
    progress: Callable[[str], None] = lambda _line: None
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    pki: Pki | None = None
    not_started: dict[str, str] = field(default_factory=dict)  # optional component -> why it is not running
    timings: dict[str, float] = field(default_factory=dict)
    _client: requests.Session | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> str:
        assert self.pki is not None
        return self.pki.kubeconfig("admin")

    def handle(self) -> ClusterHandle:
        return ClusterHandle(name=self.name, provider="controlplane", kubeconfig=self.kubeconfig, context=self.name)

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> ClusterHandle:
        begin = time.monotonic()
        if self.directory.exists():
            stop_recorded(self.directory)
            shutil.rmtree(self.directory)
        (self.directory / "logs").mkdir(parents=True, mode=0o700)
        self.ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "controller-manager",
                                                     "scheduler", "kwok")}
        self.pki = write_pki(self.directory / "pki", self.server, self.name)
        self._etcd()
        self._apiserver()
        self._wait(lambda: self._get("/readyz").status_code == 200, timeout, "kube-apiserver /readyz")
        self.timings["apiserver-ready"] = time.monotonic() - begin
        self._controllers()
        # The Node and the PVs are created while the controllers start (each waits for the apiserver only), so
        # the waits below overlap with kwok taking the Node and the controller manager starting.
        if "kwok" in self.binaries:
            self._post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": KWOK_NODE, "annotations": {KWOK_ANNOTATION: "fake"},
                "labels": {"kubernetes.io/hostname": KWOK_NODE, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok"}}})
        self._persistent_volumes()
        if "kube-controller-manager" in self.binaries:
            # the ServiceAccount controller made `default/default`: the controller manager works (its shared
            # informers start only once every controller has started: Run in
            # cmd/kube-controller-manager/app/controllermanager.go @v1.34.0)
            self._wait(lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
                       timeout, "ServiceAccount default/default (kube-controller-manager)")
        if "kwok" in self.binaries:
            self._wait(self._node_ready, timeout, f"Node {KWOK_NODE} Ready (kwok)")
        self.timings["ready"] = time.monotonic() - begin
        self.progress(f"[{self.name}] control plane ready at {self.server} in {self.timings['ready']:.1f}s"
                      + (f" (not started: {', '.join(self.not_started)})" if self.not_started else ""))
        return self.handle()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.directory / "logs" / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603
                                   start_new_session=True, preexec_fn=_die_with_parent, cwd=self.directory)
        log.close()
        self.processes.append((name, process))
        record = [{"name": n, "pid": p.pid, "exe": str(p.args[0])} for n, p in self.processes]  # type: ignore[index]
        (self.directory / "processes.json").write_text(json.dumps(record, indent=2) + "\n")

    def _etcd(self) -> None:
        client, peer = self.ports["etcd"], self.ports["etcd-peer"]
        # Plain HTTP on loopback only; --unsafe-no-fsync because the data is thrown away with the run.
        self._spawn("etcd", [str(self.binaries["etcd"]), "--name", "default",
                             "--data-dir", str(self.directory / "etcd"),
                             "--listen-client-urls", f"http://127.0.0.1:{client}",
                             "--advertise-client-urls", f"http://127.0.0.1:{client}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}",
                             "--unsafe-no-fsync", "--log-level", "warn"])

    def _apiserver(self) -> None:
        assert self.pki is not None
        p = self.pki.path
        # The flags kubeadm sets (getAPIServerCommand @v1.34.0), minus kubelet/front-proxy ones (no kubelets,
        # no aggregated API servers). Admission: the defaults (pkg/kubeapiserver/options/plugins.go
        # DefaultOffAdmissionPlugins is what stays off) plus NodeRestriction, exactly kubeadm's flag.
        self._spawn("kube-apiserver", [
            str(self.binaries["kube-apiserver"]),
            "--etcd-servers", f"http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.ports["apiserver"]),
            "--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
            "--client-ca-file", p("ca.crt"),
            "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
            "--allow-privileged=true", "--enable-bootstrap-token-auth=true",
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key"),
            # The `kubernetes` Service endpoint would be 127.0.0.1, which Endpoints validation rejects
            # (loopback); nothing runs in-cluster here, so the endpoint reconciler is off.
            "--endpoint-reconciler-type=none", "--profiling=false", "--v", "1",
        ])

    def _controllers(self) -> None:
        assert self.pki is not None
        p, kc = self.pki.path, self.pki.kubeconfig
        if "kube-controller-manager" in self.binaries:
            # As kubeadm: every controller under its own ServiceAccount, CSR signing by the cluster CA.
            self._spawn("kube-controller-manager", [
                str(self.binaries["kube-controller-manager"]),
                "--kubeconfig", kc("controller-manager"), "--authentication-kubeconfig", kc("controller-manager"),
                "--authorization-kubeconfig", kc("controller-manager"),
                "--bind-address", "127.0.0.1", "--secure-port", str(self.ports["controller-manager"]),
                "--cert-dir", p("controller-manager-serving"),
                "--client-ca-file", p("ca.crt"), "--root-ca-file", p("ca.crt"),
                "--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
                "--service-account-private-key-file", p("sa.key"), "--use-service-account-credentials=true",
                "--controllers", "*,bootstrapsigner,tokencleaner", "--leader-elect=false", "--v", "1",
                # Not kubeadm's (it keeps the default 20 QPS / burst 30, pkg/controller/apis/config/v1alpha1/
                # defaults.go @v1.34.0): with --use-service-account-credentials each controller's ServiceAccount
                # GET/create and TokenRequest go through one shared client (createClientBuilders in
                # cmd/kube-controller-manager/app/controllermanager.go; k8s.io/controller-manager@v0.34.0
                # pkg/clientbuilder/client_builder_dynamic.go), which at 20 QPS spaces the ~40 controllers
                # ~0.15 s apart: 6-7 s of start-up, 1 s with this limit. Only the client's pace changes.
                "--kube-api-qps", "200", "--kube-api-burst", "400",
            ])
        else:
            self.not_started["kube-controller-manager"] = "binary missing: no ReplicaSets, pods or PVC binding"
        if "kube-scheduler" in self.binaries:
            self._spawn("kube-scheduler", [
                str(self.binaries["kube-scheduler"]),
                "--kubeconfig", kc("scheduler"), "--authentication-kubeconfig", kc("scheduler"),
                "--authorization-kubeconfig", kc("scheduler"),
                "--bind-address", "127.0.0.1", "--secure-port", str(self.ports["scheduler"]),
                "--cert-dir", p("scheduler-serving"), "--leader-elect=false", "--v", "1",
            ])
        else:
            self.not_started["kube-scheduler"] = "binary missing: pods are never bound to a node"
        if "kwok" in self.binaries:
            self._spawn("kwok", [
                str(self.binaries["kwok"]), "--kubeconfig", kc("kwok"),
                "--manage-nodes-with-annotation-selector", f"{KWOK_ANNOTATION}=fake",
                "--server-address", f"127.0.0.1:{self.ports['kwok']}", "--node-ip", "127.0.0.1",
                "--cidr", "10.244.0.0/16", "--node-lease-duration-seconds", "40",
            ])
        else:
            self.not_started["kwok"] = "binary missing: no node, pods never become Ready"

    def _persistent_volumes(self) -> None:
        """hostPath PVs with no class: a PVC without storageClassName binds to one (the cluster has no default
        StorageClass, so DefaultStorageClass admission leaves it empty; pkg/controller/volume/persistentvolume)."""
        for number in range(PERSISTENT_VOLUMES):
            self._post("/api/v1/persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"kfpc-pv-{number:02d}", "labels": {"app.kubernetes.io/managed-by": "kfp-conformance"}},
                "spec": {"capacity": {"storage": "100Gi"}, "storageClassName": "",
                         "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": f"/nonexistent/kfpc-pv-{number:02d}"}}})

    # -- API helpers (the admin client certificate; kubectl is for the harness's own steps) --------------
    def _session(self) -> requests.Session:
        """One keep-alive session until `stop` (not a TLS handshake per poll and per PV)."""
        import requests

        assert self.pki is not None
        if self._client is None:
            self._client = requests.Session()
            # No proxies, and REQUESTS_CA_BUNDLE must not override our CA (requests lets the environment win
            # over Session.verify unless trust_env is off)
            self._client.trust_env = False
            self._client.cert = (self.pki.path("admin.crt"), self.pki.path("admin.key"))
            self._client.verify = self.pki.ca
        return self._client

    def _get(self, path: str) -> requests.Response:
        return self._session().get(self.server + path, timeout=10)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        answer = self._session().post(self.server + path, json=body, timeout=30)
        if answer.status_code not in (200, 201, 409):
            raise ClusterError(f"[{self.name}] POST {path} answered {answer.status_code}: {answer.text[:200]}",
                               f"see the logs in {self.directory / 'logs'}")

    def _node_ready(self) -> bool:
        answer = self._get(f"/api/v1/nodes/{KWOK_NODE}")
        conditions = answer.json().get("status", {}).get("conditions", []) if answer.status_code == 200 else []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes if p.poll() is not None]
            if dead:
                tail = self.log_tail(dead[0])
                raise ClusterError(f"[{self.name}] {dead[0]} exited while waiting for {what}: {tail}",
                                   f"see {self.directory / 'logs' / (dead[0] + '.log')}")
            try:
                if ready():
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)  # each poll is one GET on a keep-alive connection
        raise ClusterError(f"[{self.name}] {what} not ready after {timeout:.0f}s",
                           f"see the logs in {self.directory / 'logs'}")

    def log_tail(self, name: str) -> str:
        path = self.directory / "logs" / f"{name}.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
        return lines[-1][:300] if lines else "no output"

    # -- stop ------------------------------------------------------------------------------------------
    def stop(self, timeout: float = 15) -> None:
        """Stop every process in reverse order: SIGTERM, then SIGKILL after `timeout`."""
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
        self.processes.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        record = self.directory / "processes.json"
        if record.is_file():
            record.unlink()


class ControlPlaneProvider:
    """`--provider controlplane`: clusters are local control planes, one per name, owned by this process."""

    name = "controlplane"
    owns_clusters = True

    def __init__(self, *, env: dict[str, str] | None = None,
                 progress: Callable[[str], None] = lambda _line: None) -> None:
        self.env = dict(env or {})  # the caller passes its environment (the library never reads it)
        self.progress = progress
        self.running: dict[str, ControlPlane] = {}

    def directory(self, name: str) -> Path:
        return state_root(self.env) / name

    def handle(self, name: str, kubeconfig: str = "") -> ClusterHandle:
        return ClusterHandle(name=name, provider=self.name, kubeconfig=str(self.directory(name) / "pki" / "admin.kubeconfig"),
                             context=name)

    def create(self, name: str, timeout: float = 180) -> ClusterHandle:
        plane = ControlPlane(name, self.directory(name), find_binaries(self.env), self.progress)
        self.running[name] = plane
        try:
            return plane.start(timeout)
        except BaseException:
            self.delete(name)
            raise

    def delete(self, name: str, timeout: int = 300) -> None:
        """Stop the processes (ours, or a crashed run's from processes.json) and remove the state."""
        plane = self.running.pop(name, None)
        if plane is not None:
            plane.stop()
        directory = self.directory(name)
        stop_recorded(directory)
        if directory.is_dir():
            shutil.rmtree(directory, ignore_errors=True)

    def export_logs(self, name: str, dest: Path) -> Path | None:
        logs = self.directory(name) / "logs"
        if not logs.is_dir():
            return None
        shutil.copytree(logs, dest, dirs_exist_ok=True)
        return dest

    def list_owned(self) -> list[str]:
        root = state_root(self.env)
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    @contextmanager
    def cluster(self, name: str, timeout: float = 180) -> Iterator[ControlPlane]:
        """A started control plane, stopped and removed on any exit (error, KeyboardInterrupt, SIGTERM raised
        as an exception by `harness.live.session.signals_as_exceptions`)."""
        try:
            self.create(name, timeout)
            yield self.running[name]
        finally:
            self.delete(name)
