"""``kmesh-proxy run`` as a user runs it: ``python -m kmesh.proxy`` in a subprocess.

What is checked:
- Bad input (a missing dataplane file, an unset ``{{ var }}``, a ZoneIngress run as a sidecar, a missing
  token file, a bad ``--cp-address``, a bad ``--admin-port``, a missing CA file) exits 2 with one line on
  stderr naming the problem, and no traceback.
- Against a real standalone control plane with builtin mTLS: the sidecar becomes ready; ``/stats``,
  ``/metrics`` (Prometheus text) and ``/config_dump`` (the config, a certificate summary, no private key)
  answer; SIGTERM stops it with status 0 and the control plane then forgets the dataplane.
- An admin port already taken exits 1 with a message naming the port.

Every wait is bounded (``WAIT_S``); the bound only turns a hang into a failure, nothing asserts a duration.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from kmesh.testing import CpProcess, free_port, proxy_env

from .material import builtin_mtls_mesh, dataplane_names

T = TypeVar("T")
WAIT_S = 30.0
PROXY = (sys.executable, "-m", "kmesh.proxy", "run")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def eventually(probe: Callable[[], T], what: str) -> T:
    """Call ``probe`` until it stops raising AssertionError or OSError; its value. Fails naming ``what``
    and the last failure after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return probe()
        except (AssertionError, OSError) as exc:
            last: BaseException = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S:g}s waiting for {what}; last: {last!s}") from last
        time.sleep(0.05)


def dataplane_yaml(name: str, inbound_port: int, app_port: int) -> str:
    return (
        "type: Dataplane\n"
        "mesh: default\n"
        f"name: {name}\n"
        "networking:\n"
        "  address: 127.0.0.1\n"
        "  inbound:\n"
        f"    - port: {inbound_port}\n"
        f"      servicePort: {app_port}\n"
        "      tags:\n"
        "        kuma.io/service: echo\n"
    )


def run_proxy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROXY, *args],
        env=proxy_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *named: str) -> str:
    """Exit status 2, one line on stderr starting ``kmesh-proxy: error:`` and naming each of ``named``."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("kmesh-proxy: error: ")
    for text in named:
        assert text in line
    return line


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    dp = tmp_path / "dp.yaml"
    dp.write_text(dataplane_yaml("{{ name }}", free_port(), free_port()))
    zone_ingress = tmp_path / "zi.yaml"
    zone_ingress.write_text("type: ZoneIngress\nname: zi\nnetworking:\n  address: 127.0.0.1\n  port: 10001\n")
    token = tmp_path / "token"
    token.write_text("not-checked-before-joining\n")
    return {"dp": dp, "zi": zone_ingress, "token": token}


# -- bad input ----------------------------------------------------------------------------------------------


def test_a_missing_dataplane_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_proxy(tmp_path, "--cp-address", "dps://127.0.0.1:5678", "--dataplane-file", str(missing))
    assert_usage_error(result, str(missing), "no such file")


def test_an_unset_variable_is_a_usage_error(tmp_path: Path, files: dict[str, Path]) -> None:
    result = run_proxy(tmp_path, "--cp-address", "dps://127.0.0.1:5678", "--dataplane-file", str(files["dp"]))
    assert_usage_error(result, str(files["dp"]), '"name"', "--dataplane-var name=")


def test_a_zone_ingress_file_run_as_a_sidecar_is_a_usage_error(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    result = run_proxy(
        tmp_path,
        "--cp-address",
        "dps://127.0.0.1:5678",
        "--dataplane-file",
        str(files["zi"]),
        "--proxy-type",
        "sidecar",
    )
    assert_usage_error(result, str(files["zi"]), "ZoneIngress", "--proxy-type ingress")


def test_a_missing_token_file_is_a_usage_error(tmp_path: Path, files: dict[str, Path]) -> None:
    missing = tmp_path / "no-token"
    result = run_proxy(
        tmp_path,
        "--cp-address",
        "dps://127.0.0.1:5678",
        "--dataplane-file",
        str(files["dp"]),
        "--dataplane-var",
        "name=x",
        "--dataplane-token-file",
        str(missing),
    )
    assert_usage_error(result, "--dataplane-token-file", str(missing))


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:5678", "dps://", "dps://127.0.0.1:notaport", "dps://127.0.0.1:70000"]
)
def test_a_bad_cp_address_is_a_usage_error(tmp_path: Path, files: dict[str, Path], address: str) -> None:
    result = run_proxy(
        tmp_path,
        "--cp-address",
        address,
        "--dataplane-file",
        str(files["dp"]),
        "--dataplane-var",
        "name=x",
        "--dataplane-token-file",
        str(files["token"]),
    )
    assert_usage_error(result, "--cp-address", address)


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [("--admin-port", "70000", "not a port number"), ("--ca-cert-file", "/nonexistent/ca.pem", "ca.pem")],
)
def test_bad_admin_port_or_ca_file_is_a_usage_error(
    tmp_path: Path, files: dict[str, Path], flag: str, value: str, named: str
) -> None:
    result = run_proxy(
        tmp_path,
        "--cp-address",
        "dps://127.0.0.1:5678",
        "--dataplane-file",
        str(files["dp"]),
        "--dataplane-var",
        "name=x",
        "--dataplane-token-file",
        str(files["token"]),
        flag,
        value,
    )
    assert_usage_error(result, flag, named)


# -- a real proxy against a real control plane --------------------------------------------------------------


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CpProcess]:
    data_dir = tmp_path_factory.mktemp("cp")
    with CpProcess(data_dir=data_dir, env={"KMESH_DP_SERVER_DEREGISTER_DELAY_S": "0.2"}) as process:
        yield process


def admin_get(port: int, path: str) -> tuple[int, str, str]:
    """``(status, content type, body)`` of GET ``path`` on the admin server at ``port``."""
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers.get_content_type(), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get_content_type(), exc.read().decode()


class Sidecar:
    """One ``kmesh-proxy run`` sidecar process, its stderr in a file."""

    def __init__(self, tmp_path: Path, cp: CpProcess, name: str, admin_port: int) -> None:
        self.name = name
        self.admin_port = admin_port
        token = builtin_mtls_mesh(cp.api_url)
        (tmp_path / "token").write_text(token)
        (tmp_path / "token").chmod(0o600)
        (tmp_path / "dp.yaml").write_text(dataplane_yaml("{{ name }}", free_port(), free_port()))
        self.log = tmp_path / "proxy.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *PROXY,
                    "--cp-address",
                    f"dps://127.0.0.1:{cp.dp_port}",
                    "--dataplane-file",
                    str(tmp_path / "dp.yaml"),
                    "--dataplane-var",
                    f"name={name}",
                    "--dataplane-token-file",
                    str(tmp_path / "token"),
                    "--ca-cert-file",
                    str(cp.data_dir / "dp-ca.pem"),
                    "--admin-port",
                    str(admin_port),
                ],
                env=proxy_env(tmp_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kmesh-proxy did not exit within {WAIT_S:g}s:\n{self.logs()}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sidecar(tmp_path: Path, cp: CpProcess) -> Iterator[Sidecar]:
    proxy = Sidecar(tmp_path, cp, "cli-sidecar", free_port())
    try:
        yield proxy
    finally:
        proxy.close()


def test_a_sidecar_joins_serves_its_admin_api_and_leaves_on_sigterm(cp: CpProcess, sidecar: Sidecar) -> None:
    port = sidecar.admin_port

    def ready() -> None:
        assert sidecar.proc.poll() is None, f"kmesh-proxy exited:\n{sidecar.logs()}"
        status, _, body = admin_get(port, "/ready")
        assert status == 200, body

    eventually(ready, "/ready to answer 200")
    assert sidecar.name in dataplane_names(cp.api_url)

    status, kind, body = admin_get(port, "/stats")
    assert (status, kind) == (200, "application/json")
    stats = json.loads(body)
    assert stats["proxy"]["configs_applied"] >= 1
    assert stats["proxy"]["certificates"] >= 1
    assert any(name.startswith("inbound:") for name in stats["listeners"])

    status, kind, body = admin_get(port, "/metrics")
    assert (status, kind) == (200, "text/plain")
    assert re.search(r"^# TYPE kmesh_proxy_configs_applied(_total)? counter$", body, re.MULTILINE), body
    applied = re.search(r"^kmesh_proxy_configs_applied_total (\S+)$", body, re.MULTILINE)
    assert applied is not None, body
    assert float(applied.group(1)) >= 1
    assert re.search(r"^kmesh_proxy_certificates_total (\S+)$", body, re.MULTILINE) is not None
    assert 'kmesh_listener_cx_total{listener="inbound:' in body

    status, kind, body = admin_get(port, "/config_dump")
    assert (status, kind) == (200, "application/json")
    assert "PRIVATE KEY" not in body
    dump = json.loads(body)
    assert dump["config"]["name"] == sidecar.name
    assert dump["config"]["mesh"] == "default"
    assert dump["config"]["mtls_enabled"] is True
    assert dump["certificates"]["default"]["spiffe_ids"] == ["spiffe://default/echo"]
    assert dump["certificates"]["default"]["not_after"] > time.time()
    assert dump["control_plane"]["connected"] is True

    sidecar.proc.send_signal(signal.SIGTERM)
    assert sidecar.wait() == 0, sidecar.logs()
    assert "Traceback" not in sidecar.logs()

    def forgotten() -> None:
        assert sidecar.name not in dataplane_names(cp.api_url)

    eventually(forgotten, f"the control plane to deregister {sidecar.name}")


def test_a_taken_admin_port_exits_1_naming_the_port(tmp_path: Path, cp: CpProcess) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        proxy = Sidecar(tmp_path, cp, "cli-taken-port", busy)
        try:
            assert proxy.wait() == 1
        finally:
            proxy.close()
    logs = proxy.logs()
    assert "Traceback" not in logs
    assert f"127.0.0.1:{busy}" in logs
    assert "cli-taken-port" not in dataplane_names(cp.api_url)
