"""``DpClient``: a proxy's connection to its zone control plane, kept up for the proxy's life.

This is what ``kmesh-proxy`` and the embedded ``kmesh.Sidecar`` use. The client dials the DP server over
TLS, introduces the proxy with a Hello (its resource document, token and version), and once welcomed:
makes its own key pair and sends a CSR (the private key never leaves the proxy), receives certificates
and configs, applies each config through the caller's ``apply_config`` and answers ACK or NACK, reports the
readiness of its inbounds, and renews its certificate at ``renew_at`` (4/5 of its life).

Rules:

- Every way a connection ends (refused, dropped, heartbeat timeout, TLS error) is logged as one warning
  with its ``code`` and ``reason`` (a Reject's reason verbatim), kept in :attr:`DpClient.last_error`, and
  followed by a reconnect with exponential backoff and full jitter (``[0, min(backoff_max_s,
  backoff_initial_s * 2**n)]``), reset once a connection stayed up ``stable_after_s``. A refusal is retried
  too: the mesh's keys or CA may simply not have reached the zone yet. The token is never logged.
- The last config and certificates are kept across disconnections: traffic keeps flowing on them while
  the control plane is away (DESIGN.md, failure mode 2). After a reconnect the control plane sends the
  config again; an unchanged version is acknowledged without applying it again.
- ``apply_config`` may be a coroutine function; raising refuses the config (NACK with the error as
  reason) and the previous one stays current. A config that does not decode is refused the same way.
  ``on_certificate`` (also possibly a coroutine function) is told of every certificate received; its
  errors are logged and change nothing.
- ``close()`` ends the connection with ``Close{normal}``: the control plane deregisters the proxy (after
  its short delay). ``close(deregister=False)`` says ``going_away`` instead, for a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, final

import msgspec

from kmesh._aio.dial import hang_up
from kmesh._aio.reconnect import CODE_CONNECT_FAILED, Endpoint, Outcome, Reconnecting
from kmesh._version import __version__
from kmesh.dps._dial import csr_service, parse_dp_address
from kmesh.dps._keys import Certificate, KeyBook
from kmesh.dps._state import Role
from kmesh.dps.events import (
    CertificateDenied,
    CertificateReceived,
    ConfigReceived,
    ConnectionClosed,
    Rejected,
    Welcomed,
)
from kmesh.dps.messages import CloseCode, Hello, InboundHealth, Welcome
from kmesh.dps.session import DEFAULT_HANDSHAKE_TIMEOUT_S, PROXY_TYPES
from kmesh.dps.transport import DpConnection
from kmesh.proxyconfig import ProxyConfig
from kmesh.wire.backoff import Backoff
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = [
    "CODE_CONNECT_FAILED",
    "CODE_GOING_AWAY",
    "Certificate",
    "ClientCounters",
    "ConfigApplier",
    "DpClient",
    "parse_dp_address",
]

log = logging.getLogger("kmesh.dps.client")

CODE_GOING_AWAY: Final = CloseCode.GOING_AWAY
ConfigApplier = Callable[[ProxyConfig], Awaitable[None] | None]
CertificateListener = Callable[[Certificate], Awaitable[None] | None]


@final
@dataclass(slots=True)
class ClientCounters:
    """What the client did since it started."""

    dials: int = 0
    established: int = 0
    rejected: int = 0
    configs_applied: int = 0
    configs_refused: int = 0
    certificates: int = 0


@final
class DpClient(Reconnecting[DpConnection]):
    """Keeps a proxy connected to its zone control plane; see the module docstring.

    ``dataplane_doc`` is the proxy's resource document (a Dataplane, ZoneIngress or ZoneEgress in Kuma's
    Universal form). Raises ValueError for a bad address, proxy type or backoff.
    """

    _log = log
    _DISCONNECTED = "disconnected from the control plane"
    _CANNOT_CONNECT = "cannot join the control plane"

    def __init__(
        self,
        address: str,
        ssl_context: ssl.SSLContext,
        *,
        dataplane_doc: Mapping[str, Any],
        proxy_type: str = "sidecar",
        token: str = "",
        server_hostname: str | None = None,
        instance_id: str | None = None,
        version: str = __version__,
        features: Sequence[str] = (),
        apply_config: ConfigApplier | None = None,
        on_certificate: CertificateListener | None = None,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        stable_after_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        renew_retry_s: float = 30.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        if proxy_type not in PROXY_TYPES:
            raise ValueError(f"proxy type {proxy_type!r} is not one of {', '.join(PROXY_TYPES)}")
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, stable_after_s)
        host, port = parse_dp_address(address)
        self._endpoint = Endpoint(
            host=host,
            port=port,
            ssl_context=ssl_context,
            server_hostname=server_hostname if server_hostname is not None else host,
            connect_timeout_s=connect_timeout_s,
            peer="the control plane",
        )
        self._doc = dict(dataplane_doc)
        self._proxy_type = proxy_type
        self._token = token
        self._instance_id = instance_id or f"{uuid.uuid4().hex[:12]}"
        self._version = version
        self._features = list(features)
        self._apply = apply_config
        self._on_certificate = on_certificate
        self._handshake_s = handshake_timeout_s
        self._max_frame = max_frame_bytes
        self._shutdown_s = shutdown_timeout_s
        self._keys = KeyBook(service=csr_service(self._doc), retry_s=renew_retry_s)
        self._health: dict[int, bool] = {}
        self._config: ProxyConfig | None = None
        self._conn: DpConnection | None = None
        self._welcome: Welcome | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._close_code: str = CloseCode.NORMAL
        self._wakeup = asyncio.Event()
        self._renew_wakeup = asyncio.Event()
        self._changed = asyncio.Event()
        self.last_error: str | None = None
        self.last_rejection: tuple[str, str] | None = None
        # How the last established connection ended, as (code, reason).
        self.last_disconnect: tuple[str, str] | None = None
        # The last refusal of a CSR, as (code, reason); cleared by the next certificate.
        self.last_certificate_error: tuple[str, str] | None = None
        self.counters = ClientCounters()

    # -- what the proxy sees ----------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def connected(self) -> bool:
        """Whether the proxy is connected and welcomed now."""
        return self._welcome is not None and self._conn is not None and not self._conn.closed

    @property
    def welcome(self) -> Welcome | None:
        """The Welcome of the current connection, or None while not connected."""
        return self._welcome if self.connected else None

    @property
    def current_config(self) -> ProxyConfig | None:
        """The last config applied (kept across disconnections)."""
        return self._config

    @property
    def certificate(self) -> Certificate | None:
        """The certificate of the proxy's own mesh (a sidecar's), or None."""
        mesh = self._doc.get("mesh")
        return self._keys.certificate(mesh) if isinstance(mesh, str) else None

    @property
    def certificates(self) -> dict[str, Certificate]:
        """Every certificate held, by mesh (a zone egress holds one per mesh it serves)."""
        return self._keys.certificates

    async def configs(self) -> AsyncGenerator[ProxyConfig, None]:
        """Yield the current config (if any), then each newly applied one, forever (``aclose()`` it when
        done)."""
        seen: ProxyConfig | None = None
        while True:
            changed = self._changed
            config = self._config
            if config is not None and config is not seen:
                seen = config
                yield config
                continue
            await changed.wait()

    async def wait_for(self, check: Callable[[DpClient], bool]) -> None:
        """Wait until ``check(self)`` holds; it is evaluated after every change of state."""
        while not check(self):
            changed = self._changed
            await changed.wait()

    def set_inbound_health(self, port: int, ready: bool) -> None:
        """Record the readiness of the inbound on ``port``; sent at once when connected, and after every
        reconnect."""
        if self._health.get(port) == ready:
            return
        self._health[port] = ready
        conn = self._conn
        if self.connected and conn is not None:
            conn.session.report_health(self._health_report())
            conn.flush()

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"dp-client-{self._instance_id}")

    async def close(self, *, deregister: bool = True) -> None:
        """End the connection with a Close and stop reconnecting. ``deregister=False`` tells the control
        plane the proxy comes back (a restart), so its resource stays."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._close_code = CloseCode.NORMAL if deregister else CODE_GOING_AWAY
        self._wakeup.set()
        conn = self._conn
        if conn is not None:
            conn.close(self._close_code, "the proxy is shutting down")
        _, pending = await asyncio.wait({task}, timeout=self._shutdown_s)
        if pending:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # -- connecting -------------------------------------------------------------------------------------

    def _log_fields(self) -> dict[str, object]:
        return {"cp_address": self._endpoint.address}

    def _count_dial(self) -> None:
        self.counters.dials += 1

    def _record_end(self, code: str, reason: str, established: bool) -> None:
        if established:
            self.last_disconnect = (code, reason)

    async def _session(self, conn: DpConnection) -> Outcome:
        """One dialled connection until it ends, hanging up included."""
        self._conn = conn
        try:
            return await self._converse(conn)
        finally:
            self._welcome = None
            self._notify()
            await hang_up(conn, self._close_code, "the proxy is shutting down", timeout_s=self._shutdown_s)
            self._conn = None

    async def _converse(self, conn: DpConnection) -> tuple[str, str, bool]:
        hello = Hello(
            proxy_type=self._proxy_type,
            dataplane=self._doc,
            token=self._token,
            version=self._version,
            instance_id=self._instance_id,
            features=self._features,
        )
        conn.session.connect(hello)
        conn.flush()
        if self._stop_requested():
            conn.close(self._close_code, "the proxy is shutting down")
        event = await conn.next_event()
        if isinstance(event, Rejected):
            self.counters.rejected += 1
            self.last_rejection = (event.code, event.reason)
            return event.code, event.reason, False
        if isinstance(event, ConnectionClosed):
            return event.code, event.reason, False
        if not isinstance(event, Welcomed):
            reason = f"expected Welcome, got {type(event).__name__}"
            conn.close(CloseCode.UNEXPECTED_MESSAGE, reason)
            return CloseCode.UNEXPECTED_MESSAGE, reason, False
        self._welcome = event.welcome
        self.counters.established += 1
        self.last_error = None
        self.last_rejection = None
        log.info(
            "joined the control plane",
            extra={
                "cp_address": self._endpoint.address,
                "zone": event.welcome.zone,
                "mesh": event.welcome.mesh,
                "dataplane": event.welcome.name,
            },
        )
        if self._health:
            conn.session.report_health(self._health_report())
        self._notify()
        renewer = asyncio.create_task(self._renew_loop(conn), name=f"dp-renew-{self._instance_id}")
        try:
            closed = await self._serve(conn)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return closed.code, closed.reason, True

    async def _serve(self, conn: DpConnection) -> ConnectionClosed:
        while True:
            event = await conn.next_event()
            match event:
                case ConfigReceived():
                    await self._on_config(conn, event)
                case CertificateReceived():
                    await self._on_certificate_issued(event)
                case CertificateDenied():
                    self._keys.refused(event.request_id, retry=event.retry)
                    self.last_certificate_error = (event.code, event.reason)
                    self._notify()
                    log.warning(
                        "the control plane did not sign the proxy's certificate",
                        extra={"code": event.code, "reason": event.reason, "will_retry": event.retry},
                    )
                case ConnectionClosed():
                    return event
                case _:
                    pass
            conn.flush()

    # -- configs and certificates -----------------------------------------------------------------------

    async def _on_config(self, conn: DpConnection, event: ConfigReceived) -> None:
        current = self._config
        if current is not None and current.version == event.version:
            conn.session.ack(event.version)  # a resend after a reconnect: nothing to apply
            return
        try:
            config = msgspec.msgpack.decode(event.config, type=ProxyConfig)
            if config.version != event.version:
                raise ValueError(f"the config says version {config.version!r}, its update {event.version!r}")
            if self._apply is not None:
                result = self._apply(config)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:  # the applier's refusal, whatever it is, becomes the NACK's reason
            reason = f"{type(exc).__name__}: {exc}"
            self.counters.configs_refused += 1
            conn.session.nack(event.version, reason)
            log.warning("refused a config", extra={"version": event.version, "reason": reason})
            return
        self._config = config
        self.counters.configs_applied += 1
        conn.session.ack(event.version)
        self._notify()
        # A zone egress needs a certificate for every mesh whose external services it terminates.
        self._renew_wakeup.set()

    async def _on_certificate_issued(self, event: CertificateReceived) -> None:
        issued = event.issued
        mesh = issued.mesh or (self._welcome.mesh if self._welcome is not None else "")
        cert = self._keys.receive(issued, mesh=mesh)
        if cert is None:
            log.warning("got a certificate for a key this proxy no longer holds", extra={"mesh": mesh})
            return
        self.counters.certificates += 1
        self.last_certificate_error = None
        self._renew_wakeup.set()
        self._notify()
        if self._on_certificate is not None:
            try:
                result = self._on_certificate(cert)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the listener's failure is its own; the connection goes on
                log.exception("the certificate listener failed", extra={"mesh": mesh})

    def _wanted_meshes(self) -> set[str]:
        welcome = self._welcome
        if welcome is None or self._proxy_type == "ingress":
            return set()
        if self._proxy_type == "sidecar":
            return {welcome.mesh}
        config = self._config
        if config is None or config.egress is None:
            return set()
        return {route.mesh for route in config.egress.external_services.values()}

    async def _renew_loop(self, conn: DpConnection) -> None:
        # Every connection starts with a CSR per mesh, even while the certificate held is fresh: the
        # control plane keeps the last CSR to re-sign it when the mesh's CA changes.
        asked: set[str] = set()
        while not conn.closed:
            self._renew_wakeup.clear()
            meshes = self._wanted_meshes()
            now = time.time()
            for mesh in sorted(set(self._keys.due(meshes, now)) | (meshes - asked)):
                asked.add(mesh)
                request_id, csr = self._keys.new_request(mesh, now=now)
                requested = mesh if self._proxy_type == "egress" else ""
                conn.session.request_certificate(csr, request_id=request_id, mesh=requested)
            conn.flush()
            when = self._keys.next_due(meshes)
            delay = None if when is None else max(0.0, when - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renew_wakeup.wait(), delay)

    # -- internals --------------------------------------------------------------------------------------

    def _health_report(self) -> list[InboundHealth]:
        return [InboundHealth(port=port, ready=ready) for port, ready in sorted(self._health.items())]

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _stop_requested(self) -> bool:
        # A method, not an inline check: close() may set the flag across any await.
        return self._stopping

    def _new_connection(self) -> DpConnection:
        return DpConnection(
            Role.PROXY, max_frame_bytes=self._max_frame, handshake_timeout_s=self._handshake_s
        )
