"""``kmesh.Sidecar``: the proxy embedded in an asyncio application, with no sidecar hop.

::

    async with Sidecar("dps://127.0.0.1:5678", dataplane="dp.yaml", token_file="dp.token",
                       ca_file="dp-ca.pem") as sidecar:
        reader, writer = await sidecar.open_connection("backend")
        server = await sidecar.start_server(handle, inbound="web")

Rules:
- The app joins the mesh as the Dataplane it gives (a file with ``{{ var }}`` placeholders, or a
  document), exactly as a ``kmesh-proxy`` sidecar would: same token, same certificate, same config.
- ``open_connection(service, tags)`` goes through the same upstream as a sidecar's outbound — the same
  balancing, failover, mTLS and SPIFFE check — and returns a stream pair whose bytes are the app's, with
  TLS to the peer underneath. The service must be one of the dataplane's outbounds (its port is not
  listened on: there is no app to listen for).
- ``start_server(handler, inbound=...)`` serves one inbound in-process: mTLS with the mesh certificate,
  MeshTrafficPermission on every connection (a denied peer is closed before the handler runs), then
  ``handler(reader, writer)``. Inbounds are reported unready to the control plane until served, so no
  peer is sent to a port nobody listens on.
- Entering waits until the config (and with mTLS the certificate) is there, at most ``ready_timeout_s``;
  leaving closes the servers and leaves the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, final

from kmesh.errors import ConfigError, KmeshError
from kmesh.model import parse_resource
from kmesh.proxy._app import ProxyApp, read_token_file
from kmesh.proxy._authz import authorize
from kmesh.proxy._dpfile import load_dataplane_file
from kmesh.proxy._lb import Pick
from kmesh.proxy._tls import peer_identity
from kmesh.proxy._upstream import Upstream, UpstreamUnavailable
from kmesh.proxyconfig import InboundConfig

__all__ = ["Handler", "Sidecar"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_STREAM_LIMIT = 64 * 1024


class _UpstreamStream(asyncio.StreamReaderProtocol):
    """A client stream that gives its pick back to the balancer when the connection ends."""

    def __init__(self, reader: asyncio.StreamReader, upstream: Upstream) -> None:
        super().__init__(reader)
        self._upstream = upstream
        self.pick: Pick | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pick is not None:
            self._upstream.balancer.released(self.pick)
            self._upstream.stats.cx_active -= 1
            self.pick = None
        super().connection_lost(exc)


def _document(
    dataplane: Mapping[str, Any] | str | os.PathLike[str], variables: Mapping[str, str]
) -> dict[str, Any]:
    if isinstance(dataplane, Mapping):
        try:
            resource = parse_resource(dict(dataplane))
        except KmeshError as exc:
            raise ConfigError(f"dataplane: {exc}") from None
        if resource.meta.type != "Dataplane":
            raise ConfigError(f"dataplane: a Sidecar joins as a Dataplane, not a {resource.meta.type}")
        return dict(dataplane)
    return load_dataplane_file(dataplane, variables, proxy_type="sidecar")


@final
class Sidecar:
    """See the module docstring. Raises ConfigError for a bad dataplane, token file or address."""

    def __init__(
        self,
        cp_address: str,
        *,
        dataplane: Mapping[str, Any] | str | os.PathLike[str],
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        variables: Mapping[str, str] | None = None,
        ready_timeout_s: float = 30.0,
        admin_port: int | None = None,
    ) -> None:
        if token is not None and token_file is not None:
            raise ConfigError("give token or token_file, not both")
        if token_file is not None:
            token = read_token_file(token_file, setting="token file")
        self._doc = _document(dataplane, variables or {})
        self._ready_timeout_s = ready_timeout_s
        self._app = ProxyApp(
            cp_address=cp_address,
            dataplane_doc=self._doc,
            token=token or "",
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
            admin_port=admin_port,
            listen_outbounds=False,
            serve_inbounds=False,
            probe_apps=False,
        )
        self._servers: list[asyncio.AbstractServer] = []

    @property
    def app(self) -> ProxyApp:
        return self._app

    async def __aenter__(self) -> Sidecar:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Join the mesh and wait until ready. Raises KmeshError naming what is missing after
        ``ready_timeout_s``."""
        app = self._app
        inbounds = (self._doc.get("networking") or {}).get("inbound") or []
        for inbound in inbounds:
            if isinstance(inbound, Mapping) and isinstance(inbound.get("port"), int):
                app.client.set_inbound_health(int(inbound["port"]), False)
        await app.start()
        try:
            await asyncio.wait_for(
                app.client.wait_for(lambda _: app.runtime.ready()[0]), self._ready_timeout_s
            )
        except TimeoutError:
            _, why = app.runtime.ready()
            await app.stop()
            raise KmeshError(
                f"the sidecar is not ready after {self._ready_timeout_s:g}s: {why}"
                f" (control plane: {app.client.last_error or 'connected'})"
            ) from None

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        await self._app.stop()

    # -- calling the mesh -------------------------------------------------------------------------------

    async def open_connection(
        self, service: str, tags: Mapping[str, str] | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream pair to ``service`` (its subset ``tags``) across the mesh.

        Raises UpstreamUnavailable (a ConnectionError) when the service is not an outbound of this
        dataplane or no endpoint could be reached.
        """
        upstream = self._app.runtime.upstream_for(service, tags)
        if upstream is None:
            subset = f" with tags {dict(tags)}" if tags else ""
            raise UpstreamUnavailable(
                f"{service}{subset} is not an outbound of dataplane {self._doc.get('name')!r}:"
                " declare it under networking.outbound"
            )
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
        protocol = _UpstreamStream(reader, upstream)
        transport, _, pick = await upstream.dial(lambda: protocol)
        protocol.pick = pick
        upstream.stats.cx_total += 1
        upstream.stats.cx_active += 1
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    # -- serving the mesh -------------------------------------------------------------------------------

    def _inbound(self, selector: int | str | None) -> InboundConfig:
        config = self._app.runtime.config
        if config is None or not config.inbounds:
            raise ConfigError("the dataplane has no inbound to serve")
        for inbound in config.inbounds:
            if selector is None or selector in (inbound.port, inbound.service, inbound.name):
                return inbound
        names = ", ".join(f"{i.service}:{i.port}" for i in config.inbounds)
        raise ConfigError(f"no inbound {selector!r} in the dataplane (it has {names})")

    async def start_server(
        self, handler: Handler, inbound: int | str | None = None
    ) -> asyncio.AbstractServer:
        """Serve ``inbound`` (its port, service or name; the first by default) with ``handler``.

        Raises ConfigError for an unknown inbound, OSError when its port cannot be bound.
        """
        chosen = self._inbound(inbound)
        runtime = self._app.runtime
        config = runtime.config
        assert config is not None
        mtls = config.mtls_enabled
        ctx = runtime.tls.server_context(config.mesh) if mtls else None
        stats = runtime.stats.listener(f"inbound:{chosen.port}")
        port = chosen.port

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stats.cx_total += 1
            stats.cx_active += 1
            try:
                current = runtime.config
                policy = next((i for i in current.inbounds if i.port == port), chosen) if current else chosen
                ids = peer_identity(writer.get_extra_info("ssl_object")) if mtls else []
                verdict = authorize(policy, ids, mtls=mtls)
                if not verdict.allowed:
                    stats.denied += 1
                    writer.transport.abort()
                    return
                await handler(reader, writer)
            finally:
                stats.cx_active -= 1

        server = await asyncio.start_server(serve, chosen.address, chosen.port, ssl=ctx, reuse_address=True)
        self._servers.append(server)
        self._app.client.set_inbound_health(chosen.port, True)
        return server
