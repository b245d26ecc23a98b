"""``KdsZoneClient``: a zone control plane's connection to the global control plane, kept up for its life.

The client dials the global over TLS, introduces the zone with a Hello carrying its zone token, and once
welcomed runs a :class:`~kmesh.kds.sync.ResourceSync` until the connection ends; then it dials again.

Rules:

- Every way a connection fails or ends (refused by the global, dropped, heartbeat timeout, TLS or DNS
  error, connection refused) is logged as one structured warning with its ``code`` and ``reason`` (a
  Reject's reason verbatim, so an operator reads "zone zone-1 is disabled on the global control plane"),
  and kept in :attr:`KdsZoneClient.last_error`. The token is never logged.
- Reconnecting uses exponential backoff with full jitter: the n-th consecutive failure waits a uniform
  random time in ``[0, min(backoff_max_s, backoff_initial_s * 2**n)]``, so a fleet of zones does not dial
  a restarted global in lockstep. A connection that stayed established for ``stable_after_s`` resets the
  backoff: the next failure is treated as a first one.
- While the global is unreachable the zone keeps working on what it holds (DESIGN.md, failure mode 3);
  on reconnect only differences flow both ways.
- ``stop()`` closes the connection with a Close (the global records the disconnect at once) and waits for
  the sync to end.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import final

from kmesh._aio.dial import hang_up
from kmesh._aio.reconnect import CODE_CONNECT_FAILED, Endpoint, Outcome, Reconnecting
from kmesh.kds._state import Role
from kmesh.kds.events import ConnectionClosed, Rejected, Welcomed
from kmesh.kds.messages import DEFAULT_MAX_UNACKED, CloseCode, Hello
from kmesh.kds.session import DEFAULT_HANDSHAKE_TIMEOUT_S
from kmesh.kds.sync import ResourceSync, SyncSettings, TypeSyncStats
from kmesh.kds.transport import KdsConnection
from kmesh.store import ResourceStore
from kmesh.wire.backoff import Backoff
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = ["CODE_CONNECT_FAILED", "KdsZoneClient", "ZoneClientCounters"]

log = logging.getLogger("kmesh.kds.zone")


@final
@dataclass(slots=True)
class ZoneClientCounters:
    """What the client did since it started."""

    dials: int = 0
    established: int = 0
    failures: int = 0
    rejected: int = 0


@final
class KdsZoneClient(Reconnecting[KdsConnection]):
    """Keeps a zone connected to the global; see the module docstring."""

    _log = log
    _DISCONNECTED = "disconnected from the global control plane"
    _CANNOT_CONNECT = "cannot connect to the global"

    def __init__(
        self,
        store: ResourceStore,
        *,
        zone: str,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
        token: str,
        instance_id: str,
        cp_version: str,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        stable_after_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        sync_settings: SyncSettings | None = None,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        if not zone:
            raise ValueError("a zone client needs its zone name")
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, stable_after_s)
        self._store = store
        self._zone = zone
        self._endpoint = Endpoint(
            host=host,
            port=port,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            connect_timeout_s=connect_timeout_s,
            peer="the global",
        )
        self._token = token
        self._instance_id = instance_id
        self._cp_version = cp_version
        self._handshake_s = handshake_timeout_s
        self._max_unacked = max_unacked
        self._max_frame = max_frame_bytes
        self._settings = sync_settings
        self._shutdown_s = shutdown_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._conn: KdsConnection | None = None
        self._sync: ResourceSync | None = None
        self._stopping = False
        self._wakeup = asyncio.Event()
        self.last_error: str | None = None
        self.counters = ZoneClientCounters()

    @property
    def connected(self) -> bool:
        """Whether the zone is connected to the global and syncing now."""
        return self._sync is not None and self._conn is not None and not self._conn.closed

    @property
    def connection(self) -> KdsConnection | None:
        """The current connection (for metrics: buffered bytes), or None."""
        return self._conn

    @property
    def sync(self) -> ResourceSync | None:
        """The sync of the current established connection, or None."""
        return self._sync if self.connected else None

    def sync_stats(self) -> dict[str, TypeSyncStats] | None:
        """Counters per type of the current connection, or None when not connected."""
        sync = self.sync
        return None if sync is None else sync.stats()

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"kds-zone-client-{self._zone}")

    async def stop(self) -> None:
        """Close the connection with a Close and stop reconnecting."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        if self._conn is not None:
            self._conn.close(CloseCode.NORMAL, "the zone control plane is shutting down")
        _, pending = await asyncio.wait({task}, timeout=self._shutdown_s)
        if pending:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _log_fields(self) -> dict[str, object]:
        return {"zone": self._zone, "global_address": self._endpoint.address}

    def _count_dial(self) -> None:
        self.counters.dials += 1

    def _record_end(self, code: str, reason: str, established: bool) -> None:
        self.counters.failures += 1

    async def _session(self, conn: KdsConnection) -> Outcome:
        """One dialled connection until it ends, hanging up included."""
        self._conn = conn
        try:
            return await self._converse(conn)
        finally:
            self._sync = None
            await hang_up(
                conn, CloseCode.NORMAL, "the zone control plane is shutting down", timeout_s=self._shutdown_s
            )
            self._conn = None

    async def _converse(self, conn: KdsConnection) -> tuple[str, str, bool]:
        hello = Hello(
            zone=self._zone, cp_version=self._cp_version, instance_id=self._instance_id, token=self._token
        )
        conn.session.connect(hello)
        conn.flush()
        if self._stop_requested():
            conn.close(CloseCode.NORMAL, "the zone control plane is shutting down")
        event = await conn.next_event()
        if isinstance(event, Rejected):
            self.counters.rejected += 1
            return event.code, event.reason, False
        if isinstance(event, ConnectionClosed):
            return event.code, event.reason, False
        if not isinstance(event, Welcomed):
            conn.close(CloseCode.UNEXPECTED_MESSAGE, f"expected Welcome, got {type(event).__name__}")
            return CloseCode.UNEXPECTED_MESSAGE, f"expected Welcome, got {type(event).__name__}", False
        self.counters.established += 1
        self.last_error = None
        sync = ResourceSync(conn, self._store, role=Role.ZONE, zone=self._zone, settings=self._settings)
        self._sync = sync
        log.info(
            "connected to the global control plane",
            extra={
                "zone": self._zone,
                "global_address": self._endpoint.address,
                "global_instance_id": event.welcome.global_instance_id,
            },
        )
        closed = await sync.run()
        return closed.code, closed.reason, True

    def _stop_requested(self) -> bool:
        # A method, not an inline check: stop() may set the flag across any await.
        return self._stopping

    def _new_connection(self) -> KdsConnection:
        return KdsConnection(
            Role.ZONE,
            max_frame_bytes=self._max_frame,
            max_unacked=self._max_unacked,
            handshake_timeout_s=self._handshake_s,
        )
