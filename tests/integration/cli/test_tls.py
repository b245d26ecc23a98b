"""kmeshctl over https: certificates are verified unless ``--skip-verify`` is given.

kmesh-cp's API does not serve TLS itself yet, so the test puts a TLS-terminating relay with a
self-signed certificate in front of a real kmesh-cp; everything behind the relay is the real thing.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kmesh.pki import generate_self_signed_server_cert


def _read_request(conn: ssl.SSLSocket) -> bytes:
    """One whole HTTP request (headers and Content-Length body); urllib sends ``Connection: close``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class TlsFront:
    """Accepts TLS on a free loopback port and relays each request, in plaintext, to ``upstream_port``.

    One thread per connection handles it start to finish (read request, forward, copy the response back),
    so an SSL socket is never used from two threads at once.
    """

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(worker)
            worker.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                request = _read_request(conn)
                with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
                    upstream.sendall(request)
                    while chunk := upstream.recv(65536):
                        conn.sendall(chunk)
        except OSError:
            # The client refused our certificate or went away: that is what some tests expect.
            raw.close()

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept(); shutdown() does (on Linux).
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=10)


@pytest.fixture
def tls_front(cp, tmp_path) -> Iterator[TlsFront]:
    cert_pem, key_pem = generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    front = TlsFront(cp.api_port, cert, key)
    yield front
    front.close()


def test_self_signed_certificate_is_refused_without_skip_verify(tls_front, kmeshctl, config_file) -> None:
    address = f"https://127.0.0.1:{tls_front.port}"
    result = kmeshctl("config", "control-planes", "add", "--name", "tls", "--address", address)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: could not reach the control plane at {address}: ")
    assert "self-signed certificate" in result.stderr
    assert result.stderr.endswith("use --skip-verify to accept its certificate\n")
    assert not config_file.exists()


def test_skip_verify_is_stored_and_used(tls_front, kmeshctl, config_file) -> None:
    address = f"https://127.0.0.1:{tls_front.port}"
    added = kmeshctl(
        "config", "control-planes", "add", "--name", "tls", "--address", address, "--skip-verify"
    )
    assert added.returncode == 0, added.stderr
    assert yaml.safe_load(config_file.read_text())["controlPlanes"] == [
        {"name": "tls", "address": address, "skipVerify": True}
    ]
    # Later commands use the stored setting without the flag.
    applied = kmeshctl("apply", "-f", "-", stdin="type: Mesh\nname: over-tls\n")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == 'Mesh "over-tls" created\n'
    got = kmeshctl("get", "mesh", "over-tls", "-o", "yaml")
    assert yaml.safe_load(got.stdout)["name"] == "over-tls"


def test_cp_address_with_skip_verify_flag(tls_front, kmeshctl) -> None:
    address = f"https://127.0.0.1:{tls_front.port}"
    refused = kmeshctl("get", "meshes", "--cp-address", address)
    assert refused.returncode == 1
    assert "certificate verify failed" in refused.stderr or "self-signed" in refused.stderr
    accepted = kmeshctl("get", "meshes", "--cp-address", address, "--skip-verify")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[0].split()[0] == "NAME"
