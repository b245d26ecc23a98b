"""The installed commands: ``kmesh-cp --help`` and the ``kmesh-proxy`` command line, plus ``free_port``."""

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


def test_kmesh_proxy_help_lists_the_run_flags() -> None:
    result = _run(str(BIN / "kmesh-proxy"), "run", "--help")
    assert result.returncode == 0, result.stderr
    flags = ("--cp-address", "--dataplane-file", "--dataplane-token-file", "--proxy-type", "--admin-port")
    for text in flags:
        assert text in result.stdout


def test_kmesh_proxy_without_a_command_is_a_usage_error() -> None:
    result = _run(str(BIN / "kmesh-proxy"))
    assert result.returncode == 2
    assert "usage: kmesh-proxy" in result.stderr
    assert "Traceback" not in result.stderr


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
