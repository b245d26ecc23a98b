"""``KdsGlobalServer``: the global control plane's KDS listener (TLS, :5685) and the zone lifecycle.

Each accepted connection is served by one task: it waits for the zone's Hello, admits or refuses the zone,
then runs a :class:`~kmesh.kds.sync.ResourceSync` until the connection ends.

Rules (DESIGN.md, "Roles" and "Wire"):

- Admission, in this order: a Hello of the DP protocol (a proxy that dialled the global) is refused by the
  session itself, telling the proxy to connect to its zone control plane; a zone name that is not a valid
  resource name is refused (``bad_hello``); ``authenticate(hello)`` returns None to accept or the reason
  to refuse (``unauthenticated``; no callback means authentication is off), and may be a coroutine; a zone
  whose ``Zone`` exists with ``enabled: false`` is refused (``zone_disabled``). Authentication comes before
  anything that reveals a zone's state.
- The first connection of a zone creates its ``Zone`` (enabled). ``ZoneInsight`` records every
  connection (see :mod:`kmesh.kds._lifecycle`): written at connect, at disconnect, and every
  ``insight_interval_s`` while live if its counters or last heartbeat changed. At start the server closes
  stale subscriptions left open by an earlier run.
- A second live connection of the same zone **replaces** the older one, which is closed with code
  ``replaced``: a restarted zone control plane reconnects at once instead of being refused until the
  heartbeat timeout notices its old connection is dead (three intervals). The older connection's sync is
  let finish (bounded by ``shutdown_timeout_s``) before the new one subscribes, so the two never write the
  zone's resources at the same time.
- When a connected zone's Zone is set ``enabled: false``, its connection is closed with code
  ``zone_disabled`` (the zone keeps retrying and is refused until re-enabled); when the Zone is deleted
  through the store, the connection is closed with ``zone_deleted``. The API refuses to delete the Zone of
  a connected zone: :meth:`KdsGlobalServer.is_connected` is its guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, final

from kmesh._aio.serving import LiveConnections
from kmesh.errors import StoreError
from kmesh.kds._convert import ZONE_TYPE
from kmesh.kds._lifecycle import (
    CODE_STORE_UNAVAILABLE,
    CODE_ZONE_DISABLED,
    DEFAULT_KEPT_SUBSCRIPTIONS,
    DEFAULT_STALE_AFTER_S,
    Authenticator,
    ZoneLifecycle,
    disabled_reason,
)
from kmesh.kds._state import Role
from kmesh.kds.events import ConnectionClosed, HelloReceived
from kmesh.kds.messages import DEFAULT_MAX_UNACKED, CloseCode, Hello, Welcome
from kmesh.kds.session import DEFAULT_HANDSHAKE_TIMEOUT_S
from kmesh.kds.sync import CODE_INTERNAL_ERROR, ResourceSync, SyncSettings, TypeSyncStats
from kmesh.kds.transport import KdsConnection
from kmesh.model.types.zone import KDSSubscription, KumaCpVersion, ZoneVersion
from kmesh.store import ChangeEvent, ChangeKind, ResourceStore
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = ["CODE_REPLACED", "CODE_ZONE_DELETED", "CODE_ZONE_DISABLED", "Authenticator", "KdsGlobalServer"]

log = logging.getLogger("kmesh.kds.global")

CODE_REPLACED: Final = "replaced"
CODE_ZONE_DELETED: Final = "zone_deleted"


@dataclass(slots=True)
class _Live:
    zone: str
    conn: KdsConnection
    sync: ResourceSync
    task: asyncio.Task[None]
    sub: KDSSubscription
    written: object = None


@final
class KdsGlobalServer:
    """The KDS server of a global control plane; see the module docstring."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        instance_id: str,
        cp_version: str,
        authenticate: Authenticator | None = None,
        heartbeat_interval_s: float = 5.0,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        insight_interval_s: float = 5.0,
        kept_subscriptions: int = DEFAULT_KEPT_SUBSCRIPTIONS,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        sync_settings: SyncSettings | None = None,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        self._store = store
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._instance_id = instance_id
        self._cp_version = cp_version
        self._authenticate = authenticate
        self._heartbeat_s = heartbeat_interval_s
        self._handshake_s = handshake_timeout_s
        self._insight_s = insight_interval_s
        self._stale_after_s = stale_after_s
        self._max_unacked = max_unacked
        self._max_frame = max_frame_bytes
        self._settings = sync_settings
        self._shutdown_s = shutdown_timeout_s
        self._lifecycle = ZoneLifecycle(
            store, instance_id=instance_id, kept_subscriptions=kept_subscriptions, stale_after_s=stale_after_s
        )
        self._server: asyncio.Server | None = None
        self._live: dict[str, _Live] = {}
        self._conns: LiveConnections[KdsConnection] = LiveConnections(
            shutdown_s=shutdown_timeout_s,
            log=log,
            failure_message="KDS connection failed",
            error_code=CODE_INTERNAL_ERROR,
            error_reason="internal error in the global control plane",
        )
        self._zone_locks: dict[str, asyncio.Lock] = {}
        self._background: list[asyncio.Task[None]] = []

    # -- public ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the real one when configured as 0). Raises RuntimeError before start."""
        if self._server is None:
            raise RuntimeError("the KDS server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    def is_connected(self, zone: str) -> bool:
        """Whether ``zone``'s control plane has a live connection to this server."""
        live = self._live.get(zone)
        return live is not None and not live.conn.closed

    def connected_zones(self) -> list[str]:
        """Zones with a live connection, sorted."""
        return sorted(zone for zone in self._live if self.is_connected(zone))

    def sync(self, zone: str) -> ResourceSync | None:
        """The sync of ``zone``'s live connection (what it completed, its counters), or None."""
        live = self._live.get(zone)
        return None if live is None else live.sync

    def sync_stats(self, zone: str) -> dict[str, TypeSyncStats] | None:
        """Counters per type of ``zone``'s live connection, or None when it has none."""
        live = self._live.get(zone)
        return None if live is None else live.sync.stats()

    def connection(self, zone: str) -> KdsConnection | None:
        """``zone``'s live connection (for metrics: buffered bytes), or None."""
        live = self._live.get(zone)
        return None if live is None else live.conn

    async def start(self) -> None:
        """Close stale subscriptions, then listen. Raises OSError when the address is taken, StoreError."""
        if self._server is not None:
            return
        await self._lifecycle.close_stale({}, starting=True)
        loop = asyncio.get_running_loop()
        watch = self._store.watch()
        self._server = await loop.create_server(
            self._new_connection,
            self._host,
            self._port,
            ssl=self._ssl,
            ssl_handshake_timeout=self._handshake_s,
        )
        self._background = [
            asyncio.create_task(self._watch_zones(watch), name="kds-zone-watch"),
            asyncio.create_task(self._maintain(), name="kds-zone-insights"),
        ]
        log.info("KDS server listening", extra={"address": f"{self._host}:{self.port}"})

    async def stop(self) -> None:
        """Stop listening, close every connection (writing their insights), stop background work."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._conns.close_all(CloseCode.NORMAL, "the global control plane is shutting down")
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await server.wait_closed()
        log.info("KDS server stopped")

    # -- connections ----------------------------------------------------------------------------------------

    def _new_connection(self) -> KdsConnection:
        return KdsConnection(
            Role.GLOBAL,
            max_frame_bytes=self._max_frame,
            max_unacked=self._max_unacked,
            handshake_timeout_s=self._handshake_s,
            on_made=self._on_made,
        )

    def _on_made(self, conn: KdsConnection) -> None:
        self._conns.spawn(conn, self._serve_connection(conn), name=f"kds-conn-{conn.peer}")

    async def _serve_connection(self, conn: KdsConnection) -> None:
        event = await conn.next_event()
        if not isinstance(event, HelloReceived):
            if isinstance(event, ConnectionClosed):
                log.warning(
                    "KDS connection ended before a zone introduced itself",
                    extra={"peer": conn.peer, "code": event.code, "reason": event.reason},
                )
            return
        hello = event.hello
        zone = hello.zone
        refusal = await self._lifecycle.refusal(hello, self._authenticate)
        if refusal is not None:
            code, reason = refusal
            conn.session.reject(code, reason)
            conn.flush()
            log.warning(
                "refused a zone control plane",
                extra={"zone": zone, "peer": conn.peer, "code": code, "reason": reason},
            )
            return
        live = await self._admit(conn, hello)
        if live is None:
            return
        log.info(
            "zone control plane connected",
            extra={"zone": zone, "peer": conn.peer, "zone_instance_id": hello.instance_id},
        )
        try:
            closed = await live.sync.run()
        finally:
            if self._live.get(zone) is live:
                del self._live[zone]
            live.sub = self._snapshot(live, disconnected=True)
            with contextlib.suppress(StoreError):
                await self._lifecycle.write_subscription(zone, live.sub)
        log.info(
            "zone control plane disconnected",
            extra={"zone": zone, "peer": conn.peer, "code": closed.code, "reason": closed.reason},
        )

    async def _admit(self, conn: KdsConnection, hello: Hello) -> _Live | None:
        """Replace an older connection of the zone, create its Zone, welcome it, open its subscription."""
        zone = hello.zone
        async with self._zone_locks.setdefault(zone, asyncio.Lock()):
            old = self._live.get(zone)
            if old is not None:
                old.conn.close(
                    CODE_REPLACED, f"replaced by a newer connection of zone {zone} from {conn.peer}"
                )
                log.info(
                    "replacing the older connection of a zone", extra={"zone": zone, "peer": old.conn.peer}
                )
                await asyncio.wait({old.task}, timeout=self._shutdown_s)
            try:
                enabled = await self._lifecycle.ensure_zone(zone)
            except StoreError as exc:
                reason = f"the global control plane cannot write its store: {exc}"
                conn.session.reject(CODE_STORE_UNAVAILABLE, reason)
                conn.flush()
                return None
            if not enabled:
                conn.session.reject(CODE_ZONE_DISABLED, disabled_reason(zone))
                conn.flush()
                return None
            if conn.closed:
                return None
            task = asyncio.current_task()
            assert task is not None
            now = self._lifecycle.now()
            sub = KDSSubscription(
                id=str(uuid.uuid4()),
                global_instance_id=self._instance_id,
                zone_instance_id=hello.instance_id,
                connect_time=now,
                version=ZoneVersion(kuma_cp=KumaCpVersion(version=hello.cp_version)),
                auth_token_provided=bool(hello.token),
            )
            sync = ResourceSync(conn, self._store, role=Role.GLOBAL, zone=zone, settings=self._settings)
            live = _Live(zone=zone, conn=conn, sync=sync, task=task, sub=sub)
            self._live[zone] = live
            welcome = Welcome(
                global_instance_id=self._instance_id,
                cp_version=self._cp_version,
                heartbeat_interval_s=self._heartbeat_s,
            )
            conn.session.accept(welcome)
            conn.flush()
            with contextlib.suppress(StoreError):
                await self._lifecycle.open_subscription(zone, sub)
            return live

    # -- background -----------------------------------------------------------------------------------------

    def _snapshot(self, live: _Live, *, disconnected: bool = False) -> KDSSubscription:
        return self._lifecycle.refreshed(live.sub, live.sync.stats(), live.sync.last_heartbeat, disconnected)

    async def _maintain(self) -> None:
        """Refresh live subscriptions and close stale ones, every ``insight_interval_s``."""
        last_sweep = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self._insight_s)
            for live in list(self._live.values()):
                # Written only when something a reader sees changed, not on every tick.
                seen = (live.sync.stats(), live.sync.last_heartbeat)
                if seen == live.written or live.conn.closed:
                    continue
                live.sub = self._snapshot(live)
                live.written = seen
                with contextlib.suppress(StoreError):
                    await self._lifecycle.write_subscription(live.zone, live.sub)
            now = asyncio.get_running_loop().time()
            if now - last_sweep >= self._stale_after_s / 2:
                last_sweep = now
                with contextlib.suppress(StoreError):
                    await self._lifecycle.close_stale({z.sub.id: z.zone for z in self._live.values()})

    async def _watch_zones(self, watch: AsyncIterator[ChangeEvent]) -> None:
        async for event in watch:
            if event.kind is ChangeKind.RESYNC or event.key is None:
                zones = list(self._live)
            elif event.key.type == ZONE_TYPE and event.key.name in self._live:
                zones = [event.key.name]
            else:
                continue
            for zone in zones:
                await self._check_zone(zone)

    async def _check_zone(self, zone: str) -> None:
        live = self._live.get(zone)
        if live is None:
            return
        try:
            enabled = await self._lifecycle.zone_enabled(zone)
        except StoreError:
            return
        if enabled is False:
            live.conn.close(CODE_ZONE_DISABLED, f"zone disabled: {disabled_reason(zone)}")
        elif enabled is None:
            live.conn.close(CODE_ZONE_DELETED, f"zone {zone} was deleted on the global control plane")
