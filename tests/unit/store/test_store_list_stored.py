"""Contract: ``list_stored``, the key-paged listing KDS reads, on every store: the order and filters of
``list``, paging after a key, specs in their stored form, and the same rows from every backend."""

from __future__ import annotations

import pytest

from kmesh.model import decode_spec, encode_spec
from kmesh.store import Create, Delete, MemoryStore
from kmesh.store._base import StoredRow


@pytest.fixture
async def populated(store, res):
    await store.commit([Create(res.mesh("a")), Create(res.mesh("b"))])
    await store.commit(
        [
            Create(res.secret("web-2", mesh="b", labels={"kuma.io/service": "web"})),
            Create(res.secret("web-1", mesh="a", zone="west", data="d2VzdA==")),
            Create(res.secret("web-1", mesh="a", zone="east", labels={"tier": "front"})),
            Create(res.secret("db-1", mesh="a", owner=res.mesh_key("a"))),
            Create(res.secret("WEB-3", mesh="a")),
        ]
    )
    return store


def keys(rows: list[StoredRow]) -> list[tuple[str, str, str]]:
    return [(r.mesh, r.name, r.zone) for r in rows]


async def test_rows_match_list_in_order_and_content(populated):
    rows = await populated.list_stored("Secret")
    listed = (await populated.list("Secret")).items
    assert keys(rows) == [(r.meta.mesh, r.meta.name, r.meta.zone) for r in listed]
    for row, resource in zip(rows, listed, strict=True):
        assert row == StoredRow.of(resource)
        assert row.spec == encode_spec(resource.spec)
        assert decode_spec("Secret", row.spec) == resource.spec
        assert row.modification_time == resource.meta.modification_time.isoformat()


async def test_rows_page_after_a_key_and_filter_by_zone(populated):
    everything = keys(await populated.list_stored("Secret"))
    paged: list[tuple[str, str, str]] = []
    after = None
    while rows := await populated.list_stored("Secret", after=after, limit=2):
        assert len(rows) <= 2
        paged += keys(rows)
        after = keys(rows)[-1]
    assert paged == everything
    assert keys(await populated.list_stored("Secret", zone="")) == [
        ("a", "WEB-3", ""),
        ("a", "db-1", ""),
        ("b", "web-2", ""),
    ]
    assert keys(await populated.list_stored("Secret", after=("a", "web-1", "east"))) == [
        ("a", "web-1", "west"),
        ("b", "web-2", ""),
    ]
    assert await populated.list_stored("Secret", after=("b", "web-2", "")) == []
    assert await populated.list_stored("Nothing") == []


async def test_a_delete_before_the_key_shifts_nothing(populated, res):
    first = await populated.list_stored("Secret", limit=2)
    await populated.commit([Delete(res.secret_key("WEB-3", mesh="a"))])
    rest = await populated.list_stored("Secret", after=keys(first)[-1])
    assert keys(rest) == [("a", "web-1", "east"), ("a", "web-1", "west"), ("b", "web-2", "")]


async def test_a_limit_below_one_is_refused(store):
    with pytest.raises(ValueError, match="limit"):
        await store.list_stored("Secret", limit=0)


async def test_every_backend_reads_the_same_rows(store_factory, res):
    stores = [store_factory()]
    # The parametrized kind beside a MemoryStore on the same clock.
    stores.append(MemoryStore(clock=stores[0]._clock))
    try:
        for s in stores:
            await s.commit([Create(res.mesh("a")), Create(res.secret("x", mesh="a", labels={"k": "v"}))])
        rows = [await s.list_stored("Secret") for s in stores]
        assert rows[0] == rows[1]
    finally:
        for s in stores:
            await s.close()
