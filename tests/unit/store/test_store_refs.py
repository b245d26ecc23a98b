"""Contract: references to meshes and owners, and the delete cascade, on every store."""

from __future__ import annotations

import pytest

from kmesh.errors import InvalidReference, NotFound
from kmesh.store import ChangeKind, Create, Delete, ResourceStore, Update


async def all_secrets(store: ResourceStore) -> list[tuple[str, str]]:
    return [(r.meta.mesh, r.meta.name) for r in (await store.list("Secret")).items]


async def test_mesh_scoped_resource_needs_its_mesh(store, res):
    with pytest.raises(InvalidReference, match="mesh 'default' does not exist"):
        await store.create(res.secret("s"))
    with pytest.raises(InvalidReference):
        await store.upsert(res.secret("s"))
    assert await all_secrets(store) == []
    assert store.revision == 0


async def test_mesh_created_earlier_in_the_same_commit_is_enough(store, res):
    results = await store.commit([Create(res.mesh("payments")), Create(res.secret("s", mesh="payments"))])
    assert [r.meta.version for r in results if r is not None] == [1, 1]
    assert await all_secrets(store) == [("payments", "s")]
    assert store.revision == 1


async def test_mesh_created_later_in_the_same_commit_is_too_late(store, res):
    with pytest.raises(InvalidReference, match="write 1 of 2"):
        await store.commit([Create(res.secret("s", mesh="payments")), Create(res.mesh("payments"))])
    assert (await store.list("Mesh")).total == 0


async def test_owner_must_exist(store, res):
    await store.create(res.mesh())
    with pytest.raises(InvalidReference, match="owner"):
        await store.create(res.secret("child", owner=res.secret_key("parent")))
    await store.create(res.secret("parent"))
    child = await store.create(res.secret("child", owner=res.secret_key("parent")))
    assert child.meta.owner == res.secret_key("parent")
    assert (await store.get(res.secret_key("child"))).meta.owner == res.secret_key("parent")


async def test_owner_created_earlier_in_the_same_commit_is_enough(store, res):
    await store.commit(
        [
            Create(res.mesh()),
            Create(res.secret("parent")),
            Create(res.secret("child", owner=res.secret_key("parent"))),
        ]
    )
    assert await all_secrets(store) == [("default", "child"), ("default", "parent")]


async def test_a_resource_cannot_own_itself(store, res):
    await store.create(res.mesh())
    await store.create(res.secret("s"))
    with pytest.raises(InvalidReference, match="cannot own itself"):
        await store.update(res.secret("s", owner=res.secret_key("s")))


async def test_deleting_a_mesh_deletes_its_resources_and_only_those(store, res):
    await store.commit([Create(res.mesh("a")), Create(res.mesh("b"))])
    await store.commit(
        [
            Create(res.secret("s1", mesh="a")),
            Create(res.secret("s2", mesh="a", zone="east")),
            Create(res.secret("s1", mesh="b")),
        ]
    )
    events = store.watch()

    await store.delete(res.mesh_key("a"))

    assert await all_secrets(store) == [("b", "s1")]
    assert [r.meta.name for r in (await store.list("Mesh")).items] == ["b"]
    received = [await anext(events) for _ in range(3)]
    assert [(e.kind, e.key) for e in received] == [
        (ChangeKind.DELETED, res.mesh_key("a")),
        (ChangeKind.DELETED, res.secret_key("s1", mesh="a")),
        (ChangeKind.DELETED, res.secret_key("s2", mesh="a", zone="east")),
    ]
    assert {e.revision for e in received} == {store.revision}
    assert store.stats()["cascade_deletes"] == 2


async def test_deleting_an_owner_deletes_what_it_owns_transitively(store, res):
    await store.create(res.mesh())
    await store.commit(
        [
            Create(res.secret("root")),
            Create(res.secret("child", owner=res.secret_key("root"))),
            Create(res.secret("grandchild", owner=res.secret_key("child"))),
            Create(res.secret("bystander")),
        ]
    )
    events = store.watch()

    await store.delete(res.secret_key("root"))

    assert await all_secrets(store) == [("default", "bystander")]
    received = [await anext(events) for _ in range(3)]
    assert [e.key.name for e in received] == ["root", "child", "grandchild"]
    assert all(e.kind is ChangeKind.DELETED for e in received)


async def test_cascade_follows_owners_across_meshes(store, res):
    await store.commit([Create(res.mesh("a")), Create(res.mesh("b"))])
    await store.commit(
        [
            Create(res.secret("parent", mesh="a")),
            Create(res.secret("child", mesh="b", owner=res.secret_key("parent", mesh="a"))),
        ]
    )
    await store.delete(res.mesh_key("a"))
    assert await all_secrets(store) == []
    assert [r.meta.name for r in (await store.list("Mesh")).items] == ["b"]


async def test_reowned_resource_leaves_its_old_owners_cascade(store, res):
    await store.create(res.mesh())
    await store.commit([Create(res.secret("old")), Create(res.secret("new"))])
    await store.create(res.secret("child", owner=res.secret_key("old")))
    await store.update(res.secret("child", owner=res.secret_key("new")))

    await store.delete(res.secret_key("old"))
    assert await all_secrets(store) == [("default", "child"), ("default", "new")]
    await store.delete(res.secret_key("new"))
    assert await all_secrets(store) == []


async def test_ownership_cycle_is_deleted_once(store, res):
    await store.create(res.mesh())
    await store.commit([Create(res.secret("a")), Create(res.secret("b", owner=res.secret_key("a")))])
    await store.update(res.secret("a", owner=res.secret_key("b")))
    events = store.watch()

    await store.delete(res.secret_key("a"))

    assert await all_secrets(store) == []
    received = [await anext(events) for _ in range(2)]
    assert [e.key.name for e in received] == ["a", "b"]


async def test_cascade_within_a_commit_sees_earlier_writes(store, res):
    await store.create(res.mesh())
    await store.commit(
        [
            Create(res.secret("parent")),
            Create(res.secret("child", owner=res.secret_key("parent"))),
            Delete(res.secret_key("parent")),
        ]
    )
    assert await all_secrets(store) == []
    # Writes after a cascade see it: the child is gone, so updating it is NotFound, atomically.
    await store.commit(
        [Create(res.secret("parent")), Create(res.secret("child", owner=res.secret_key("parent")))]
    )
    with pytest.raises(NotFound, match="write 2 of 2"):
        await store.commit([Delete(res.secret_key("parent")), Update(res.secret("child"))])
    assert await all_secrets(store) == [("default", "child"), ("default", "parent")]


async def test_deleting_a_missing_key_with_missing_ok_changes_nothing(store, res):
    await store.create(res.mesh())
    revision = store.revision
    assert await store.commit([Delete(res.secret_key("ghost"), missing_ok=True)]) == [None]
    assert store.revision == revision
