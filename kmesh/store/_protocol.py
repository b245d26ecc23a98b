"""The ``ResourceStore`` protocol: the one seam between control-plane logic and its storage.

Every write goes through :meth:`ResourceStore.commit`, which applies a list of writes atomically (one SQL
transaction in SQLite and PostgreSQL), so a KDS batch or a cascade is never half applied. After a commit
the store publishes one :class:`ChangeEvent` per changed resource, in commit order, to every watcher;
``revision`` is a store-wide counter that grows with each commit, so a watcher can tell what it missed.

Rules every implementation keeps (the contract suite in ``tests/unit/store`` checks them):
- ``version`` starts at 1 on create and grows by 1 on each update; an update or delete with
  ``expected_version`` set fails with ``Conflict`` when the stored version differs.
- A mesh-scoped resource needs its Mesh (the key ``("Mesh", mesh)``, zone ``""``) to exist (already, or
  earlier in the same commit), else ``InvalidReference``; an owned resource likewise needs its owner.
- Deleting a resource deletes, in the same commit, every resource it owns, transitively; deleting a
  Mesh deletes every resource in that mesh.
- ``creation_time`` is kept across updates; ``modification_time`` changes on each update.
- A commit that changes nothing (only no-op upserts, ``missing_ok`` deletes of missing keys) does not
  advance ``revision`` and publishes no event.
- A watcher that falls too far behind gets one ``ChangeEvent`` with ``kind=RESYNC`` instead of the
  events it missed, and must list again.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, final

import msgspec

from kmesh.model import Resource, ResourceKey

__all__ = [
    "ChangeEvent",
    "ChangeKind",
    "Create",
    "Delete",
    "ListPage",
    "ResourceStore",
    "TransactionBuilder",
    "Update",
    "Upsert",
    "Write",
]


@final
class Create(msgspec.Struct, frozen=True):
    """Create ``resource``; fails with AlreadyExists if its key is taken."""

    resource: Resource


@final
class Update(msgspec.Struct, frozen=True):
    """Replace ``resource``'s labels and spec; fails with NotFound, or Conflict on a version mismatch."""

    resource: Resource
    expected_version: int | None = None


@final
class Upsert(msgspec.Struct, frozen=True):
    """Create or replace without a version check (what a sync from another control plane does).

    An upsert whose labels, owner and spec equal the stored ones is a no-op: the version and
    modification time stay, and no event is published.
    """

    resource: Resource


@final
class Delete(msgspec.Struct, frozen=True):
    """Delete ``key`` and everything it owns; fails with NotFound unless ``missing_ok``."""

    key: ResourceKey
    expected_version: int | None = None
    missing_ok: bool = False


Write = Create | Update | Upsert | Delete


class ChangeKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    RESYNC = "resync"


@final
class ChangeEvent(msgspec.Struct, frozen=True):
    """One committed change. ``key`` is None only for RESYNC."""

    kind: ChangeKind
    revision: int
    key: ResourceKey | None = None
    version: int = 0


@final
class ListPage(msgspec.Struct, frozen=True):
    """One page of a listing, ordered by (mesh, name, zone). ``next_offset`` is None on the last page."""

    items: list[Resource]
    total: int
    next_offset: int | None = None


class ResourceStore(Protocol):
    """Where a control plane keeps its resources. All methods may raise StoreUnavailable."""

    async def get(self, key: ResourceKey) -> Resource:
        """The stored resource. Raises NotFound."""
        ...

    async def list(
        self,
        type_name: str,
        *,
        mesh: str | None = None,
        zone: str | None = None,
        labels: Mapping[str, str] | None = None,
        name_prefix: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> ListPage:
        """Resources of one type matching every filter given (labels: all pairs must match)."""
        ...

    async def commit(self, writes: Sequence[Write]) -> builtins.list[Resource | None]:
        """Apply ``writes`` atomically, in order; all or nothing.

        Returns, per write, the stored resource (None for a delete). Raises the first StoreError met,
        after rolling back everything.
        """
        ...

    async def create(self, resource: Resource) -> Resource:
        """Shorthand for one Create. Raises AlreadyExists, InvalidReference."""
        ...

    async def update(self, resource: Resource, expected_version: int | None = None) -> Resource:
        """Shorthand for one Update. Raises NotFound, Conflict, InvalidReference."""
        ...

    async def upsert(self, resource: Resource) -> Resource:
        """Shorthand for one Upsert. Raises InvalidReference."""
        ...

    async def delete(self, key: ResourceKey, expected_version: int | None = None) -> None:
        """Shorthand for one Delete (with cascade). Raises NotFound, Conflict."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[TransactionBuilder]:
        """Collect writes in a block and commit them together when it exits without an exception."""
        ...

    def watch(self) -> AsyncIterator[ChangeEvent]:
        """Change events committed after this call, until the store closes."""
        ...

    @property
    def revision(self) -> int:
        """The revision of the last commit (0 for an empty store)."""
        ...

    async def close(self) -> None:
        """Finish in-flight commits, end every watch, release files and connections."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters since the store was opened (commits, writes by kind, conflicts, events published,
        watchers resynced, ...), for metrics."""
        ...


class TransactionBuilder(Protocol):
    """The writes gathered inside ``store.transaction()``; ``results`` is filled after the commit."""

    results: list[Resource | None]

    def add(self, write: Write) -> None: ...
