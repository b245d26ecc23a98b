"""SQLite-only behaviour: durability across reopen, file modes, schema versions, sharing a file between
store objects, and the translation of sqlite3 errors."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from kmesh.errors import ConfigError, StoreError, StoreUnavailable
from kmesh.store import Create, MemoryStore, SqliteStore, open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_reopen_keeps_resources_versions_times_and_revision(tmp_path, res, clock):
    path = tmp_path / "kmesh.db"
    store = SqliteStore(path, clock=clock)
    await store.create(res.mesh(labels={"env": "prod"}))
    await store.create(res.secret("s", zone="east", owner=res.mesh_key()))
    clock.advance(90)
    updated = await store.update(res.secret("s", zone="east", data="Mg==", owner=res.mesh_key()))
    await store.close()

    reopened = SqliteStore(path, clock=clock)
    try:
        assert reopened.revision == 3
        assert await reopened.get(res.secret_key("s", zone="east")) == updated
        assert (await reopened.get(res.mesh_key())).meta.labels == {"env": "prod"}
        await reopened.create(res.secret("t"))
        assert reopened.revision == 4
        # The owner survived the reopen: deleting the mesh still cascades.
        await reopened.delete(res.mesh_key())
        assert (await reopened.list("Secret")).total == 0
    finally:
        await reopened.close()


async def test_files_are_private_and_the_directory_is_made(tmp_path, res):
    path = tmp_path / "new" / "dir" / "kmesh.db"
    store = SqliteStore(path)
    try:
        await store.create(res.mesh())
        assert _mode(path) == 0o600
        for suffix in ("-wal", "-shm"):
            sidecar = path.with_name(path.name + suffix)
            assert sidecar.exists()
            assert _mode(sidecar) == 0o600
        assert _mode(path.parent) == 0o700
    finally:
        await store.close()


async def test_newer_schema_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "kmesh.db"
    store = SqliteStore(path)
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    conn.close()

    with pytest.raises(StoreError, match="newer kmesh \\(schema version 99; this kmesh knows up to 1\\)"):
        SqliteStore(path)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "kmesh.db"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 40)
    with pytest.raises(StoreError, match="is not a kmesh SQLite store"):
        SqliteStore(path)


async def test_a_damaged_spec_is_a_store_error_naming_the_type(tmp_path, res):
    path = tmp_path / "kmesh.db"
    store = SqliteStore(path)
    try:
        await store.create(res.mesh())
        await store.create(res.secret("s"))
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE resources SET spec = ? WHERE type = 'Secret'", (b'{"data": 7}',))
        conn.close()
        with pytest.raises(StoreError, match="a stored Secret spec does not match its type"):
            await store.get(res.secret_key("s"))
        assert (await store.get(res.mesh_key())).meta.name == "default"
    finally:
        await store.close()


def test_unreachable_path_is_store_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(StoreUnavailable, match="cannot open the SQLite store"):
        SqliteStore(blocker / "kmesh.db")


async def test_failing_fault_hook_rolls_the_commit_back(tmp_path, res):
    def hook(index: int) -> None:
        if index == 2:
            raise OSError("injected")

    store = SqliteStore(tmp_path / "kmesh.db", fault_hook=hook)
    try:
        with pytest.raises(OSError, match="injected"):
            await store.commit([Create(res.mesh()), Create(res.secret("a")), Create(res.secret("b"))])
        assert (await store.list("Mesh")).total == 0
        assert store.revision == 0
        await store.create(res.mesh())  # index 0 only: the hook lets it through
        assert store.revision == 1
    finally:
        await store.close()


class _Pause:
    """A fault hook that holds a commit open at one write until released."""

    def __init__(self, loop: asyncio.AbstractEventLoop, at: int) -> None:
        self._loop = loop
        self._at = at
        self.reached = asyncio.Event()
        self.release = threading.Event()

    def __call__(self, index: int) -> None:
        if index == self._at:
            self._loop.call_soon_threadsafe(self.reached.set)
            # A generous bound so a broken test cannot hang the worker thread for ever.
            self.release.wait(30)


async def test_readers_see_the_store_before_or_after_a_commit_never_during(tmp_path, res):
    path = tmp_path / "kmesh.db"
    pause = _Pause(asyncio.get_running_loop(), at=150)
    writer = SqliteStore(path, fault_hook=pause)
    reader = None
    try:
        await writer.create(res.mesh())
        commit = asyncio.ensure_future(writer.commit([Create(res.secret(f"s-{i:03d}")) for i in range(300)]))
        await pause.reached.wait()

        # Another store opens the file without waiting for the write lock, and reads the last committed
        # state while the transaction is open.
        reader = SqliteStore(path, busy_timeout_s=0.05)
        during = await reader.list("Secret")
        assert during.total == 0
        # The writer's own reads queue behind its commit, so they see all of it.
        own_read = asyncio.ensure_future(writer.list("Secret"))
        pause.release.set()
        await commit
        assert (await own_read).total == 300
        assert (await reader.list("Secret")).total == 300
    finally:
        pause.release.set()
        await writer.close()
        if reader is not None:
            await reader.close()


async def test_a_locked_database_is_store_unavailable(tmp_path, res):
    path = tmp_path / "kmesh.db"
    pause = _Pause(asyncio.get_running_loop(), at=0)
    holder = SqliteStore(path, fault_hook=pause)
    other = SqliteStore(path, busy_timeout_s=0.05)
    try:
        holding = asyncio.ensure_future(holder.create(res.mesh()))
        await pause.reached.wait()
        with pytest.raises(StoreUnavailable, match="locked"):
            await other.create(res.mesh("other"))
        pause.release.set()
        await holding
        # Once the lock is free the other store works, and it sees the shared revision.
        await other.create(res.mesh("other"))
        assert other.revision == 2
    finally:
        pause.release.set()
        await holder.close()
        await other.close()


def test_open_store_makes_each_kind(tmp_path):
    assert isinstance(open_store("memory"), MemoryStore)
    store = open_store("sqlite", path=str(tmp_path / "kmesh.db"))
    assert isinstance(store, SqliteStore)
    asyncio.run(store.close())


@pytest.mark.parametrize(
    ("kind", "path", "message"),
    [
        ("postgres", None, "unknown store type 'postgres': use one of memory, sqlite"),
        ("sqlite", None, "sqlite needs a path"),
        ("sqlite", "", "sqlite needs a path"),
    ],
)
def test_open_store_refuses_bad_settings(kind, path, message):
    with pytest.raises(ConfigError, match=message):
        open_store(kind, path=path)
