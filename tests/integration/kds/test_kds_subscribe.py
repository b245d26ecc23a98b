"""Subscribing does not hold up the other direction: while one side still lists what it holds from the peer
(a zone's whole state, on the global), the peer's own subscriptions are answered."""

from __future__ import annotations

import asyncio
from typing import Any

from kmesh.model import ResourceKey
from kmesh.store import Create, ListPage, MemoryStore

from .support import Tls, cluster, count, dataplane, get, mesh, policy, until

MTP = "MeshTrafficPermission"


class _HeldListing:
    """A MemoryStore whose listing of one type waits until released. Not a StoreBase, so KDS reads it
    through ``list`` by offset (the path for any ResourceStore)."""

    def __init__(self, held_type: str) -> None:
        self.inner = MemoryStore()
        self.held_type = held_type
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, type_name: str, **filters: Any) -> ListPage:
        if type_name == self.held_type:
            self.reached.set()
            await self.release.wait()
        return await self.inner.list(type_name, **filters)


async def test_the_peers_subscription_is_answered_while_this_side_lists(tls: Tls) -> None:
    held = _HeldListing("Dataplane")
    glob: Any = held  # what the global holds of the zone: the global's Subscribe waits on it
    await glob.commit([Create(mesh()), Create(policy("allow-all"))])
    zone = MemoryStore()
    await zone.commit([Create(mesh()), Create(dataplane("web-1"))])
    try:
        async with cluster(glob, {"zone-a": zone}, tls):
            await asyncio.wait_for(held.reached.wait(), 60)
            # The global has not subscribed to Dataplanes yet, and the zone already holds its policies.
            await until(lambda: _some(zone, MTP), "the global's policy in the zone")
            assert await count(held.inner, "Dataplane") == 0
            held.release.set()
            await until(lambda: _some(held.inner, "Dataplane"), "the zone's dataplane on the global")
            assert await get(held.inner, ResourceKey("Dataplane", "web-1", "default", "zone-a")) is not None
    finally:
        held.release.set()
        await glob.close()
        await zone.close()


async def _some(store: Any, type_: str) -> bool:
    return await count(store, type_) > 0
