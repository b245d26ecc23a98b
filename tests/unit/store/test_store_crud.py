"""Contract: single-resource writes, reads, versions, times and identity, on every store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kmesh.errors import AlreadyExists, Conflict, InvalidResource, NotFound
from kmesh.model import Meta, Resource
from kmesh.model.types.mesh import MeshSpec
from kmesh.model.types.secret import SecretSpec


async def test_create_then_get_returns_what_was_stored(store, res, clock):
    await store.create(res.mesh())
    created = await store.create(res.secret("db-password", data="aHVudGVyMg==", labels={"team": "a"}))

    assert created.meta.version == 1
    assert created.meta.creation_time == clock.now
    assert created.meta.modification_time == clock.now
    fetched = await store.get(res.secret_key("db-password"))
    assert fetched == created
    assert fetched.spec == SecretSpec(data="aHVudGVyMg==")
    assert fetched.meta.labels == {"team": "a"}


async def test_store_ignores_version_and_times_given_by_the_caller(store, res, clock):
    forged = Resource(
        meta=Meta(
            type="Mesh",
            name="default",
            version=41,
            creation_time=datetime(2001, 1, 1, tzinfo=UTC),
            modification_time=datetime(2001, 1, 1, tzinfo=UTC),
        ),
        spec=MeshSpec(),
    )
    stored = await store.create(forged)
    assert stored.meta.version == 1
    assert stored.meta.creation_time == clock.now


async def test_create_of_taken_key_is_already_exists(store, res):
    await store.create(res.mesh())
    with pytest.raises(AlreadyExists, match="Mesh 'default' already exists"):
        await store.create(res.mesh())


async def test_get_of_missing_key_is_not_found(store, res):
    with pytest.raises(NotFound, match="Mesh 'nope' not found"):
        await store.get(res.mesh_key("nope"))


async def test_update_bumps_version_keeps_creation_time_and_moves_modification_time(store, res, clock):
    await store.create(res.mesh())
    created_at = clock.now
    first = await store.create(res.secret("s", data="MQ=="))
    modified_at = clock.advance(30)
    second = await store.update(res.secret("s", data="Mg=="), expected_version=1)
    clock.advance(30)
    third = await store.update(res.secret("s", data="Mw=="))

    assert (first.meta.version, second.meta.version, third.meta.version) == (1, 2, 3)
    assert second.meta.creation_time == created_at
    assert third.meta.creation_time == created_at
    assert second.meta.modification_time == modified_at
    assert third.meta.modification_time == clock.now
    assert (await store.get(res.secret_key("s"))).spec == SecretSpec(data="Mw==")


async def test_update_with_stale_version_is_conflict_and_changes_nothing(store, res):
    await store.create(res.mesh())
    await store.create(res.secret("s", data="MQ=="))
    await store.update(res.secret("s", data="Mg=="))

    with pytest.raises(Conflict, match="has version 2, the write expected 1"):
        await store.update(res.secret("s", data="Mw=="), expected_version=1)
    stored = await store.get(res.secret_key("s"))
    assert (stored.meta.version, stored.spec) == (2, SecretSpec(data="Mg=="))
    assert store.stats()["conflicts"] == 1


async def test_update_of_missing_resource_is_not_found(store, res):
    await store.create(res.mesh())
    with pytest.raises(NotFound):
        await store.update(res.secret("ghost"))


async def test_delete_removes_and_checks_version(store, res):
    await store.create(res.mesh())
    await store.create(res.secret("s"))
    await store.update(res.secret("s", data="eA=="))

    with pytest.raises(Conflict):
        await store.delete(res.secret_key("s"), expected_version=1)
    assert (await store.get(res.secret_key("s"))).meta.version == 2

    await store.delete(res.secret_key("s"), expected_version=2)
    with pytest.raises(NotFound):
        await store.get(res.secret_key("s"))
    with pytest.raises(NotFound):
        await store.delete(res.secret_key("s"))


async def test_upsert_creates_then_updates(store, res, clock):
    await store.create(res.mesh())
    created = await store.upsert(res.secret("s", data="MQ=="))
    clock.advance(5)
    updated = await store.upsert(res.secret("s", data="Mg=="))

    assert created.meta.version == 1
    assert updated.meta.version == 2
    assert updated.meta.creation_time == created.meta.creation_time
    assert updated.meta.modification_time == clock.now


async def test_upsert_of_identical_resource_is_a_no_op(store, res, clock):
    await store.create(res.mesh())
    first = await store.upsert(res.secret("s", labels={"a": "1"}))
    revision = store.revision
    events = store.watch()
    clock.advance(60)

    again = await store.upsert(res.secret("s", labels={"a": "1"}))

    assert again.meta.version == 1
    assert again.meta.modification_time == first.meta.modification_time
    assert store.revision == revision
    assert store.stats()["upserts_unchanged"] == 1
    # A label change is a change: version moves and the watcher hears only about that one.
    changed = await store.upsert(res.secret("s", labels={"a": "2"}))
    assert changed.meta.version == 2
    event = await anext(events)
    assert (event.key, event.version, event.revision) == (res.secret_key("s"), 2, revision + 1)


async def test_zone_is_part_of_identity(store, res):
    await store.create(res.mesh())
    east = await store.create(res.secret("web-1", zone="east", data="ZWFzdA=="))
    west = await store.create(res.secret("web-1", zone="west", data="d2VzdA=="))
    local = await store.create(res.secret("web-1", data="bG9jYWw="))

    assert (await store.get(res.secret_key("web-1", zone="east"))).spec == east.spec
    assert (await store.get(res.secret_key("web-1", zone="west"))).spec == west.spec
    assert (await store.get(res.secret_key("web-1"))).spec == local.spec
    await store.delete(res.secret_key("web-1", zone="east"))
    page = await store.list("Secret")
    assert [(r.meta.name, r.meta.zone) for r in page.items] == [("web-1", ""), ("web-1", "west")]


async def test_stored_labels_do_not_alias_the_callers_dict(store, res):
    await store.create(res.mesh())
    labels = {"team": "a"}
    await store.create(res.secret("s", labels=labels))
    labels["team"] = "b"
    assert (await store.get(res.secret_key("s"))).meta.labels == {"team": "a"}


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        (Resource(meta=Meta(type="NoSuchType", name="x"), spec=MeshSpec()), "type"),
        (Resource(meta=Meta(type="Mesh", name=""), spec=MeshSpec()), "name"),
        (Resource(meta=Meta(type="Mesh", name="m", mesh="default"), spec=MeshSpec()), "mesh"),
        (Resource(meta=Meta(type="Secret", name="s"), spec=SecretSpec()), "mesh"),
        (Resource(meta=Meta(type="Mesh", name="m"), spec=SecretSpec()), "spec"),
    ],
    ids=["unknown-type", "empty-name", "mesh-on-global-type", "mesh-missing-on-mesh-type", "wrong-spec"],
)
async def test_malformed_resource_is_invalid_resource(store, resource, field):
    with pytest.raises(InvalidResource) as caught:
        await store.create(resource)
    assert [v.field for v in caught.value.violations] == [field]
    assert store.revision == 0


async def test_naive_clock_is_refused(store_factory, res):
    store = store_factory(clock=lambda: datetime(2024, 1, 1))  # naive on purpose
    try:
        with pytest.raises(ValueError, match="naive"):
            await store.create(res.mesh())
    finally:
        await store.close()


async def test_stats_count_commits_and_writes_by_kind(store, res):
    await store.create(res.mesh())
    await store.upsert(res.secret("a"))
    await store.update(res.secret("a", data="eA=="))
    await store.delete(res.secret_key("a"))
    with pytest.raises(NotFound):
        await store.delete(res.secret_key("a"))

    stats = store.stats()
    assert stats["commits"] == 4
    assert stats["commits_failed"] == 1
    assert (
        stats["writes_create"],
        stats["writes_upsert"],
        stats["writes_update"],
        stats["writes_delete"],
    ) == (
        1,
        1,
        1,
        1,
    )
