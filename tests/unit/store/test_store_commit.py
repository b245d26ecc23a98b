"""Contract: commits of several writes are atomic, ordered and serialized, on every store."""

from __future__ import annotations

import asyncio

import pytest

from kmesh.errors import AlreadyExists, Conflict, InvalidReference, StoreUnavailable
from kmesh.store import ChangeKind, Create, Delete, ListPage, Update, Upsert


@pytest.mark.parametrize(
    ("third", "error"),
    [
        ("duplicate", AlreadyExists),
        ("stale", Conflict),
        ("dangling", InvalidReference),
    ],
)
async def test_commit_failing_at_third_write_leaves_nothing(store, res, third, error):
    await store.commit([Create(res.mesh()), Create(res.secret("existing"))])
    revision = store.revision
    events = store.watch()
    failing = {
        "duplicate": Create(res.secret("existing")),
        "stale": Update(res.secret("existing", data="eA=="), expected_version=7),
        "dangling": Create(res.secret("orphan", mesh="missing")),
    }[third]

    with pytest.raises(error, match="write 3 of 4"):
        await store.commit(
            [
                Create(res.secret("first")),
                Update(res.secret("existing", data="Y2hhbmdlZA==")),
                failing,
                Create(res.secret("fourth")),
            ]
        )

    assert [r.meta.name for r in (await store.list("Secret")).items] == ["existing"]
    existing = await store.get(res.secret_key("existing"))
    assert existing.meta.version == 1
    assert store.revision == revision
    # Nothing was published for the failed commit: the next event is the next commit's.
    await store.create(res.secret("after"))
    event = await anext(events)
    assert (event.key, event.revision) == (res.secret_key("after"), revision + 1)


async def test_commit_returns_one_result_per_write_and_one_revision(store, res):
    await store.commit([Create(res.mesh()), Create(res.secret("gone"))])
    events = store.watch()

    results = await store.commit(
        [
            Create(res.secret("a")),
            Update(res.secret("a", data="Mg==")),
            Upsert(res.secret("b")),
            Delete(res.secret_key("gone")),
        ]
    )

    assert [None if r is None else (r.meta.name, r.meta.version) for r in results] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        None,
    ]
    received = [await anext(events) for _ in range(4)]
    assert [(e.kind, e.key.name, e.version, e.revision) for e in received] == [
        (ChangeKind.CREATED, "a", 1, 2),
        (ChangeKind.UPDATED, "a", 2, 2),
        (ChangeKind.CREATED, "b", 1, 2),
        (ChangeKind.DELETED, "gone", 1, 2),
    ]


async def test_empty_commit_changes_nothing(store):
    assert await store.commit([]) == []
    assert store.revision == 0


async def test_transaction_commits_on_clean_exit(store, res):
    async with store.transaction() as tx:
        tx.add(Create(res.mesh()))
        tx.add(Create(res.secret("s")))
        assert (await store.list("Mesh")).total == 0  # nothing is written before the block ends
    assert [r.meta.name for r in tx.results if r is not None] == ["default", "s"]
    assert (await store.get(res.secret_key("s"))).meta.version == 1
    with pytest.raises(RuntimeError, match="already committed"):
        tx.add(Create(res.secret("late")))


async def test_transaction_commits_nothing_when_the_block_raises(store, res):
    seen = []

    async def block() -> None:
        async with store.transaction() as tx:
            seen.append(tx)
            tx.add(Create(res.mesh()))
            raise KeyError("caller bug")

    with pytest.raises(KeyError):
        await block()
    assert (await store.list("Mesh")).total == 0
    assert seen[0].results == []


async def test_transaction_error_propagates_and_rolls_back(store, res):
    async def block() -> None:
        async with store.transaction() as tx:
            tx.add(Create(res.mesh()))
            tx.add(Create(res.secret("s", mesh="other")))

    with pytest.raises(InvalidReference):
        await block()
    assert (await store.list("Mesh")).total == 0


async def test_concurrent_commits_get_distinct_revisions_in_event_order(store, res):
    await store.create(res.mesh())
    events = store.watch()

    await asyncio.gather(*(store.create(res.secret(f"s-{i:02d}")) for i in range(20)))

    received = [await anext(events) for _ in range(20)]
    assert [e.revision for e in received] == list(range(2, 22))
    assert sorted(e.key.name for e in received) == [f"s-{i:02d}" for i in range(20)]
    assert store.revision == 21


async def test_readers_during_a_commit_see_it_whole_or_not_at_all(store, res):
    await store.create(res.mesh())
    batch = [Create(res.secret(f"s-{i:04d}")) for i in range(500)]

    async def count() -> int:
        page: ListPage = await store.list("Secret")
        return page.total

    commit = asyncio.ensure_future(store.commit(batch))
    seen = await asyncio.gather(*(count() for _ in range(30)))
    await commit
    assert set(seen) <= {0, 500}
    assert await count() == 500


async def test_cancelled_caller_does_not_lose_the_event(store, res):
    await store.create(res.mesh())
    events = store.watch()
    commit = asyncio.ensure_future(store.create(res.secret("s")))
    await asyncio.sleep(0)  # let the commit start
    commit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await commit

    event = await anext(events)
    assert (event.kind, event.key) == (ChangeKind.CREATED, res.secret_key("s"))
    assert (await store.get(res.secret_key("s"))).meta.version == 1


async def test_closed_store_refuses_every_call(store_factory, res):
    store = store_factory()
    await store.create(res.mesh())
    await store.close()
    await store.close()  # closing twice is harmless

    with pytest.raises(StoreUnavailable):
        await store.get(res.mesh_key())
    with pytest.raises(StoreUnavailable):
        await store.list("Mesh")
    with pytest.raises(StoreUnavailable):
        await store.create(res.mesh("other"))
    with pytest.raises(StoreUnavailable):
        store.watch()


async def test_close_lets_a_commit_in_flight_finish(store_factory, res):
    store = store_factory()
    await store.create(res.mesh())
    events = store.watch()
    commit = asyncio.ensure_future(store.commit([Create(res.secret(f"s-{i}")) for i in range(50)]))
    await asyncio.sleep(0)
    await store.close()

    results = await commit
    assert len(results) == 50
    received = [event async for event in events]
    assert len(received) == 50
