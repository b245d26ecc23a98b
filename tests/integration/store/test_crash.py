"""The SQLite store survives SIGKILL: a commit is all there or not there at all, with a real child process
killed in the middle of its transaction (see crash_child.py)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from kmesh.model import Meta, Resource, ResourceKey
from kmesh.model.types.secret import SecretSpec
from kmesh.store import SqliteStore

CHILD = Path(__file__).with_name("crash_child.py")
BATCH_SIZE = 1000  # crash_child.BATCH_SIZE: the child runs as a script, so it is not imported
# Mesh default and other, s-00..s-19, owner, owned-0..2, o-0..o-4.
BASELINE_COUNTS = {"Mesh": 2, "Secret": 29}
# Bounds a broken child, not the test's expectations: a healthy one answers well within it.
LINE_TIMEOUT_S = 120


def secret(name: str) -> Resource:
    return Resource(meta=Meta(type="Secret", name=name, mesh="default"), spec=SecretSpec(data="eA=="))


async def start_child(path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def expect_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT_S)).decode().strip()
    if not line.startswith(prefix):
        proc.kill()
        await proc.wait()
        stderr = await proc.stderr.read() if proc.stderr else b""
        pytest.fail(f"child said {line!r}, expected {prefix!r}; stderr:\n{stderr.decode()}")
    return line


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL


async def snapshot(store: SqliteStore) -> dict[str, list[Resource]]:
    return {type_name: (await store.list(type_name)).items for type_name in BASELINE_COUNTS}


@pytest.mark.parametrize("index", [0, 1, 500, BATCH_SIZE - 1], ids=lambda i: f"write-{i}")
async def test_kill_inside_a_commit_leaves_the_baseline_intact(tmp_path, index):
    path = tmp_path / "kmesh.db"
    proc = await start_child(path, "mid", str(index))
    try:
        baseline_revision = int((await expect_line(proc, "BASELINE ")).split()[1])
        await expect_line(proc, "MID")
        # Another connection reads the committed state while the child holds its transaction open.
        observer = SqliteStore(path)
        try:
            before = await snapshot(observer)
        finally:
            await observer.close()
    finally:
        await kill(proc)

    reopened = SqliteStore(path)
    try:
        assert reopened.revision == baseline_revision
        after = await snapshot(reopened)
        assert after == before
        assert {name: len(items) for name, items in after.items()} == BASELINE_COUNTS
        assert not any(r.meta.name.startswith("batch-") for r in after["Secret"])
        versions = {r.meta.name: r.meta.version for r in after["Secret"]}
        assert (versions["s-00"], versions["s-01"]) == (1, 2)
        # Still writable, and the revision continues from the baseline.
        await reopened.create(secret("after-crash"))
        assert reopened.revision == baseline_revision + 1
        assert (await reopened.get(ResourceKey("Secret", "after-crash", "default"))).meta.version == 1
    finally:
        await reopened.close()


async def test_kill_between_commits_keeps_the_committed_batch_whole(tmp_path):
    path = tmp_path / "kmesh.db"
    proc = await start_child(path, "between")
    try:
        baseline_revision = int((await expect_line(proc, "BASELINE ")).split()[1])
        committed_revision = int((await expect_line(proc, "COMMITTED ")).split()[1])
    finally:
        await kill(proc)

    reopened = SqliteStore(path)
    try:
        assert committed_revision == baseline_revision + 1
        assert reopened.revision == committed_revision
        first = await reopened.list("Secret", mesh="other", name_prefix="first-")
        assert first.total == 200
        assert {r.meta.version for r in first.items} == {1}
        assert (await reopened.list("Secret")).total == BASELINE_COUNTS["Secret"] + 200
        await reopened.delete(ResourceKey("Mesh", "other"))
        assert (await reopened.list("Secret", mesh="other")).total == 0
    finally:
        await reopened.close()
