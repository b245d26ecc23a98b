"""``SqliteStore``: the embedded default ResourceStore, one SQLite file in WAL mode.

Rules:
- Every sqlite3 call runs on one dedicated worker thread (a single-thread executor): the event loop never
  waits on the disk, and the connection never crosses threads. Calls queue on that thread in order, so a
  read issued during a commit sees the store after it.
- A commit is one executor call: ``BEGIN IMMEDIATE``, each write planned and applied inside the
  transaction, the revision bumped, ``COMMIT``; any error rolls everything back. ``BEGIN IMMEDIATE`` takes
  the write lock up front, so two processes sharing a file serialize instead of failing at COMMIT.
- The revision is read and written inside the transaction, so it stays right when several processes
  share one file; ``revision`` on this object is the value after its own last commit.
- sqlite3 errors are translated here, at the edge: a closed, locked or failing database is
  StoreUnavailable (retry with backoff).
- ``fault_hook`` exists for crash tests: it is called on the worker thread after each write of a commit is
  applied, with the write's index, while the transaction is still open.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, final

from kmesh.errors import NotFound, StoreError, StoreUnavailable
from kmesh.model import Resource, ResourceKey
from kmesh.store._base import StoreBase, StoredRow, check_window, page
from kmesh.store._common import DEFAULT_WATCH_QUEUE_SIZE, Clock, utc_now
from kmesh.store._plan import CommitPlan
from kmesh.store._protocol import ListPage, Write
from kmesh.store._sqlite_schema import (
    COLUMNS,
    KEY_COLUMNS,
    connect,
    resource_params,
    row_to_key,
    row_to_resource,
    row_to_stored,
)

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

_BY_KEY = "type = ? AND mesh = ? AND name = ? AND zone = ?"
_UPSERT_ROW = f"INSERT OR REPLACE INTO resources ({COLUMNS}) VALUES ({', '.join('?' * 13)})"
_DELETE_ROW = f"DELETE FROM resources WHERE {_BY_KEY}"
_SELECT_ROW = f"SELECT {COLUMNS} FROM resources WHERE {_BY_KEY}"
_SELECT_MESH_KEYS = f"SELECT {KEY_COLUMNS} FROM resources WHERE mesh = ? AND mesh != ''"
_LABEL_MATCH = "EXISTS (SELECT 1 FROM json_each(resources.labels) WHERE key = ? AND value = ?)"


def _key_params(key: ResourceKey) -> tuple[str, str, str, str]:
    return (key.type, key.mesh, key.name, key.zone)


@final
class _Reader:
    """The StateReader of an open transaction: it sees the writes already applied in it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, key: ResourceKey) -> Resource | None:
        row = self._conn.execute(_SELECT_ROW, _key_params(key)).fetchone()
        return None if row is None else row_to_resource(row)

    def owned_by(self, owner: ResourceKey) -> Iterable[ResourceKey]:
        rows = self._conn.execute(
            f"SELECT {KEY_COLUMNS} FROM resources "
            "WHERE owner_type = ? AND owner_mesh = ? AND owner_name = ? AND owner_zone = ?",
            _key_params(owner),
        )
        return [row_to_key(row) for row in rows]

    def in_mesh(self, mesh: str) -> Iterable[ResourceKey]:
        # "mesh != ''" lets SQLite use the partial index resources_by_mesh.
        rows = self._conn.execute(_SELECT_MESH_KEYS, (mesh,))
        return [row_to_key(row) for row in rows]


@final
class SqliteStore(StoreBase):
    """A ResourceStore in one SQLite file. The constructor opens it (blocking briefly: it runs once, at
    startup) and raises StoreError for a file that is not a kmesh store or has a newer schema, and
    StoreUnavailable when the file or its directory cannot be made or opened."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = utc_now,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE_SIZE,
        busy_timeout_s: float = 5.0,
        fault_hook: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(clock=clock, watch_queue_size=watch_queue_size)
        self._path = Path(path)
        self._fault_hook = fault_hook
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kmesh-sqlite")
        try:
            # Opening is a one-off at startup, so it may block the caller; it runs on the worker thread
            # like every other call, because the connection belongs to that thread.
            opening = self._executor.submit(connect, self._path, busy_timeout_s)
            self._conn, self._revision = _translated(opening.result)
        except OSError as exc:
            self._executor.shutdown(wait=True)
            raise StoreUnavailable(f"cannot open the SQLite store {self._path}: {exc}") from exc
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    @property
    def path(self) -> Path:
        return self._path

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        # No closed check here: a commit admitted before close() must still reach the disk. Reads check
        # before calling, and the base class keeps commits from starting once the store is closed.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args))
        return await _translated_async(future)

    async def get(self, key: ResourceKey) -> Resource:
        """The stored resource. Raises NotFound, StoreUnavailable."""
        self._ensure_open()
        resource = await self._run(_Reader(self._conn).get, key)
        if resource is None:
            raise NotFound(f"{key} not found")
        return resource

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
    ) -> ListPage:
        """Resources of one type matching every filter, ordered by (mesh, name, zone). Raises ValueError
        for a negative offset or a limit below 1, StoreUnavailable."""
        self._ensure_open()
        check_window(offset, limit)
        where = ["type = ?"]
        params: builtins.list[Any] = [type_name]
        if mesh is not None:
            where.append("mesh = ?")
            params.append(mesh)
        if zone is not None:
            where.append("zone = ?")
            params.append(zone)
        if name_prefix:
            # substr, not LIKE: LIKE is case-insensitive and treats % and _ in names as wildcards.
            where.append("substr(name, 1, ?) = ?")
            params.extend((len(name_prefix), name_prefix))
        for label, value in (labels or {}).items():
            where.append(_LABEL_MATCH)
            params.extend((label, value))
        return await self._run(self._list_sync, " AND ".join(where), params, offset, limit)

    def _list_sync(self, where: str, params: builtins.list[Any], offset: int, limit: int | None) -> ListPage:
        conn = self._conn
        # One read transaction: the count and the page come from the same snapshot even when another
        # process writes the file meanwhile.
        conn.execute("BEGIN")
        try:
            (total,) = conn.execute(f"SELECT count(*) FROM resources WHERE {where}", params).fetchone()
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM resources WHERE {where} ORDER BY mesh, name, zone LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset],
            ).fetchall()
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
        return page([row_to_resource(row) for row in rows], int(total), offset)

    async def list_stored(
        self,
        type_name: str,
        *,
        zone: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int | None = None,
    ) -> builtins.list[StoredRow]:
        """See StoreBase.list_stored: here one keyset range of the primary key, without a count, and the
        specs as stored (never decoded)."""
        self._ensure_open()
        check_window(0, limit)
        where = ["type = ?"]
        params: builtins.list[Any] = [type_name]
        if zone is not None:
            where.append("zone = ?")
            params.append(zone)
        if after is not None:
            # A row value: SQLite seeks the primary key (type, mesh, name, zone) to it.
            where.append("(mesh, name, zone) > (?, ?, ?)")
            params.extend(after)
        params.append(-1 if limit is None else limit)
        sql = f"SELECT {COLUMNS} FROM resources WHERE {' AND '.join(where)} ORDER BY mesh, name, zone LIMIT ?"
        return await self._run(self._list_stored_sync, sql, params)

    def _list_stored_sync(self, sql: str, params: builtins.list[Any]) -> builtins.list[StoredRow]:
        return [row_to_stored(row) for row in self._conn.execute(sql, params).fetchall()]

    async def _commit(
        self, writes: builtins.list[Write], now: datetime
    ) -> tuple[builtins.list[Resource | None], CommitPlan, int]:
        return await self._run(self._commit_sync, writes, now)

    def _commit_sync(
        self, writes: builtins.list[Write], now: datetime
    ) -> tuple[builtins.list[Resource | None], CommitPlan, int]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (revision,) = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
            plan = CommitPlan(_Reader(conn), now, len(writes))
            results = []
            for index, write in enumerate(writes):
                applied = len(plan.changes)
                results.append(plan.apply(index, write))
                for change in plan.changes[applied:]:
                    if change.resource is None:
                        conn.execute(_DELETE_ROW, _key_params(change.key))
                    else:
                        conn.execute(_UPSERT_ROW, resource_params(change.resource))
                if self._fault_hook is not None:
                    self._fault_hook(index)
            if plan.changes:
                revision += 1
                conn.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (revision,))
            conn.execute("COMMIT")
        except BaseException:
            # The original error is what the caller needs; a failing ROLLBACK (the connection is gone)
            # leaves nothing committed either, so it must not replace that error.
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        return results, plan, int(revision)

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await _translated_async(loop.run_in_executor(self._executor, self._conn.close))
        finally:
            # The queue is empty (commits are done, new calls are refused), so this only joins the thread.
            self._executor.shutdown(wait=True)


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"SQLite refused a write the store had checked: {exc}")
    return StoreUnavailable(f"SQLite store unavailable: {exc}")


def _translated(fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except sqlite3.Error as exc:
        raise _translate(exc) from exc


async def _translated_async(future: asyncio.Future[_T]) -> _T:
    try:
        return await future
    except sqlite3.Error as exc:
        raise _translate(exc) from exc
