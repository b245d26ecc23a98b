"""The sending half of a ResourceSync: keeps the peer's copy of every type it subscribed to equal to this
side's store, sending only differences.

Rules:

- A mirror per type holds what the peer holds (record id -> content hash). It starts as the ``known`` of
  the peer's subscription and is updated as chunks are handed to the session. Every send is a diff
  against it: upserts for new or changed records, removals for ids the peer holds that this side no
  longer sends. So after a reconnect unchanged resources are not sent at all.
- Work comes from three places, all non-blocking for their callers: a subscription or a RESYNC from the
  store's watch (recompute the whole type), a change event (recompute that key, after ``coalesce_s`` so a
  burst goes out together), a refused record (recompute that key after a backoff). A change to a ``Zone``
  on the global recomputes the relayed types (another zone's ingresses are sent only while that zone
  exists and is enabled). No polling: without work the loop sleeps.
- One task sends, so a type's chunks never interleave and types go in sync order (Mesh before what is
  inside a mesh). It hands the session a page (``page_records`` records or ``page_bytes`` of specs) only
  while the connection is writable, so memory stays at the window plus one page whatever the state size.
- A full recompute pages through the store by key (a StoreBase) or by offset (any other ResourceStore,
  where a concurrent delete shifts later pages back by one), reading specs as stored: a record is built
  only for a row whose hash differs from the mirror's. Two guards, for offset pages: an id that looked
  gone is fetched again before its removal is sent (a live resource is never removed from the peer), and
  a pass during which a resource of its type was deleted is run again (a resource skipped by the shift
  reaches the peer); the repeat sends only what is still missing.
- A refused (NACKed) id is marked unknown in the mirror, so any later recompute sends it again (or its
  removal), and a retry is scheduled with a doubling backoff up to ``nack_retry_max_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Final, final

from kmesh.errors import NotFound
from kmesh.kds._convert import ZONE_TYPE, RecordMapper, rank, to_other_zones
from kmesh.kds._state import Role
from kmesh.kds._syncbase import Pager, SyncSettings, TypeCounters
from kmesh.kds.records import Record, RecordError
from kmesh.kds.transport import KdsConnection
from kmesh.model import ResourceKey
from kmesh.model.types.zone import ZoneSpec
from kmesh.store import ChangeEvent, ChangeKind, ResourceStore

__all__ = ["Publisher"]

log = logging.getLogger("kmesh.kds")

# The mirror's hash for a record the peer refused: content_hash never returns "", so it always differs.
_UNKNOWN: Final = ""


class _Gone(Exception):
    """The connection closed while the publisher waited to send."""


@dataclass(slots=True)
class _Out:
    upserts: list[Record] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    spec_bytes: int = 0

    def full(self, settings: SyncSettings) -> bool:
        count = len(self.upserts) + len(self.removals)
        return count >= settings.page_records or self.spec_bytes >= settings.page_bytes

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals)


@final
class Publisher:
    """Sends this side's state of every type the peer subscribed to; see the module docstring."""

    def __init__(
        self,
        conn: KdsConnection,
        store: ResourceStore,
        mapper: RecordMapper,
        settings: SyncSettings,
        counters: dict[str, TypeCounters],
    ) -> None:
        self._conn = conn
        self._store = store
        self._mapper = mapper
        self._settings = settings
        self._counters = counters
        self._relayed = frozenset(to_other_zones()) if mapper.role is Role.GLOBAL else frozenset()
        self._mirror: dict[str, dict[str, str]] = {}
        self._complete: set[str] = set()
        self._full: set[str] = set()
        self._keys: set[ResourceKey] = set()
        self._first_key_at: float | None = None
        self._retry_due: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        # The type of the full recompute in progress, and whether one of its resources was deleted since.
        self._listing: str | None = None
        self._shifted = False

    @property
    def complete(self) -> frozenset[str]:
        """Types whose answer to the peer's subscription was sent in full."""
        return frozenset(self._complete)

    # -- inputs (never block) -------------------------------------------------------------------------------

    def subscribed(self, type_: str, known: dict[str, str]) -> None:
        """The peer subscribed to ``type_`` holding ``known``."""
        self._mirror[type_] = dict(known)
        self._full.add(type_)
        self._wake.set()

    def refused(self, type_: str, errors: Iterable[RecordError]) -> None:
        """The peer NACKed these records: mark them unknown and schedule their retry."""
        mirror = self._mirror.get(type_)
        now = self._loop.time()
        unnamed = 0
        for error in errors:
            if not error.id:
                # A Nack too long for one frame sums up the rest; those ids are retried on reconnect.
                unnamed += 1
                continue
            if mirror is not None:
                mirror[error.id] = _UNKNOWN
            attempts = self._attempts[error.id] = self._attempts.get(error.id, 0) + 1
            delay = self._settings.nack_retry_initial_s * 2 ** min(attempts - 1, 30)
            self._retry_due[error.id] = now + min(delay, self._settings.nack_retry_max_s)
        if unnamed:
            log.warning("the peer refused records it did not name", extra={"type": type_})
        self._wake.set()

    def changed(self, event: ChangeEvent) -> None:
        """A committed change of this side's store."""
        key = event.key
        if event.kind is ChangeKind.DELETED and key is not None and key.type == self._listing:
            self._shifted = True
        if event.kind is ChangeKind.RESYNC or key is None:
            self._full.update(self._mirror)
        elif key.type == ZONE_TYPE and self._relayed:
            self._full.update(t for t in self._mirror if t in self._relayed)
        elif key.type in self._mirror and self._mapper.sent_id(key) is not None:
            if not self._keys:
                self._first_key_at = self._loop.time()
            self._keys.add(key)
            if len(self._keys) > self._settings.max_pending_keys:
                # Recomputing whole types costs less than remembering this many keys.
                self._full.update(k.type for k in self._keys)
                self._keys.clear()
        else:
            return
        self._wake.set()

    # -- the send loop --------------------------------------------------------------------------------------

    async def run(self, watch: AsyncIterator[ChangeEvent]) -> None:
        """Send until the connection closes (then return) or the store fails (then raise)."""
        watcher = asyncio.create_task(self._watch(watch), name="kds-watch")
        try:
            while True:
                await self._next_work()
                if self._full:
                    type_ = min(self._full, key=rank)
                    self._full.discard(type_)
                    await self._sync_type(type_)
                elif self._keys:
                    await self._coalesce()
                    await self._sync_keys(self._take_keys())
        except _Gone:
            return
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self, watch: AsyncIterator[ChangeEvent]) -> None:
        async for event in watch:
            self.changed(event)

    async def _next_work(self) -> None:
        while not (self._full or self._keys):
            timeout: float | None = None
            if self._retry_due:
                now = self._loop.time()
                self._take_due_retries(now)
                if self._keys:
                    return
                timeout = min(self._retry_due.values()) - now if self._retry_due else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take_due_retries(self, now: float) -> None:
        for rid, due in list(self._retry_due.items()):
            if due > now:
                continue
            del self._retry_due[rid]
            key = self._mapper.sent_key(rid)
            if key is not None and key.type in self._mirror:
                self._keys.add(key)

    async def _coalesce(self) -> None:
        if self._first_key_at is not None:
            delay = self._first_key_at + self._settings.coalesce_s - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def _take_keys(self) -> list[ResourceKey]:
        batch = list(itertools.islice(self._keys, self._settings.max_batch_keys))
        self._keys.difference_update(batch)
        if not self._keys:
            self._first_key_at = None
        return batch

    # -- computing and sending differences ------------------------------------------------------------------

    async def _sync_type(self, type_: str) -> None:
        """Recompute ``type_`` in full and send every difference, ending with a ``last`` chunk."""
        mirror = self._mirror[type_]
        self._listing, self._shifted = type_, False
        try:
            await self._sync_pass(type_, mirror)
        finally:
            self._listing = None
        if self._shifted:
            self._full.add(type_)
        self._complete.add(type_)

    async def _sync_pass(self, type_: str, mirror: dict[str, str]) -> None:
        enabled = await self._enabled_zones() if type_ in self._relayed else {}
        seen: set[str] = set()
        out = _Out()
        pager = Pager(self._store, type_, self._mapper.sent_scope(type_), self._settings)
        while (page := await pager.next()) is not None:
            for row in page:
                sent = self._mapper.row_sent(row)
                if sent is None:
                    continue
                if type_ in self._relayed and not enabled.get(sent.zone, False):
                    continue
                seen.add(sent.id)
                if mirror.get(sent.id) == sent.hash:
                    continue  # the peer holds it as it is: no record to build (most of a resync)
                self._stage(mirror, sent.id, self._mapper.record_of(row, sent), out)
                if out.full(self._settings):
                    await self._send(type_, out, last=False)
        for rid in [rid for rid in mirror if rid not in seen]:
            key = self._mapper.sent_key(rid)
            record = None if key is None else await self._current(key, enabled)
            self._stage(mirror, rid, record, out)
            if out.full(self._settings):
                await self._send(type_, out, last=False)
        # Always sent, even empty: the last chunk tells the peer its copy is complete.
        await self._send(type_, out, last=True)

    async def _sync_keys(self, keys: list[ResourceKey]) -> None:
        by_type: dict[str, list[ResourceKey]] = {}
        for key in keys:
            by_type.setdefault(key.type, []).append(key)
        enabled: dict[str, bool] = {}
        for type_ in sorted(by_type, key=rank):
            if type_ not in self._complete:
                continue  # its full recompute is still to come and reads the current state
            mirror = self._mirror[type_]
            out = _Out()
            for key in by_type[type_]:
                rid = self._mapper.sent_id(key)
                if rid is None:
                    continue
                self._stage(mirror, rid, await self._current(key, enabled), out)
                if out.full(self._settings):
                    await self._send(type_, out, last=True)
            if out:
                await self._send(type_, out, last=True)

    def _stage(self, mirror: dict[str, str], rid: str, record: Record | None, out: _Out) -> None:
        """Add to ``out`` what the peer needs for ``rid`` to match ``record`` (None: it must not hold it)."""
        if record is None:
            if rid in mirror:
                del mirror[rid]
                out.removals.append(rid)
            self._attempts.pop(rid, None)
            self._retry_due.pop(rid, None)
        elif mirror.get(rid) != record.hash:
            mirror[rid] = record.hash
            out.upserts.append(record)
            out.spec_bytes += len(record.spec)

    async def _current(self, key: ResourceKey, enabled: dict[str, bool]) -> Record | None:
        """The record this side sends now for ``key``, or None if it sends none."""
        try:
            resource = await self._store.get(key)
        except NotFound:
            return None
        record = self._mapper.to_record(resource)
        if record is not None and key.type in self._relayed and not await self._enabled(record.zone, enabled):
            return None
        return record

    async def _enabled_zones(self) -> dict[str, bool]:
        zones = await self._store.list(ZONE_TYPE)
        return {z.meta.name: isinstance(z.spec, ZoneSpec) and z.spec.enabled for z in zones.items}

    async def _enabled(self, zone: str, cache: dict[str, bool]) -> bool:
        if zone not in cache:
            try:
                found = await self._store.get(ResourceKey(ZONE_TYPE, zone))
            except NotFound:
                cache[zone] = False
            else:
                cache[zone] = isinstance(found.spec, ZoneSpec) and found.spec.enabled
        return cache[zone]

    async def _send(self, type_: str, out: _Out, *, last: bool) -> None:
        if not (out or last):
            return
        if not await self._conn.wait_writable():
            raise _Gone
        self._conn.session.send_resources(type_, out.upserts, out.removals, last=last)
        self._conn.flush()
        counters = self._counters.setdefault(type_, TypeCounters())
        counters.records_sent += len(out.upserts)
        counters.removals_sent += len(out.removals)
        out.upserts, out.removals, out.spec_bytes = [], [], 0
