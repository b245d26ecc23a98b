"""Large states: thousands of policies committed at once sync completely, and MiB-sized secrets (about
50 MiB in all) sync while the memory each connection holds on its way out stays bounded by its window and
page size, never by the size of the state."""

from __future__ import annotations

import os
from pathlib import Path

from kmesh.kds import SyncSettings
from kmesh.model import ResourceKey
from kmesh.model.types.secret import SecretSpec
from kmesh.store import Create, MemoryStore, ResourceStore, SqliteStore

from .support import Tls, cluster, get, mesh, policy, secret, until

MTP = "MeshTrafficPermission"
MIB = 1024 * 1024


async def _count_is(store: ResourceStore, type_: str, expected: int) -> bool:
    return (await store.list(type_, limit=1)).total == expected


async def test_two_thousand_policies_committed_at_once_sync_completely(tls: Tls, tmp_path: Path) -> None:
    glob = MemoryStore()
    await glob.create(mesh())
    zone_a, zone_b = MemoryStore(), SqliteStore(tmp_path / "zone-b.db")
    try:
        async with cluster(glob, {"zone-a": zone_a, "zone-b": zone_b}, tls) as (server, _):
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _count_is(z, "Mesh", 1), "the mesh in the zone")
            await glob.commit([Create(policy(f"policy-{i:04d}")) for i in range(2000)])
            for zone in (zone_a, zone_b):
                await until(lambda z=zone: _count_is(z, MTP, 2000), "2000 policies in the zone")
            names = {r.meta.name for r in (await zone_b.list(MTP)).items}
            assert names == {f"policy-{i:04d}" for i in range(2000)}
            for name in ("zone-a", "zone-b"):
                stats = server.sync_stats(name)
                assert stats is not None
                # Each policy went out exactly once per zone: coalesced, never resent.
                assert stats[MTP].records_sent == 2000
                assert stats[MTP].chunks_nacked == 0
            # And a zone that connects later gets the whole state in its initial sync.
        zone_c = MemoryStore()
        async with cluster(glob, {"zone-c": zone_c}, tls):
            await until(lambda: _count_is(zone_c, MTP, 2000), "2000 policies in the late zone")
    finally:
        await zone_b.close()


async def test_fifty_mib_of_secrets_sync_with_bounded_memory(tls: Tls) -> None:
    window = 1
    page_bytes = 1 * MIB
    blobs = {f"blob-{i}": os.urandom(4 * MIB + i) for i in range(9)}  # ~5.4 MiB each in base64
    glob = MemoryStore()
    await glob.commit([Create(mesh()), *(Create(secret(name, data)) for name, data in blobs.items())])
    largest = max(
        len(r.spec.data) for r in (await glob.list("Secret")).items if isinstance(r.spec, SecretSpec)
    )
    total = sum(len(data) for data in blobs.values())
    assert total > 36 * MIB  # raw bytes; about 48 MiB on the wire once base64-encoded
    zone_a = MemoryStore()
    settings = SyncSettings(page_bytes=page_bytes)
    async with cluster(glob, {"zone-a": zone_a}, tls, max_unacked=window, sync_settings=settings) as (
        server,
        _,
    ):
        await until(lambda: _count_is(zone_a, "Secret", len(blobs)), "every secret in the zone")
        for name, data in blobs.items():
            stored = await get(zone_a, ResourceKey("Secret", name, "default"))
            assert stored is not None
            assert isinstance(stored.spec, SecretSpec)
            assert stored.spec.value == data
        conn = server.connection("zone-a")
        assert conn is not None
        # Held on the way out at any time: the chunks in flight (window) plus one page waiting, each at
        # most a page of specs plus one record, plus frame and TLS overhead.
        bound = (window + 1) * (page_bytes + largest) + MIB
        assert conn.max_buffered_bytes <= bound
        assert bound < total  # the bound is far below the state: the state was never all in flight
        stats = server.sync_stats("zone-a")
        assert stats is not None
        assert stats["Secret"].records_sent == len(blobs)
