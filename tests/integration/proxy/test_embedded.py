"""``kmesh.Sidecar``: the proxy embedded in asyncio applications, against a real standalone control plane
(``kmesh-cp`` in a subprocess, builtin mTLS, a MeshTrafficPermission that allows only ``client``).

What is checked:
- An app serving its inbound with ``start_server`` and another calling it with ``open_connection("echo")``
  round-trip a line, with mTLS between them and the caller's identity authorized by the server.
- A caller of a service the permission does not allow is closed by the server before its handler runs.
- ``open_connection`` to a service that is not an outbound raises ``UpstreamUnavailable`` naming it.
- A bad dataplane document (or file) raises ``ConfigError`` before anything starts.

Waits for the control plane to push what a step needs are bounded by ``WAIT_S``; nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kmesh import Sidecar
from kmesh.errors import ConfigError
from kmesh.proxy import UpstreamUnavailable
from kmesh.proxyconfig import spiffe_id
from kmesh.testing import CpProcess, free_port

from .material import builtin_mtls_mesh, cp_request

WAIT_S = 30.0
ALLOW_CLIENT = {
    "type": "MeshTrafficPermission",
    "mesh": "default",
    "name": "allow-client",
    "spec": {
        "targetRef": {"kind": "Mesh"},
        "from": [{"targetRef": {"kind": "MeshService", "name": "client"}, "default": {"action": "Allow"}}],
    },
}


class Cp:
    def __init__(self, process: CpProcess, token: str) -> None:
        self.process = process
        self.token = token
        self.address = f"dps://127.0.0.1:{process.dp_port}"
        self.ca_file = process.data_dir / "dp-ca.pem"

    def sidecar(self, dataplane: dict[str, Any]) -> Sidecar:
        return Sidecar(
            self.address, dataplane=dataplane, token=self.token, ca_file=self.ca_file, ready_timeout_s=WAIT_S
        )


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[Cp]:
    with CpProcess(data_dir=tmp_path / "cp", env={"KMESH_DP_SERVER_DEREGISTER_DELAY_S": "0.2"}) as process:
        token = builtin_mtls_mesh(process.api_url)
        cp_request(
            process.api_url, "PUT", "/meshes/default/meshtrafficpermissions/allow-client", ALLOW_CLIENT
        )
        yield Cp(process, token)


def dataplane(name: str, service: str, *, outbound_to: str | None = None) -> dict[str, Any]:
    networking: dict[str, Any] = {
        "address": "127.0.0.1",
        "inbound": [{"port": free_port(), "servicePort": free_port(), "tags": {"kuma.io/service": service}}],
    }
    if outbound_to is not None:
        networking["outbound"] = [{"port": free_port(), "tags": {"kuma.io/service": outbound_to}}]
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": networking}


async def until_pushed(sidecar: Sidecar, check: Callable[[], bool]) -> None:
    """Wait until the control plane has pushed a state in which ``check()`` holds."""
    await asyncio.wait_for(sidecar.app.client.wait_for(lambda _: check()), WAIT_S)


def has_endpoints(sidecar: Sidecar, service: str) -> Callable[[], bool]:
    def check() -> bool:
        config = sidecar.app.runtime.config
        return config is not None and any(c.service == service and c.endpoints for c in config.clusters)

    return check


def lets_in(sidecar: Sidecar, service: str) -> Callable[[], bool]:
    def check() -> bool:
        config = sidecar.app.runtime.config
        wanted = spiffe_id("default", service)
        return config is not None and any(wanted in i.allowed_spiffe_ids for i in config.inbounds)

    return check


@contextlib.asynccontextmanager
async def echo_server(cp: Cp) -> AsyncIterator[tuple[Sidecar, list[str]]]:
    """The ``echo-emb`` app: answers each line with ``echo-emb <line>``; yields it and the peers its handler
    saw (their addresses), so a test can tell that a denied peer never reached it."""
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(str(writer.get_extra_info("peername")))
        try:
            while line := await reader.readline():
                writer.write(b"echo-emb " + line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async with cp.sidecar(dataplane("echo-emb", "echo")) as server:
        await server.start_server(handler)
        yield server, seen


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_an_allowed_embedded_client_round_trips_through_the_mesh(cp: Cp) -> None:
    async with (
        echo_server(cp) as (server, seen),
        cp.sidecar(dataplane("client-emb", "client", outbound_to="echo")) as client,
    ):
        await until_pushed(client, has_endpoints(client, "echo"))
        await until_pushed(server, lets_in(server, "client"))
        reader, writer = await client.open_connection("echo")
        try:
            writer.write(b"hello\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.readline(), WAIT_S) == b"echo-emb hello\n"
            # The stream is mTLS to the server, which presented the echo service's identity.
            from kmesh.proxy._tls import peer_identity

            assert peer_identity(writer.get_extra_info("ssl_object")) == [spiffe_id("default", "echo")]
        finally:
            await close_writer(writer)
        assert len(seen) == 1
        inbound = server.app.runtime.config.inbounds[0]  # type: ignore[union-attr]
        listener = server.app.stats.listener(f"inbound:{inbound.port}")
        assert listener.cx_total == 1
        assert listener.denied == 0

        with pytest.raises(UpstreamUnavailable, match="nope"):
            await client.open_connection("nope")


async def test_a_caller_the_permission_does_not_allow_is_closed_before_the_handler(cp: Cp) -> None:
    async with (
        echo_server(cp) as (server, seen),
        cp.sidecar(dataplane("intruder-emb", "intruder", outbound_to="echo")) as intruder,
    ):
        await until_pushed(intruder, has_endpoints(intruder, "echo"))
        await until_pushed(server, lets_in(server, "client"))  # the permission is in force there
        assert not lets_in(server, "intruder")()
        answer = b""
        try:
            reader, writer = await intruder.open_connection("echo")
        except ConnectionError:
            pass  # closed during the handshake
        else:
            try:
                writer.write(b"hello\n")
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(100), WAIT_S)
            except ConnectionError:
                pass
            finally:
                await close_writer(writer)
        assert answer == b""
        assert seen == []
        inbound = server.app.runtime.config.inbounds[0]  # type: ignore[union-attr]
        assert server.app.stats.listener(f"inbound:{inbound.port}").denied == 1


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            {"type": "ZoneIngress", "name": "zi", "networking": {"address": "127.0.0.1", "port": 1}},
            "ZoneIngress",
        ),
        (
            {"type": "Dataplane", "mesh": "default", "name": "x", "networking": {"inbound": "nope"}},
            "networking.inbound",
        ),
        ({"type": "Dataplane", "name": "x"}, "mesh: required field is missing"),
        ({"type": "NoSuchKind", "name": "x"}, "NoSuchKind"),
    ],
)
def test_a_bad_dataplane_document_is_a_config_error(document: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Sidecar("dps://127.0.0.1:5678", dataplane=document, token="t")


def test_a_missing_dataplane_file_or_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        Sidecar("dps://127.0.0.1:5678", dataplane=tmp_path / "nope.yaml", token="t")
    with pytest.raises(ConfigError, match="no-token"):
        Sidecar("dps://127.0.0.1:5678", dataplane=dataplane("x", "x"), token_file=tmp_path / "no-token")
