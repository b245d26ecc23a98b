"""Mesh material and small apps for the proxy's integration tests: a mesh CA, workload certificates made
the way a zone control plane makes them (CSR signed by the mesh CA), and an echo app on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from kmesh.dps import Certificate
from kmesh.pki import CaBundle, generate_ca, generate_workload_key, key_to_pem, make_csr, sign_workload_csr

MESH = "m"
NOW = datetime.now(UTC)


def mesh_ca(mesh: str = MESH) -> CaBundle:
    return generate_ca(mesh, "ca-1", now=NOW)


def workload_cert(ca: CaBundle, service: str, *, mesh: str = MESH, request_id: str = "r1") -> Certificate:
    key = generate_workload_key()
    csr = make_csr(key, mesh=mesh, service=service)
    cert = sign_workload_csr(csr, ca, mesh=mesh, services=[service], tags={}, now=NOW, valid_for_s=3600)
    return Certificate(
        mesh=mesh,
        cert_pem=cert,
        key_pem=key_to_pem(key),
        ca_bundle_pem=ca.cert_pem,
        not_after=time.time() + 3600,
        renew_at=time.time() + 2880,
        backend="ca-1",
        request_id=request_id,
    )


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
    try:
        while line := await reader.readline():
            writer.write(f"{name} ".encode() + line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def echo_app(name: str = "echo") -> AsyncIterator[int]:
    """An app answering each line with ``<name> <line>``; yields its port."""
    server = await asyncio.start_server(lambda r, w: _echo(r, w, name), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def call(port: int, line: bytes = b"hi\n", *, timeout_s: float = 10.0) -> bytes:
    """Send one line to 127.0.0.1:port and return the answer line (b"" when the connection was closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(line)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout_s)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
