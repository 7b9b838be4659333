"""`run --fetch-tools`: the pinned kind release is downloaded and checked against its SHA-256. The release
server is faked over HTTP on 127.0.0.1 (the network is the boundary); the download and check are real."""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.cluster.tools import fetch_kind, platform_name
from harness.errors import MissingBinaryError

BINARY = b"#!/bin/sh\necho kind v0.31.0 fake\n"


@pytest.fixture
def release_server():
    files = {f"/v0.31.0/kind-{platform_name()}": BINARY,
             f"/v0.31.0/kind-{platform_name()}.sha256sum":
                 f"{hashlib.sha256(BINARY).hexdigest()}  kind-{platform_name()}\n".encode()}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_fetch_kind_fake_http_verifies_published_checksum_and_installs_once(release_server, tmp_path: Path) -> None:
    url, seen = release_server
    kind = fetch_kind("v0.31.0", tmp_path / "bin", base_url=url)
    assert kind.name == "kind" and kind.read_bytes() == BINARY and os.access(kind, os.X_OK)
    assert fetch_kind("v0.31.0", tmp_path / "bin", base_url=url) == kind
    assert len(seen) == 2  # the second call reuses the verified binary


def test_fetch_kind_fake_http_rejects_a_digest_that_differs_from_the_pin(release_server, tmp_path: Path) -> None:
    url, _ = release_server
    with pytest.raises(MissingBinaryError) as err:
        fetch_kind("v0.31.0", tmp_path / "bin", base_url=url, pinned_sha256={platform_name(): "0" * 64})
    assert "SHA-256" in err.value.line() and "discarded" in err.value.line()
    assert not (tmp_path / "bin").exists()


def test_fetch_kind_fake_http_unknown_release_is_one_line(release_server, tmp_path: Path) -> None:
    url, _ = release_server
    with pytest.raises(MissingBinaryError) as err:
        fetch_kind("v9.9.9", tmp_path / "bin", base_url=url)
    assert "cannot download kind v9.9.9" in err.value.line() and "\n" not in err.value.line()
