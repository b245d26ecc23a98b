"""The installed commands: ``kmesh-cp --help`` and the ``kmesh-proxy`` placeholder, plus ``free_port``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from kmesh.testing import free_port

BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_kmesh_cp_help_lists_flags_and_variables() -> None:
    result = _run(str(BIN / "kmesh-cp"), "--help")
    assert result.returncode == 0, result.stderr
    for text in (
        "--config",
        "--print-config",
        "--mode",
        "--api-port",
        "KMESH_API_SERVER_PORT",
        "KMESH_STORE_SQLITE_PATH",
    ):
        assert text in result.stdout


def test_kmesh_proxy_says_it_is_not_built_yet() -> None:
    for argv in ((), ("run", "--cp-address", "dps://127.0.0.1:5678", "--dataplane-file", "dp.yaml")):
        result = _run(str(BIN / "kmesh-proxy"), *argv)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "kmesh-proxy: the data-plane proxy is not built yet; it arrives with issue 5"
        )
        assert "Traceback" not in result.stderr


def test_kmesh_proxy_help_works() -> None:
    result = _run(str(BIN / "kmesh-proxy"), "--help")
    assert result.returncode == 0
    assert "usage: kmesh-proxy" in result.stdout
    assert "Not built yet: it arrives with issue 5." in " ".join(result.stdout.split())


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
