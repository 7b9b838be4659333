"""Fake `kind`, `kubectl` and `docker` executables for tests at the process boundary (no pytest import).

`write_fake_bins(directory)` writes Python scripts (shebang: this interpreter) that:
- append {"tool", "argv", "pid"} as one JSON line to the file in env KFPC_FAKE_LOG;
- keep cluster/registry/image state in the JSON file in env KFPC_FAKE_STATE (under an fcntl lock);
- obey knobs from the environment:
  KFPC_FAKE_DOCKER_DAEMON=0        `docker info` fails like a missing daemon
  KFPC_FAKE_CREATE_SLEEP=SECONDS   `kind create cluster` registers the cluster, then sleeps, then writes the kubeconfig
  KFPC_FAKE_WAIT_TIMEOUT=SUBSTR    `kubectl wait` / `rollout status` whose argv contains SUBSTR times out (exit 1)
  KFPC_FAKE_NOT_READY=POD[,POD]    `kubectl get pods -o json` lists these pods as not ready (CrashLoopBackOff)
  KFPC_FAKE_FAIL=SUBSTR            any command whose joined argv contains SUBSTR exits 1 with an error
  KFPC_FAKE_TOKEN=VALUE            `kubectl create token` prints VALUE (canary tests)
  KFPC_FAKE_SERVER=URL             server written into kubeconfigs (e.g. a fake API on 127.0.0.1)
`kubectl port-forward` and `kubectl exec` are handed to `harness.testing.fakekubectl`, which talks to the
fake API server of `harness.testing.fakeapi` named in the kubeconfig.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

TOOLS = ("kind", "kubectl", "docker")

_SCRIPT = r'''
import fcntl, json, os, sys, time
from pathlib import Path

TOOL = __TOOL__
argv = sys.argv[1:]
joined = " ".join(argv)


def log():
    path = os.environ.get("KFPC_FAKE_LOG")
    if not path:
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"tool": TOOL, "argv": argv, "pid": os.getpid(), "cwd": os.getcwd()}) + "\n")


class State:
    def __enter__(self):
        path = os.environ.get("KFPC_FAKE_STATE") or os.devnull
        self.fh = open(path, "a+")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        self.fh.seek(0)
        text = self.fh.read()
        self.data = json.loads(text) if text.strip() else {}
        self.data.setdefault("clusters", {})
        self.data.setdefault("images", [])
        self.data.setdefault("loaded", [])
        self.data.setdefault("registry", False)
        return self.data

    def __exit__(self, *exc):
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(json.dumps(self.data, indent=1, sort_keys=True))
        self.fh.flush()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def opt(name, default=None):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def kubeconfig_text(name):
    server = os.environ.get("KFPC_FAKE_SERVER", "https://127.0.0.1:6443")
    ctx = "kind-" + name
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": ctx,
        "clusters": [{"name": ctx, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": ctx, "user": {"token": "fake-admin-token-not-secret"}}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
    })


def kind():
    if argv[:2] == ["create", "cluster"]:
        name = opt("--name", "kind")
        with State() as s:
            if name in s["clusters"]:
                fail(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"')
            s["clusters"][name] = {"state": "creating", "config": opt("--config"), "pid": os.getpid()}
        time.sleep(float(os.environ.get("KFPC_FAKE_CREATE_SLEEP", "0")))
        kc = opt("--kubeconfig")
        if kc:
            Path(kc).parent.mkdir(parents=True, exist_ok=True)
            Path(kc).write_text(kubeconfig_text(name))
        with State() as s:
            if name in s["clusters"]:
                s["clusters"][name]["state"] = "ready"
        sys.stderr.write(f"Creating cluster \"{name}\" ...\n")
    elif argv[:2] == ["delete", "cluster"]:
        name = opt("--name", "kind")
        with State() as s:
            s["clusters"].pop(name, None)
        sys.stderr.write(f"Deleting cluster \"{name}\" ...\n")
    elif argv[:2] == ["get", "clusters"]:
        with State() as s:
            names = sorted(s["clusters"])
        if not names:
            sys.stderr.write("No kind clusters found.\n")
        print("\n".join(names))
    elif argv[:2] == ["export", "logs"]:
        dest = Path(argv[2])
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "kind-version.txt").write_text("kind fake\n")
        print(str(dest))
    elif argv[:2] == ["export", "kubeconfig"]:
        kc = opt("--kubeconfig")
        Path(kc).parent.mkdir(parents=True, exist_ok=True)
        Path(kc).write_text(kubeconfig_text(opt("--name", "kind")))
    elif argv[:2] == ["load", "docker-image"]:
        with State() as s:
            s["loaded"].append([opt("--name", "kind"), argv[2]])
    elif argv[:1] == ["version"]:
        print("kind v0.31.0 go1.24 linux/amd64 (fake)")
    else:
        fail("fake kind: unsupported " + joined, 2)


def pods_json():
    not_ready = [p for p in os.environ.get("KFPC_FAKE_NOT_READY", "").split(",") if p]
    names = ["ml-pipeline-7d9f-abcde", "workflow-controller-5c6d-fghij", "mysql-0", "seaweedfs-0"] + not_ready
    items = []
    for name in names:
        bad = name in not_ready
        items.append({
            "metadata": {"name": name, "namespace": opt("-n", "kubeflow")},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False" if bad else "True"}],
                "containerStatuses": [{"name": "main", "ready": not bad, "state": (
                    {"waiting": {"reason": "CrashLoopBackOff"}} if bad else {"running": {}})}],
            },
        })
    return {"kind": "List", "items": items}


def kubectl():
    # strip option values of global flags
    skip = set()
    for i, a in enumerate(argv):
        if a in ("--kubeconfig", "--context", "-n", "--namespace", "-f", "-k", "-o", "-l", "--field-manager",
                 "--for", "--timeout", "--sort-by", "--tail", "--audience", "--duration", "--selector"):
            skip.add(i + 1)
    words = [a for i, a in enumerate(argv) if i not in skip and not a.startswith("-")]
    verb = words[0] if words else ""
    target = os.environ.get("KFPC_FAKE_WAIT_TIMEOUT")
    if verb in ("wait", "rollout") and target and target in joined:
        fail(f"error: timed out waiting for the condition on {words[-1] if words else 'resource'}")
    if verb == "apply":
        print("applied (fake) " + (opt("-f") or opt("-k") or ""))
    elif verb == "wait":
        print(" ".join(words[1:]) + " condition met")
    elif verb == "rollout":
        print(f"{words[-1]} successfully rolled out")
    elif verb == "get" and "pods" in words[1:2] and opt("-o") == "json":
        print(json.dumps(pods_json()))
    elif verb == "get":
        print("NAME   READY   STATUS\nfake   1/1     Running")
    elif verb == "describe":
        print("Name: " + (words[1] if len(words) > 1 else "") + "\nEvents: <fake>")
    elif verb == "logs":
        print("fake log line for " + " ".join(words[1:]))
        if os.environ.get("KFPC_FAKE_TOKEN"):  # a component that logs its auth header (canary tests)
            print("calling ml-pipeline with Authorization: Bearer " + os.environ["KFPC_FAKE_TOKEN"])
    elif verb == "version":
        print(json.dumps({"clientVersion": {"gitVersion": "v1.34.0-fake"}, "serverVersion": {"gitVersion": "v1.34.0"}}))
    elif verb == "create" and words[1:2] == ["token"]:
        print(os.environ.get("KFPC_FAKE_TOKEN", "fake-token-value"))
    elif verb == "cluster-info":
        print("Kubernetes control plane is running at https://127.0.0.1:6443")
    elif verb in ("port-forward", "exec"):
        # talk to the fake API server (harness.testing.fakeapi) through RUNS' fake kubectl
        os.environ.setdefault("KFPC_FAKE_KUBECTL_LOG", os.environ.get("KFPC_FAKE_LOG", os.devnull) + ".api")
        os.execv(sys.executable, [sys.executable, "-m", "harness.testing.fakekubectl", *argv])
    else:
        print("ok (fake kubectl " + verb + ")")


def docker():
    if argv[:1] == ["info"]:
        if os.environ.get("KFPC_FAKE_DOCKER_DAEMON", "1") == "0":
            fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
        print("27.0.0-fake")
    elif argv[:1] == ["run"]:
        with State() as s:
            if s["registry"]:
                fail('docker: Error response from daemon: Conflict. The container name "/kind-registry" is already in use')
            s["registry"] = True
        print("0123456789ab")
    elif argv[:2] == ["network", "connect"]:
        print("")
    elif argv[:1] == ["tag"] or argv[:1] == ["pull"]:
        print("")
    elif argv[:1] == ["build"]:
        # a real build reads its context; the fake checks the plan wrote it (cwd is the run's out dir)
        if not os.path.isfile(os.path.join(argv[-1], "Dockerfile")):
            fail(f"fake docker: unable to prepare context: {argv[-1]}/Dockerfile not found", 1)
        print("Successfully built fake")
    elif argv[:1] == ["push"]:
        with State() as s:
            s["images"].append(argv[1])
    elif argv[:2] == ["image", "inspect"]:
        print("[]")
    elif argv[:1] in (["exec"], ["rm"], ["inspect"]):
        print("")
    else:
        fail("fake docker: unsupported " + joined, 2)


log()
failing = os.environ.get("KFPC_FAKE_FAIL")
if failing and failing in f"{TOOL} {joined}":
    fail(f"fake {TOOL}: forced failure for {failing!r}")
{"kind": kind, "kubectl": kubectl, "docker": docker}[TOOL]()
'''


def write_fake_bins(directory: Path, tools: tuple[str, ...] = TOOLS) -> Path:
    """Write the fake executables into `directory` (created) and return it; put it first on PATH."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        path = directory / tool
        path.write_text(f"#!{sys.executable}\n" + _SCRIPT.replace("__TOOL__", repr(tool)))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def fake_env(bin_dir: Path, log: Path, state: Path, **knobs: str) -> dict[str, str]:
    """Environment for a process that must find the fakes first on PATH (knobs: KFPC_FAKE_* values)."""
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "KFPC_FAKE_LOG": str(log),
           "KFPC_FAKE_STATE": str(state)}
    env.update(knobs)
    return env


def read_calls(log: Path) -> list[dict[str, Any]]:
    if not Path(log).is_file():
        return []
    return [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]


def read_state(state: Path) -> dict[str, Any]:
    text = Path(state).read_text() if Path(state).is_file() else ""
    return json.loads(text) if text.strip() else {"clusters": {}, "images": [], "loaded": [], "registry": False}
