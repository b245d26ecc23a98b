"""ZoneLifecycle against a memory store: the Zone made once, subscriptions kept newest last and bounded,
older open entries closed when a zone connects again, ZoneInsight counters summed per type and in total."""

from __future__ import annotations

import datetime as dt

import msgspec

from kmesh.kds._lifecycle import ZoneLifecycle, subscription_status
from kmesh.kds._syncbase import TypeSyncStats
from kmesh.model import ResourceKey, new_resource
from kmesh.model.types.zone import KDSSubscription, ZoneInsightSpec, ZoneSpec
from kmesh.store import MemoryStore

T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def sub(id_: str, instance: str = "g-1") -> KDSSubscription:
    return KDSSubscription(id=id_, global_instance_id=instance, connect_time=T0)


async def subscriptions(store: MemoryStore, zone: str) -> list[KDSSubscription]:
    found = await store.get(ResourceKey("ZoneInsight", zone))
    assert isinstance(found.spec, ZoneInsightSpec)
    assert found.meta.owner == ResourceKey("Zone", zone)
    return found.spec.subscriptions


async def test_ensure_zone_creates_it_once_and_reports_enabled() -> None:
    store = MemoryStore()
    lifecycle = ZoneLifecycle(store, instance_id="g-1")
    assert await lifecycle.zone_enabled("z") is None
    assert await lifecycle.ensure_zone("z") is True
    await store.update(new_resource("Zone", "z", ZoneSpec(enabled=False)))
    assert await lifecycle.ensure_zone("z") is False  # an existing Zone is never changed here
    assert (await store.get(ResourceKey("Zone", "z"))).meta.version == 2


async def test_subscriptions_are_bounded_and_older_open_ones_closed() -> None:
    store = MemoryStore()
    clock = Clock()
    lifecycle = ZoneLifecycle(store, instance_id="g-1", kept_subscriptions=2, clock=clock)
    await lifecycle.ensure_zone("z")
    for i in range(3):
        clock.now = T0 + dt.timedelta(minutes=i)
        await lifecycle.open_subscription("z", sub(f"s{i}"))
    subs = await subscriptions(store, "z")
    assert [s.id for s in subs] == ["s1", "s2"]
    assert subs[0].disconnect_time == T0 + dt.timedelta(minutes=2)
    assert subs[1].disconnect_time is None

    updated = msgspec.structs.replace(subs[1], generation=7, last_heartbeat_time=T0)
    await lifecycle.write_subscription("z", updated)
    assert (await subscriptions(store, "z"))[1] == updated


async def test_writes_for_a_deleted_zone_are_dropped() -> None:
    store = MemoryStore()
    lifecycle = ZoneLifecycle(store, instance_id="g-1")
    await lifecycle.ensure_zone("z")
    await lifecycle.open_subscription("z", sub("s0"))
    await store.delete(ResourceKey("Zone", "z"))
    await lifecycle.write_subscription("z", sub("s0"))
    assert (await store.list("ZoneInsight")).total == 0


async def test_stale_entries_of_other_instances_are_closed_after_the_staleness_limit() -> None:
    store = MemoryStore()
    clock = Clock()
    lifecycle = ZoneLifecycle(store, instance_id="g-1", stale_after_s=60, clock=clock)
    await lifecycle.ensure_zone("z")
    await lifecycle.open_subscription("z", sub("theirs", instance="g-2"))
    clock.now = T0 + dt.timedelta(seconds=30)
    assert await lifecycle.close_stale({}) == 0
    clock.now = T0 + dt.timedelta(seconds=61)
    assert await lifecycle.close_stale({}) == 1
    (closed,) = await subscriptions(store, "z")
    assert closed.disconnect_time == clock.now


async def test_own_entries_are_stale_unless_live() -> None:
    store = MemoryStore()
    lifecycle = ZoneLifecycle(store, instance_id="g-1")
    await lifecycle.ensure_zone("z")
    await lifecycle.open_subscription("z", sub("live"))
    assert await lifecycle.close_stale({"live": "z"}) == 0
    assert await lifecycle.close_stale({}) == 1


def test_status_counts_both_directions_per_type_and_in_total() -> None:
    stats = {
        "Mesh": TypeSyncStats(chunks_sent=3, chunks_acked=2, chunks_nacked=1),
        "ZoneIngress": TypeSyncStats(
            chunks_sent=1, chunks_acked=1, chunks_received=4, chunks_acked_here=3, chunks_nacked_here=1
        ),
    }
    status = subscription_status(stats, T0)
    assert status.last_update_time == T0
    assert status.stat["Mesh"].responses_sent == 3
    assert status.stat["Mesh"].responses_rejected == 1
    assert status.stat["ZoneIngress"].responses_sent == 5
    assert status.stat["ZoneIngress"].responses_acknowledged == 4
    assert status.stat["ZoneIngress"].responses_rejected == 1
    assert (
        status.total.responses_sent,
        status.total.responses_acknowledged,
        status.total.responses_rejected,
    ) == (8, 6, 2)
