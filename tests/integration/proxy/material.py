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
from kmesh.proxyconfig import Cluster, InboundConfig, OutboundConfig, ProxyConfig, seal, spiffe_id

MESH = "m"
NOW = datetime.now(UTC)


def sidecar_config(
    service: str,
    *,
    inbound: InboundConfig | None = None,
    outbound_port: int | None = None,
    cluster: Cluster | None = None,
) -> ProxyConfig:
    """A sealed mTLS sidecar config of ``service`` in MESH: one inbound, and/or one outbound on
    127.0.0.1:``outbound_port`` to ``cluster``."""
    outbounds = []
    if cluster is not None and outbound_port is not None:
        outbounds.append(
            OutboundConfig(
                address="127.0.0.1",
                port=outbound_port,
                service=cluster.service,
                tags=cluster.tags,
                cluster=cluster.name,
            )
        )
    return seal(
        ProxyConfig(
            proxy_type="sidecar",
            mesh=MESH,
            name=f"{service}-1",
            zone="z",
            mtls_enabled=True,
            identity=spiffe_id(MESH, service),
            inbounds=[inbound] if inbound is not None else [],
            outbounds=outbounds,
            clusters=[cluster] if cluster is not None else [],
        )
    )


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


# -- added for the egress, CLI and embedded-sidecar tests ---------------------------------------------------


@contextlib.asynccontextmanager
async def tls_echo_app(name: str, cert_pem: bytes, key_pem: bytes) -> AsyncIterator[int]:
    """An echo app (as ``echo_app``) that speaks TLS only, with the server certificate ``cert_pem``; yields
    its port."""
    from kmesh.wire.tls import server_context

    ctx = server_context(cert_pem, key_pem)
    server = await asyncio.start_server(lambda r, w: _echo(r, w, name), "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def tls_probe(port: int, server_name: str | None) -> bytes:
    """Open a TLS connection to 127.0.0.1:port sending ``server_name`` as SNI (None: no SNI), without
    verifying anything, and return the first bytes read (b"" when the peer closed the connection, including
    during the handshake)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_name or ""), 10.0
        )
    except (ConnectionError, ssl.SSLError):
        return b""
    try:
        return await asyncio.wait_for(reader.read(100), 10.0)
    except (ConnectionError, ssl.SSLError):
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


def cp_request(api_url: str, method: str, path: str, body: object = None) -> object:
    """Call a control plane's REST API on loopback (never through an HTTP proxy); returns the JSON answer
    (or the text of a non-JSON one). Raises urllib.error.HTTPError for an error status."""
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        api_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=10) as response:
        raw = response.read()
        if response.headers.get_content_type() == "application/json":
            return json.loads(raw)
        return raw.decode()


def builtin_mtls_mesh(api_url: str, mesh: str = "default") -> str:
    """Give ``mesh`` a builtin mTLS CA on the control plane at ``api_url`` and return a dataplane token of
    that mesh, valid for an hour."""
    cp_request(
        api_url,
        "PUT",
        f"/meshes/{mesh}",
        {
            "type": "Mesh",
            "name": mesh,
            "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
        },
    )
    token = cp_request(api_url, "POST", "/tokens/dataplane", {"mesh": mesh, "validFor": "1h"})
    assert isinstance(token, str)
    return token.strip()


def dataplane_names(api_url: str, mesh: str = "default") -> list[str]:
    """The names of the Dataplanes the control plane holds in ``mesh``."""
    listing = cp_request(api_url, "GET", f"/meshes/{mesh}/dataplanes")
    assert isinstance(listing, dict)
    return sorted(str(item["name"]) for item in listing["items"])
