"""A fake `kubectl` for the two verbs the live tier needs beyond the API: `port-forward` and `exec`.

Installed on PATH by `install_fake_kubectl(bin_dir)`; it appends each argv to `<bin_dir>/kubectl.calls.jsonl`
and reads the fake cluster (harness.testing.fakeapi) through the server in `--kubeconfig`:
- `port-forward -n NS svc/NAME :PORT --address 127.0.0.1` prints kubectl's "Forwarding from" line and relays
  TCP to the fake KFP API until killed (TLS passes through untouched).
- `exec -n NS POD -c CONTAINER -- sh -c SCRIPT` runs SCRIPT with /kfp/log pointing at a temp directory that
  holds the container's fake files, so the real script is exercised.
Anything else exits 1 with a message, like an unsupported flag would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import yaml


def install_fake_kubectl(bin_dir: Path) -> Path:
    """Write an executable `kubectl` into bin_dir that runs this module with the current interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "kubectl"
    calls = bin_dir / "kubectl.calls.jsonl"
    script.write_text(f"#!/bin/sh\nKFPC_FAKE_KUBECTL_LOG='{calls}' exec '{sys.executable}' "
                      "-m harness.testing.fakekubectl \"$@\"\n")
    script.chmod(0o755)
    return script


def recorded_calls(bin_dir: Path) -> list[list[str]]:
    log = bin_dir / "kubectl.calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _flag(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _server(argv: list[str]) -> str:
    config = yaml.safe_load(Path(_flag(argv, "--kubeconfig") or os.environ["KUBECONFIG"]).read_text())
    return config["clusters"][0]["cluster"]["server"]


def _fake(argv: list[str], path: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{_server(argv)}{path}?{urlencode(query)}", timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def _relay(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def port_forward(argv: list[str]) -> int:
    namespace = _flag(argv, "-n", "--namespace") or "default"
    target = next(a for a in argv if a.startswith("svc/"))
    remote_port = next(a for a in argv if a.startswith(":") or a.split(":")[-1].isdigit() and ":" in a).split(":")[-1]
    answer = _fake(argv, "/_fake/forward", namespace=namespace, service=target[4:])
    if not answer.get("url"):
        print(f'error: services "{target[4:]}" not found', file=sys.stderr)
        return 1
    upstream = urlsplit(answer["url"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> {remote_port}", flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection((upstream.hostname, upstream.port))
        threading.Thread(target=_relay, args=(client, server), daemon=True).start()
        threading.Thread(target=_relay, args=(server, client), daemon=True).start()


def exec_(argv: list[str]) -> int:
    namespace = _flag(argv, "-n", "--namespace") or "default"
    container = _flag(argv, "-c", "--container") or ""
    command = argv[argv.index("--") + 1:]
    before = argv[argv.index("exec") + 1:argv.index("--")]
    skip = {i + 1 for i, a in enumerate(before) if a in ("-n", "--namespace", "-c", "--container")}
    pod = next(a for i, a in enumerate(before) if i not in skip and not a.startswith("-"))
    files = _fake(argv, "/_fake/files", namespace=namespace, pod=pod, container=container)
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            (Path(root) / name).write_text(text)
        command = [part.replace("/kfp/log", root) for part in command]
        return subprocess.run(command, check=False).returncode  # noqa: S603


def main(argv: list[str]) -> int:
    record = Path(os.environ.get("KFPC_FAKE_KUBECTL_LOG") or "")
    if record.name:
        with record.open("a") as handle:
            handle.write(json.dumps(argv) + "\n")
    if "port-forward" in argv:
        return port_forward(argv)
    if "exec" in argv:
        return exec_(argv)
    print(f"fake kubectl: unsupported command {argv[:3]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
