"""``ResourceSync``: the resource exchange of one established KDS connection, for one side, against a store.

The zone client and the global server each run one per connection once the handshake is done::

    sync = ResourceSync(conn, store, role=Role.ZONE, zone="zone-1")
    closed = await sync.run()     # until the connection ends; returns its ConnectionClosed

What flows (generated from the descriptor table) and how resources become records and back, with origin
labels and zone pinning, is :mod:`kmesh.kds._convert`; sending is :mod:`kmesh.kds._publish`; subscribing
and applying received chunks are here.

Rules:

- At start the sync watches the store (before reading it, so no change is missed), then subscribes to
  every type this side receives, announcing ``known`` = record id -> content hash of what it holds of that
  type from this peer. The peer answers with differences only.
- Three tasks that never wait on each other: this one reads events and applies received chunks; the
  publisher sends, paced by the connection's writability; the subscriber lists what this side holds from
  the peer and subscribes, type by type, so the peer's subscriptions are answered while it lists.
- Applying a chunk: every record is checked on its own first (type, id, hash, zone, owner, spec,
  validation: :meth:`~kmesh.kds._convert.RecordMapper.incoming`), and the accepted writes (Upserts, and
  Deletes with ``missing_ok``) go to the store in ONE commit, so a chunk is atomic and costs one SQLite
  transaction. If that commit fails for a write (an InvalidReference: the Mesh or owner it needs is
  missing here), the chunk is split in halves and each half committed again down to the offending writes,
  so one bad record never blocks the others (k bad among n cost O(k log n) commits) and order is kept.
  Refused records are named in the Nack with their reason; the rest are applied. An unavailable store is
  not the peer's fault: nothing is acked and the connection ends.
- Counters per type (:class:`~kmesh.kds._syncbase.TypeSyncStats`) combine the session's chunk counts with
  the records inside them, for ZoneInsight and metrics. ``last_heartbeat`` is the wall-clock time of the
  peer's last heartbeat.
- A store error ends the connection with code ``store_unavailable`` (the peer reconnects later); a bug ends
  it with ``internal_error`` and propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Final, final

from kmesh.errors import AlreadyExists, Conflict, InvalidReference, InvalidResource, NotFound, StoreError
from kmesh.kds._convert import RecordMapper, RecordRefused, received_by
from kmesh.kds._publish import Publisher
from kmesh.kds._state import Role
from kmesh.kds._syncbase import Pager, SyncSettings, TypeCounters, TypeSyncStats
from kmesh.kds.events import (
    Acked,
    ConnectionClosed,
    Drained,
    HeartbeatReceived,
    HelloReceived,
    Nacked,
    Rejected,
    ResourcesReceived,
    SubscriptionRequested,
    Welcomed,
)
from kmesh.kds.records import RecordError
from kmesh.kds.transport import KdsConnection
from kmesh.store import ChangeEvent, Delete, ResourceStore, Upsert, Write

__all__ = ["CODE_INTERNAL_ERROR", "CODE_STORE_UNAVAILABLE", "ResourceSync", "SyncSettings", "TypeSyncStats"]

log = logging.getLogger("kmesh.kds")

CODE_STORE_UNAVAILABLE: Final = "store_unavailable"
CODE_INTERNAL_ERROR: Final = "internal_error"


@final
class ResourceSync:
    """Runs the resource exchange of one established connection; see the module docstring.

    ``zone`` is this control plane's zone (role ZONE) or the zone at the other end (role GLOBAL).
    """

    def __init__(
        self,
        conn: KdsConnection,
        store: ResourceStore,
        *,
        role: Role,
        zone: str,
        settings: SyncSettings | None = None,
    ) -> None:
        self._conn = conn
        self._store = store
        self._role = role
        self._zone = zone
        self._settings = settings or SyncSettings()
        self._mapper = RecordMapper(role, zone)
        self._counters: dict[str, TypeCounters] = {}
        self._publisher = Publisher(conn, store, self._mapper, self._settings, self._counters)
        self._applier = _Applier(store, self._mapper, self._counters)
        self._received_complete: set[str] = set()
        self.last_heartbeat: datetime | None = None

    @property
    def sent_complete(self) -> frozenset[str]:
        """Types whose answer to the peer's subscription went out in full."""
        return self._publisher.complete

    @property
    def received_complete(self) -> frozenset[str]:
        """Types whose answer to this side's subscription arrived in full."""
        return frozenset(self._received_complete)

    def stats(self) -> dict[str, TypeSyncStats]:
        """Counters per type since the connection was established."""
        chunks = self._conn.session.stats
        out: dict[str, TypeSyncStats] = {}
        for type_ in sorted(set(chunks) | set(self._counters)):
            c = chunks.get(type_)
            r = self._counters.get(type_, TypeCounters())
            out[type_] = TypeSyncStats(
                chunks_sent=c.sent if c else 0,
                chunks_acked=c.acked if c else 0,
                chunks_nacked=c.nacked if c else 0,
                chunks_received=c.received if c else 0,
                chunks_acked_here=r.chunks_acked_here,
                chunks_nacked_here=r.chunks_nacked_here,
                records_sent=r.records_sent,
                removals_sent=r.removals_sent,
                records_refused_by_peer=r.records_refused_by_peer,
                records_received=r.records_received,
                removals_received=r.removals_received,
                records_rejected=r.records_rejected,
            )
        return out

    async def run(self) -> ConnectionClosed:
        """Exchange resources until the connection ends; return how it ended. Raises only for bugs, after
        closing the connection."""
        watch = self._store.watch()
        publisher = asyncio.create_task(self._publisher.run(watch), name=f"kds-publish-{self._zone}")
        publisher.add_done_callback(self._helper_done)
        # Subscribing lists everything this side holds from the peer (a zone's whole state, on the global):
        # the peer's own subscriptions are received and answered meanwhile, not after it.
        subscriber = asyncio.create_task(self._subscribe(), name=f"kds-subscribe-{self._zone}")
        subscriber.add_done_callback(functools.partial(self._helper_done, log_bug=False))
        try:
            closed = await self._receive()
            if subscriber.done() and not subscriber.cancelled():
                failure = subscriber.exception()
                if failure is not None and not isinstance(failure, StoreError):
                    raise failure  # a bug: the connection is closed already (_helper_done)
            return closed
        except StoreError as exc:
            self._conn.close(
                CODE_STORE_UNAVAILABLE, f"the {self._role.value} control plane's store failed: {exc}"
            )
            return await self._until_closed()
        except Exception:
            self._conn.close(CODE_INTERNAL_ERROR, f"internal error in the {self._role.value} control plane")
            raise
        finally:
            subscriber.cancel()
            publisher.cancel()
            await asyncio.gather(subscriber, publisher, return_exceptions=True)
            await _close_watch(watch)

    def _helper_done(self, task: asyncio.Task[None], *, log_bug: bool = True) -> None:
        """A failed publisher or subscriber ends the connection (which ends ``_receive``); ``run`` raises a
        subscriber's bug itself."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, StoreError):
            reason = f"the {self._role.value} control plane's store failed: {exc}"
            self._conn.close(CODE_STORE_UNAVAILABLE, reason)
        else:
            if log_bug:
                log.error("KDS publisher failed", exc_info=exc, extra={"zone": self._zone})
            self._conn.close(CODE_INTERNAL_ERROR, f"internal error in the {self._role.value} control plane")

    async def _subscribe(self) -> None:
        for type_ in received_by(self._role):
            known: dict[str, str] = {}
            pager = Pager(self._store, type_, self._mapper.received_scope(type_), self._settings)
            while (page := await pager.next()) is not None:
                for row in page:
                    entry = self._mapper.row_known_entry(row)
                    if entry is not None:
                        known[entry[0]] = entry[1]
            self._conn.session.subscribe(type_, known)
            self._conn.flush()

    async def _receive(self) -> ConnectionClosed:
        conn = self._conn
        while True:
            event = await conn.next_event()
            match event:
                case ResourcesReceived():
                    await self._apply(event)
                case SubscriptionRequested(type=type_, known=known):
                    self._publisher.subscribed(type_, known)
                case Acked():
                    pass  # the session counts it; the mirror was updated when the chunk was sent
                case Nacked(type=type_, errors=errors):
                    self._counters.setdefault(type_, TypeCounters()).records_refused_by_peer += len(errors)
                    first = errors[0] if errors else None
                    log.warning(
                        "the peer refused records",
                        extra={
                            "zone": self._zone,
                            "type": type_,
                            "refused": len(errors),
                            "record": first.id if first else "",
                            "reason": first.reason if first else "",
                        },
                    )
                    self._publisher.refused(type_, errors)
                case HeartbeatReceived():
                    self.last_heartbeat = datetime.now(UTC)
                case ConnectionClosed():
                    return event
                case Drained() | HelloReceived() | Welcomed() | Rejected():
                    # Drained: the publisher waits on the connection's writability instead. The others
                    # belong to the handshake, which the owner finished before starting the sync.
                    pass

    async def _apply(self, chunk: ResourcesReceived) -> None:
        conn = self._conn
        if not self._answerable():
            return  # queued before the end: nobody can be answered, and applying it would be stale
        errors = await self._applier.apply(chunk)
        if not self._answerable():
            return
        counters = self._counters.setdefault(chunk.type, TypeCounters())
        if errors:
            conn.session.nack(chunk.nonce, errors)
            counters.chunks_nacked_here += 1
            log.warning(
                "refused records from the peer",
                extra={
                    "zone": self._zone,
                    "type": chunk.type,
                    "refused": len(errors),
                    "record": errors[0].id,
                    "reason": errors[0].reason,
                },
            )
        else:
            conn.session.ack(chunk.nonce)
            counters.chunks_acked_here += 1
        conn.flush()
        if chunk.last:
            self._received_complete.add(chunk.type)

    def _answerable(self) -> bool:
        # A method, not an inline check: the answer changes across an await.
        return not self._conn.closed

    async def _until_closed(self) -> ConnectionClosed:
        while True:
            event = await self._conn.next_event()
            if isinstance(event, ConnectionClosed):
                return event


async def _close_watch(watch: AsyncIterator[ChangeEvent]) -> None:
    # The store's watch is an async iterator with aclose(); dropping it would also stop it (it is held
    # weakly), but closing says so at once.
    aclose = getattr(watch, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


# Errors that belong to particular writes; anything else (StoreUnavailable) is about the store itself.
_WRITE_ERRORS = (InvalidReference, InvalidResource, AlreadyExists, NotFound, Conflict)


@final
class _Applier:
    """Applies received chunks of one connection to the store."""

    def __init__(self, store: ResourceStore, mapper: RecordMapper, counters: dict[str, TypeCounters]) -> None:
        self._store = store
        self._mapper = mapper
        self._counters = counters

    async def apply(self, chunk: ResourcesReceived) -> list[RecordError]:
        """Apply ``chunk``; return the records refused (empty: ack it). Raises StoreError when the store
        itself fails."""
        writes: list[tuple[str, Write]] = []
        errors: list[RecordError] = []
        for record in chunk.upserts:
            try:
                writes.append((record.id, Upsert(self._mapper.incoming(record, chunk.type))))
            except RecordRefused as exc:
                errors.append(RecordError(id=record.id, reason=str(exc)))
        for rid in chunk.removals:
            try:
                writes.append((rid, Delete(self._mapper.removal_key(rid, chunk.type), missing_ok=True)))
            except RecordRefused as exc:
                errors.append(RecordError(id=rid, reason=str(exc)))
        errors.extend(await self._commit(writes))
        counters = self._counters.setdefault(chunk.type, TypeCounters())
        counters.records_received += len(chunk.upserts)
        counters.removals_received += len(chunk.removals)
        counters.records_rejected += len(errors)
        return errors

    async def _commit(self, writes: Sequence[tuple[str, Write]]) -> list[RecordError]:
        if not writes:
            return []
        try:
            await self._store.commit([write for _, write in writes])
        except _WRITE_ERRORS as exc:
            if len(writes) == 1:
                return [RecordError(id=writes[0][0], reason=_reason(exc))]
            middle = len(writes) // 2
            return await self._commit(writes[:middle]) + await self._commit(writes[middle:])
        return []


def _reason(exc: Exception) -> str:
    return exc.describe() if isinstance(exc, InvalidResource) else str(exc)
