"""``MemoryStore``: the ResourceStore kept in dictionaries, for tests and short-lived tools.

Rules:
- It follows the same contract as the SQLite store (the contract suite runs over both), so code tested
  against it behaves the same on disk.
- A commit is planned in full against the current state and applied only when every write passed; the
  apply step is plain dictionary work with no await in it, so a reader sees a commit entirely or not at all.
- Indexes by owner and by mesh make cascades cost the size of what they delete, not of the store.
- Reads return the stored objects themselves (no copy, unlike SQLite): resources are frozen structs, and
  callers must not mutate the dicts and lists inside them either.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import final

from kmesh.errors import NotFound
from kmesh.model import Resource, ResourceKey
from kmesh.store._base import StoreBase, check_window, page
from kmesh.store._common import DEFAULT_WATCH_QUEUE_SIZE, Clock, utc_now
from kmesh.store._plan import Change, CommitPlan
from kmesh.store._protocol import ListPage, Write

__all__ = ["MemoryStore"]


@final
class _State:
    """The committed resources and their indexes; a StateReader for the commit planner."""

    def __init__(self) -> None:
        self.by_type: dict[str, dict[ResourceKey, Resource]] = {}
        self._owned: dict[ResourceKey, set[ResourceKey]] = {}
        self._members: dict[str, set[ResourceKey]] = {}

    def get(self, key: ResourceKey) -> Resource | None:
        return self.by_type.get(key.type, {}).get(key)

    def owned_by(self, owner: ResourceKey) -> Iterable[ResourceKey]:
        return self._owned.get(owner, ())

    def in_mesh(self, mesh: str) -> Iterable[ResourceKey]:
        return self._members.get(mesh, ())

    def apply(self, change: Change) -> None:
        key = change.key
        of_type = self.by_type.setdefault(key.type, {})
        old = of_type.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        if change.resource is None:
            return
        of_type[key] = change.resource
        owner = change.resource.meta.owner
        if owner is not None:
            self._owned.setdefault(owner, set()).add(key)
        if key.mesh:
            self._members.setdefault(key.mesh, set()).add(key)

    def _unindex(self, key: ResourceKey, old: Resource) -> None:
        owner = old.meta.owner
        if owner is not None:
            siblings = self._owned[owner]
            siblings.discard(key)
            if not siblings:
                del self._owned[owner]
        if key.mesh:
            members = self._members[key.mesh]
            members.discard(key)
            if not members:
                del self._members[key.mesh]


@final
class MemoryStore(StoreBase):
    """A ResourceStore in memory. Nothing survives the process."""

    def __init__(self, *, clock: Clock = utc_now, watch_queue_size: int = DEFAULT_WATCH_QUEUE_SIZE) -> None:
        super().__init__(clock=clock, watch_queue_size=watch_queue_size)
        self._state = _State()

    async def get(self, key: ResourceKey) -> Resource:
        """The stored resource. Raises NotFound, or StoreUnavailable once closed."""
        self._ensure_open()
        resource = self._state.get(key)
        if resource is None:
            raise NotFound(f"{key} not found")
        return resource

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
        """Resources of one type matching every filter, ordered by (mesh, name, zone). Raises ValueError
        for a negative offset or a limit below 1, StoreUnavailable once closed."""
        self._ensure_open()
        check_window(offset, limit)
        wanted = dict(labels or {})
        matches = [
            resource
            for key, resource in self._state.by_type.get(type_name, {}).items()
            if (mesh is None or key.mesh == mesh)
            and (zone is None or key.zone == zone)
            and (not name_prefix or key.name.startswith(name_prefix))
            and all(resource.meta.labels.get(k) == v for k, v in wanted.items())
        ]
        matches.sort(key=lambda r: (r.meta.mesh, r.meta.name, r.meta.zone))
        end = None if limit is None else offset + limit
        return page(matches[offset:end], len(matches), offset)

    async def _commit(
        self, writes: builtins.list[Write], now: datetime
    ) -> tuple[builtins.list[Resource | None], CommitPlan, int]:
        plan = CommitPlan(self._state, now, len(writes))
        results = [plan.apply(index, write) for index, write in enumerate(writes)]
        for change in plan.changes:
            self._state.apply(change)
        return results, plan, self._revision + 1 if plan.changes else self._revision

    async def _release(self) -> None:
        self._state = _State()
