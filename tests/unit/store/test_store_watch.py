"""Contract: change events, their order and revisions, RESYNC on overflow, and close, on every store."""

from __future__ import annotations

import asyncio

from kmesh.store import ChangeEvent, ChangeKind, Create, Delete


async def test_events_follow_commits_with_growing_revisions(store, res):
    events = store.watch()  # subscribed from here, before any iteration
    await store.create(res.mesh())
    await store.create(res.secret("s"))
    await store.update(res.secret("s", data="eA=="))
    await store.delete(res.secret_key("s"))

    received = [await anext(events) for _ in range(4)]
    assert [(e.kind, e.key, e.version, e.revision) for e in received] == [
        (ChangeKind.CREATED, res.mesh_key(), 1, 1),
        (ChangeKind.CREATED, res.secret_key("s"), 1, 2),
        (ChangeKind.UPDATED, res.secret_key("s"), 2, 3),
        (ChangeKind.DELETED, res.secret_key("s"), 2, 4),
    ]
    assert store.revision == 4
    assert store.stats()["events_published"] == 4


async def test_watch_sees_only_commits_after_it_started(store, res):
    await store.create(res.mesh())
    events = store.watch()
    await store.create(res.secret("later"))
    event = await anext(events)
    assert (event.key, event.revision) == (res.secret_key("later"), 2)


async def test_every_watcher_gets_every_event(store, res):
    first, second = store.watch(), store.watch()
    await store.commit([Create(res.mesh()), Create(res.secret("s"))])
    for events in (first, second):
        received = [await anext(events) for _ in range(2)]
        assert [e.key for e in received] == [res.mesh_key(), res.secret_key("s")]
    assert store.stats()["watchers"] == 2


async def test_waiting_watcher_wakes_on_commit(store, res):
    events = store.watch()
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    assert not waiting.done()
    await store.create(res.mesh())
    event = await waiting
    assert event.key == res.mesh_key()


async def test_overflowing_watcher_gets_one_resync_instead_of_its_backlog(store_factory, res):
    store = store_factory(watch_queue_size=4)
    try:
        slow, fast = store.watch(), store.watch()
        fast_seen = []
        for i in range(6):
            await store.create(res.mesh(f"m{i}"))
            fast_seen.append(await anext(fast))

        # Commits 1-4 filled the slow queue; commit 5 overflowed it; commit 6 queued after the RESYNC.
        resync = await anext(slow)
        assert (resync.kind, resync.revision, resync.key) == (ChangeKind.RESYNC, 5, None)
        after = await anext(slow)
        assert (after.kind, after.key, after.revision) == (ChangeKind.CREATED, res.mesh_key("m5"), 6)
        assert [e.revision for e in fast_seen] == [1, 2, 3, 4, 5, 6]
        assert store.stats()["watchers_resynced"] == 1
    finally:
        await store.close()


async def test_commit_larger_than_the_queue_is_one_resync(store_factory, res):
    store = store_factory(watch_queue_size=3)
    try:
        events = store.watch()
        await store.commit([Create(res.mesh(f"m{i}")) for i in range(5)])
        await store.create(res.mesh("next"))
        assert [(e.kind, e.revision) for e in [await anext(events), await anext(events)]] == [
            (ChangeKind.RESYNC, 1),
            (ChangeKind.CREATED, 2),
        ]
    finally:
        await store.close()


async def test_close_ends_every_watch_after_its_queued_events(store_factory, res):
    store = store_factory()
    events, partly_read = store.watch(), store.watch()
    await store.commit([Create(res.mesh()), Delete(res.mesh_key())])
    assert (await anext(partly_read)).kind is ChangeKind.CREATED
    await store.close()

    assert [e.kind async for e in events] == [ChangeKind.CREATED, ChangeKind.DELETED]
    assert [e.kind async for e in partly_read] == [ChangeKind.DELETED]


async def test_close_wakes_a_watcher_waiting_on_an_empty_queue(store_factory):
    store = store_factory()
    events = store.watch()

    async def drain() -> list[ChangeEvent]:
        return [e async for e in events]

    consumer = asyncio.ensure_future(drain())
    await asyncio.sleep(0)
    assert not consumer.done()
    await store.close()
    assert await consumer == []


async def test_aclose_stops_one_watch_only(store, res):
    leaving, staying = store.watch(), store.watch()
    await leaving.aclose()
    await store.create(res.mesh())
    assert [e async for e in leaving] == []
    assert (await anext(staying)).key == res.mesh_key()
    assert store.stats()["watchers"] == 1


async def test_noop_commit_publishes_nothing(store, res):
    await store.create(res.mesh())
    events = store.watch()
    await store.upsert(res.mesh())
    await store.create(res.mesh("next"))
    event = await anext(events)
    assert (event.key, event.revision) == (res.mesh_key("next"), 2)
