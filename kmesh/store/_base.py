"""The part of a ResourceStore that does not depend on where resources live: commit serialization, the
revision, event publication, the write shorthands, ``transaction()``, ``watch()``, ``stats()`` and the
closing rules. A backend supplies ``get``, ``list``, ``_commit`` and ``_release``, and may replace
``list_stored``.

Rules:
- Commits run one at a time (an asyncio lock), so revisions and events follow commit order.
- A commit that changes nothing (only no-op upserts and ``missing_ok`` deletes of missing keys) does not
  advance the revision and publishes nothing.
- Once a backend has been asked to commit, the commit runs to its end and its events are published even
  if the caller is cancelled meanwhile: a change must never be stored without being announced.
- ``close()`` lets every commit asked for before it finish, then refuses every call with
  StoreUnavailable and ends every watch.
- ``list_stored`` (not part of the ResourceStore protocol: KDS uses it when the store has it) reads a type
  as :class:`StoredRow` s, pages by key (``after``) rather than by offset and counts nothing, so that a
  full pass over a large type costs one index range per page. A row's ``spec`` is the stored form
  (``encode_spec``), which a backend that keeps encoded specs hands over without decoding them.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import NamedTuple, final

from kmesh.errors import Conflict, StoreError, StoreUnavailable
from kmesh.model import Meta, Resource, ResourceKey
from kmesh.store._common import Clock, Counters, decode_spec, encode_spec, read_clock
from kmesh.store._events import Broadcaster, Subscription
from kmesh.store._plan import CommitPlan
from kmesh.store._protocol import (
    ChangeEvent,
    Create,
    Delete,
    ListPage,
    TransactionBuilder,
    Update,
    Upsert,
    Write,
)

__all__ = ["StoreBase", "StoredRow", "Transaction", "check_window", "page"]

_WRITE_COUNTERS: dict[type, str] = {
    Create: "writes_create",
    Update: "writes_update",
    Upsert: "writes_upsert",
    Delete: "writes_delete",
}


@final
class Transaction:
    """The TransactionBuilder that ``transaction()`` yields."""

    def __init__(self) -> None:
        self.results: list[Resource | None] = []
        self._writes: list[Write] = []
        self._done = False

    def add(self, write: Write) -> None:
        """Queue ``write``. Raises RuntimeError once the transaction has been committed."""
        if self._done:
            raise RuntimeError("this transaction was already committed; start a new one")
        self._writes.append(write)

    def _take(self) -> list[Write]:
        self._done = True
        return self._writes


class StoredRow(NamedTuple):
    """A stored resource as ``list_stored`` reads it: its key, labels and owner, its spec in the stored
    form (the bytes ``encode_spec`` makes, not decoded), and its times as ISO 8601 text."""

    type: str
    mesh: str
    name: str
    zone: str
    version: int
    labels: dict[str, str]
    spec: bytes
    owner: ResourceKey | None
    creation_time: str
    modification_time: str

    @classmethod
    def of(cls, resource: Resource) -> StoredRow:
        """The row of ``resource`` (its spec encoded as the stores keep it)."""
        meta = resource.meta
        return cls(
            meta.type,
            meta.mesh,
            meta.name,
            meta.zone,
            meta.version,
            meta.labels,
            encode_spec(resource.spec),
            meta.owner,
            "" if meta.creation_time is None else meta.creation_time.isoformat(),
            "" if meta.modification_time is None else meta.modification_time.isoformat(),
        )

    def resource(self) -> Resource:
        """The Resource this row holds (the spec decoded, the times parsed)."""
        meta = Meta(
            type=self.type,
            name=self.name,
            mesh=self.mesh,
            zone=self.zone,
            labels=self.labels,
            version=self.version,
            creation_time=datetime.fromisoformat(self.creation_time),
            modification_time=datetime.fromisoformat(self.modification_time),
            owner=self.owner,
        )
        return Resource(meta=meta, spec=decode_spec(self.type, self.spec))


def page(items: builtins.list[Resource], total: int, offset: int) -> ListPage:
    """A ListPage of ``items`` found at ``offset`` among ``total`` matches."""
    end = offset + len(items)
    return ListPage(items=items, total=total, next_offset=end if end < total else None)


def check_window(offset: int, limit: int | None) -> None:
    """Raises ValueError for a negative offset or a limit below 1."""
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, got {offset}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")


class StoreBase(abc.ABC):
    """Shared implementation of ResourceStore; see the module docstring."""

    def __init__(self, *, clock: Clock, watch_queue_size: int) -> None:
        self._clock = clock
        self._events = Broadcaster(watch_queue_size)
        self._counters = Counters()
        self._lock = asyncio.Lock()
        self._in_flight: set[asyncio.Task[builtins.list[Resource | None]]] = set()
        self._revision = 0
        self._closing = False
        self._closed = False

    # -- backend -------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, key: ResourceKey) -> Resource: ...

    @abc.abstractmethod
    async def list(
        self,
        type_name: str,
        *,
        mesh: str | None = None,
        zone: str | None = None,
        labels: Mapping[str, str] | None = None,
        name_prefix: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> ListPage: ...

    async def list_stored(
        self,
        type_name: str,
        *,
        zone: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int | None = None,
    ) -> builtins.list[StoredRow]:
        """Up to ``limit`` resources of one type (of one ``zone`` if given) whose ``(mesh, name, zone)``
        sorts after ``after``, in that order. Raises ValueError for a limit below 1, StoreUnavailable.

        This default lists through ``list`` and encodes the specs; a backend that holds encoded specs
        replaces it with a keyset read.
        """
        check_window(0, limit)
        items = (await self.list(type_name, zone=zone)).items
        start = 0
        if after is not None:
            start = bisect.bisect_right(items, after, key=lambda r: (r.meta.mesh, r.meta.name, r.meta.zone))
        end = None if limit is None else start + limit
        return [StoredRow.of(resource) for resource in items[start:end]]

    @abc.abstractmethod
    async def _commit(
        self, writes: builtins.list[Write], now: datetime
    ) -> tuple[builtins.list[Resource | None], CommitPlan, int]:
        """Apply ``writes`` atomically; returns the results, the plan that was applied and the revision
        after the commit (the current one when nothing changed)."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Release files and connections; called once, with no commit running."""

    # -- shared --------------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    def stats(self) -> dict[str, int]:
        """Counters since the store was opened: commits, writes by kind, conflicts, events published,
        watchers resynced, and the current number of watchers."""
        stats = self._counters.snapshot()
        stats["events_published"] = self._events.published
        stats["watchers_resynced"] = self._events.resynced
        stats["watchers"] = self._events.watchers
        return stats

    def _ensure_open(self) -> None:
        if self._closing:
            raise StoreUnavailable("the store is closed")

    async def commit(self, writes: Sequence[Write]) -> builtins.list[Resource | None]:
        self._ensure_open()
        # A task of its own, shielded, so that cancelling the caller cannot separate a stored change
        # from its event.
        task = asyncio.ensure_future(self._serialized_commit(list(writes)))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[builtins.list[Resource | None]]) -> None:
        self._in_flight.discard(task)
        # The caller may have been cancelled and never see this task's exception; reading it here keeps
        # asyncio from logging "exception was never retrieved" for an error the caller no longer wants.
        if not task.cancelled():
            task.exception()

    async def _serialized_commit(self, writes: builtins.list[Write]) -> builtins.list[Resource | None]:
        async with self._lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            now = read_clock(self._clock)
            try:
                results, plan, revision = await self._commit(writes, now)
            except Conflict:
                self._counters.add("conflicts")
                self._counters.add("commits_failed")
                raise
            except BaseException:
                self._counters.add("commits_failed")
                raise
            self._counters.add("commits")
            for write in writes:
                self._counters.add(_WRITE_COUNTERS[type(write)])
            self._counters.add("upserts_unchanged", plan.unchanged_upserts)
            self._counters.add("cascade_deletes", plan.cascade_deletes)
            if plan.changes:
                self._revision = revision
                self._events.publish([ChangeEvent(c.kind, revision, c.key, c.version) for c in plan.changes])
            return results

    async def create(self, resource: Resource) -> Resource:
        return _stored(await self.commit([Create(resource)]))

    async def update(self, resource: Resource, expected_version: int | None = None) -> Resource:
        return _stored(await self.commit([Update(resource, expected_version)]))

    async def upsert(self, resource: Resource) -> Resource:
        return _stored(await self.commit([Upsert(resource)]))

    async def delete(self, key: ResourceKey, expected_version: int | None = None) -> None:
        await self.commit([Delete(key, expected_version)])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[TransactionBuilder]:
        tx = Transaction()
        # An exception in the block propagates out of this yield, so nothing is committed.
        yield tx
        tx.results = await self.commit(tx._take())

    def watch(self) -> Subscription:
        """Change events committed after this call, until the store closes. Raises StoreUnavailable
        on a closed store."""
        self._ensure_open()
        return self._events.subscribe()

    async def close(self) -> None:
        self._closing = True
        # Commits asked for before close() run to their end; their errors belong to their callers.
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                await self._release()
            finally:
                self._events.close()


def _stored(results: builtins.list[Resource | None]) -> Resource:
    (result,) = results
    if result is None:  # a Create, Update or Upsert always stores something; None is a store bug
        raise StoreError("the store returned no resource for a write")
    return result
