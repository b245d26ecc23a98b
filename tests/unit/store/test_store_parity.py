"""Property: the memory and SQLite stores are the same store. Random commits over a small universe of
meshes, secrets, zones and owners must give equal results, equal errors, equal contents and equal events
on both (the rules live once in kmesh.store._plan; this checks that both backends apply them alike)."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmesh.errors import KmeshError
from kmesh.model import Meta, Resource, ResourceKey
from kmesh.model.types.mesh import MeshSpec
from kmesh.model.types.secret import SecretSpec
from kmesh.store import Create, Delete, MemoryStore, ResourceStore, SqliteStore, Update, Upsert, Write

MESHES = ["a", "b"]
NAMES = ["x", "y", "z"]
ZONES = ["", "east"]
NOW = datetime(2024, 5, 1, tzinfo=UTC)

secret_keys = st.builds(
    lambda mesh, name, zone: ResourceKey("Secret", name, mesh, zone),
    st.sampled_from(MESHES),
    st.sampled_from(NAMES),
    st.sampled_from(ZONES),
)
mesh_keys = st.builds(lambda name: ResourceKey("Mesh", name), st.sampled_from(MESHES))
secrets = st.builds(
    lambda key, data, owner, labels: Resource(
        meta=Meta(type="Secret", name=key.name, mesh=key.mesh, zone=key.zone, owner=owner, labels=labels),
        spec=SecretSpec(data=data),
    ),
    secret_keys,
    st.sampled_from(["MQ==", "Mg=="]),
    st.none() | secret_keys | mesh_keys,
    st.sampled_from([{}, {"k": "v"}]),
)
meshes = st.builds(lambda key: Resource(meta=Meta(type="Mesh", name=key.name), spec=MeshSpec()), mesh_keys)
resources = secrets | meshes
versions = st.none() | st.integers(1, 3)
writes = st.one_of(
    st.builds(Create, resources),
    st.builds(Update, resources, versions),
    st.builds(Upsert, resources),
    st.builds(Delete, secret_keys | mesh_keys, versions, st.booleans()),
)
commits = st.lists(st.lists(writes, min_size=1, max_size=4), min_size=1, max_size=12)


async def _outcome(store: ResourceStore, batch: list[Write]) -> list[Resource | None] | type[KmeshError]:
    try:
        return await store.commit(batch)
    except KmeshError as exc:
        return type(exc)


async def _contents(store: ResourceStore) -> dict[str, list[Resource]]:
    return {name: (await store.list(name)).items for name in ("Mesh", "Secret")}


async def _compare(batches: list[list[Write]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryStore(clock=lambda: NOW)
        sqlite = SqliteStore(Path(tmp) / "kmesh.db", clock=lambda: NOW)
        watches = (memory.watch(), sqlite.watch())
        seed: list[Write] = [
            Create(Resource(meta=Meta(type="Mesh", name=name), spec=MeshSpec())) for name in MESHES
        ]
        try:
            for batch in [seed, *batches]:
                assert await _outcome(memory, batch) == await _outcome(sqlite, batch)
                assert await _contents(memory) == await _contents(sqlite)
                assert memory.revision == sqlite.revision
        finally:
            await memory.close()
            await sqlite.close()
        assert [e async for e in watches[0]] == [e async for e in watches[1]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commits)
def test_memory_and_sqlite_agree(batches):
    asyncio.run(_compare(batches))
