"""The commit rules, written once for every store: validation of writes, versions and times, reference
checks and the delete cascade.

A :class:`CommitPlan` applies one commit's writes, in order, to an overlay over the store's current state
(read through :class:`StateReader`), and records each row change as a :class:`Change`. It never touches
storage: the memory store applies the changes once the whole plan succeeded, the SQLite store after each
write inside its open transaction. Either way a failing write raises before anything is made visible, and
the store discards the plan.

Rules (the ``ResourceStore`` contract):
- Create needs a free key (AlreadyExists); Update and Delete need a stored one (NotFound) whose version
  equals ``expected_version`` when given (Conflict). Versions start at 1 and grow by 1.
- A write's shape is checked first (InvalidResource): a registered type, a name, the spec type of the
  descriptor, a mesh exactly when the type is mesh-scoped.
- A mesh-scoped resource needs the Mesh named by its ``mesh`` (the Mesh key ``("Mesh", mesh)``: meshes are
  made on the global control plane, so their zone of origin is always ``""``); an owned resource needs its
  owner, which may not be itself. Both may come from an earlier write of the same commit
  (InvalidReference otherwise).
- Deleting a resource deletes what it owns, transitively; deleting a Mesh also deletes every resource in
  that mesh, whatever its zone. Deletions are listed breadth-first from the deleted key, siblings in key
  order, so the events of a cascade are deterministic.
- An Upsert whose labels, owner and spec equal the stored ones changes nothing.
- Every write of one commit gets the same modification time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, final

from kmesh.errors import (
    AlreadyExists,
    Conflict,
    FieldViolation,
    InvalidReference,
    InvalidResource,
    NotFound,
)
from kmesh.model import Meta, Resource, ResourceKey, descriptor
from kmesh.store._protocol import ChangeKind, Create, Delete, Update, Upsert, Write

__all__ = ["MESH_TYPE", "Change", "CommitPlan", "StateReader"]

MESH_TYPE: Final = "Mesh"


class StateReader(Protocol):
    """Read access to a store's committed state (or, in SQLite, its open transaction)."""

    def get(self, key: ResourceKey) -> Resource | None: ...

    def owned_by(self, owner: ResourceKey) -> Iterable[ResourceKey]:
        """Keys of the resources whose owner is ``owner``."""
        ...

    def in_mesh(self, mesh: str) -> Iterable[ResourceKey]:
        """Keys of every resource whose ``mesh`` is ``mesh``."""
        ...


@final
@dataclass(frozen=True, slots=True)
class Change:
    """One row change: ``resource`` is the stored resource, or None when ``kind`` is DELETED."""

    kind: ChangeKind
    key: ResourceKey
    version: int
    resource: Resource | None


@final
class CommitPlan:
    """Applies one commit's writes to an overlay; ``changes`` lists every row change so far, in order."""

    def __init__(self, reader: StateReader, now: datetime, batch_size: int = 1) -> None:
        self._reader = reader
        self._now = now
        self._batch_size = batch_size
        self._staged: dict[ResourceKey, Resource | None] = {}
        # Indexes of the staged resources only; entries may be stale (deleted, re-owned), so every
        # lookup through them is checked against the overlay.
        self._staged_owned: dict[ResourceKey, set[ResourceKey]] = {}
        self._staged_members: dict[str, set[ResourceKey]] = {}
        self.changes: list[Change] = []
        self._label: str | None = None
        self.unchanged_upserts = 0
        self.cascade_deletes = 0

    def apply(self, index: int, write: Write) -> Resource | None:
        """Apply one write; returns what the store returns for it. Raises the StoreError or
        InvalidResource that the write breaks, naming the write when the commit has several."""
        self._label = f"write {index + 1} of {self._batch_size}" if self._batch_size > 1 else None
        where = f"{self._label}: " if self._label else ""
        match write:
            case Create(resource=resource):
                self._check_shape(resource)
                if self._lookup(resource.key) is not None:
                    raise AlreadyExists(f"{where}{resource.key} already exists")
                self._check_references(resource, where)
                return self._store(ChangeKind.CREATED, resource, 1, self._now)
            case Update(resource=resource, expected_version=expected):
                self._check_shape(resource)
                old = self._existing(resource.key, expected, where)
                self._check_references(resource, where)
                return self._store(ChangeKind.UPDATED, resource, old.meta.version + 1, old.meta.creation_time)
            case Upsert(resource=resource):
                self._check_shape(resource)
                current = self._lookup(resource.key)
                if current is not None and _same_content(current, resource):
                    self.unchanged_upserts += 1
                    return current
                self._check_references(resource, where)
                if current is None:
                    return self._store(ChangeKind.CREATED, resource, 1, self._now)
                return self._store(
                    ChangeKind.UPDATED, resource, current.meta.version + 1, current.meta.creation_time
                )
            case Delete(key=key, expected_version=expected, missing_ok=missing_ok):
                if missing_ok and self._lookup(key) is None:
                    return None
                self._existing(key, expected, where)
                self._cascade(key)
                return None
        raise TypeError(f"not a store write: {write!r}")

    def _lookup(self, key: ResourceKey) -> Resource | None:
        if key in self._staged:
            return self._staged[key]
        return self._reader.get(key)

    def _existing(self, key: ResourceKey, expected: int | None, where: str) -> Resource:
        old = self._lookup(key)
        if old is None:
            raise NotFound(f"{where}{key} not found")
        if expected is not None and old.meta.version != expected:
            raise Conflict(
                f"{where}{key} has version {old.meta.version}, the write expected {expected}: "
                "read it again and retry"
            )
        return old

    def _check_shape(self, resource: Resource) -> None:
        meta = resource.meta
        try:
            desc = descriptor(meta.type)
        except KeyError:
            raise InvalidResource(
                [FieldViolation("type", f"unknown resource type {meta.type!r}")],
                source=self._label,
                resource=str(resource.key),
            ) from None
        violations = []
        if not meta.name:
            violations.append(FieldViolation("name", "must not be empty"))
        if desc.mesh_scoped and not meta.mesh:
            violations.append(FieldViolation("mesh", f"required: {desc.name} is mesh-scoped"))
        if not desc.mesh_scoped and meta.mesh:
            violations.append(FieldViolation("mesh", f"must be empty: {desc.name} is not mesh-scoped"))
        if not isinstance(resource.spec, desc.spec_type):
            violations.append(
                FieldViolation(
                    "spec", f"expected {desc.spec_type.__name__}, got {type(resource.spec).__name__}"
                )
            )
        if violations:
            raise InvalidResource(violations, source=self._label, resource=str(resource.key))

    def _check_references(self, resource: Resource, where: str) -> None:
        meta = resource.meta
        if meta.mesh and self._lookup(ResourceKey(MESH_TYPE, meta.mesh)) is None:
            raise InvalidReference(
                f"{where}{resource.key}: mesh {meta.mesh!r} does not exist; create the Mesh first"
            )
        if meta.owner is not None:
            if meta.owner == resource.key:
                raise InvalidReference(f"{where}{resource.key} cannot own itself")
            if self._lookup(meta.owner) is None:
                raise InvalidReference(f"{where}{resource.key}: its owner {meta.owner} does not exist")

    def _store(
        self, kind: ChangeKind, resource: Resource, version: int, created: datetime | None
    ) -> Resource:
        meta = resource.meta
        stored = Resource(
            meta=Meta(
                type=meta.type,
                name=meta.name,
                mesh=meta.mesh,
                zone=meta.zone,
                # A copy: the caller's dict must not alias the stored one.
                labels=dict(meta.labels),
                version=version,
                creation_time=created or self._now,
                modification_time=self._now,
                owner=meta.owner,
            ),
            spec=resource.spec,
        )
        key = stored.key
        self._staged[key] = stored
        if meta.owner is not None:
            self._staged_owned.setdefault(meta.owner, set()).add(key)
        if meta.mesh:
            self._staged_members.setdefault(meta.mesh, set()).add(key)
        self.changes.append(Change(kind, key, version, stored))
        return stored

    def _dependents(self, key: ResourceKey) -> set[ResourceKey]:
        candidates = set(self._reader.owned_by(key))
        candidates.update(self._staged_owned.get(key, ()))
        found = set()
        for candidate in candidates:
            current = self._lookup(candidate)
            if current is not None and current.meta.owner == key:
                found.add(candidate)
        if key.type == MESH_TYPE and not key.mesh and not key.zone:
            members = set(self._reader.in_mesh(key.name))
            members.update(self._staged_members.get(key.name, ()))
            found.update(m for m in members if self._lookup(m) is not None)
        return found

    def _cascade(self, root: ResourceKey) -> None:
        seen = {root}
        queue = deque([root])
        while queue:
            key = queue.popleft()
            old = self._lookup(key)
            if old is None:  # already deleted through another path of this cascade
                continue
            # Dependents are read before the key is staged as deleted: neither lookup depends on it.
            dependents = self._dependents(key)
            self._staged[key] = None
            self.changes.append(Change(ChangeKind.DELETED, key, old.meta.version, None))
            if key != root:
                self.cascade_deletes += 1
            for dependent in sorted(dependents - seen):
                seen.add(dependent)
                queue.append(dependent)


def _same_content(stored: Resource, resource: Resource) -> bool:
    return (
        stored.meta.labels == resource.meta.labels
        and stored.meta.owner == resource.meta.owner
        and stored.spec == resource.spec
    )
