"""Fixtures of the store contract suite: every test that takes ``store`` runs on each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kmesh.model import Meta, Resource, ResourceKey
from kmesh.model.types.mesh import MeshSpec
from kmesh.model.types.secret import SecretSpec
from kmesh.store import MemoryStore, SqliteStore
from kmesh.store._base import StoreBase


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Builders:
    """Resources of the two types that exist everywhere: Mesh and Secret."""

    @staticmethod
    def mesh(name: str = "default", *, labels: dict[str, str] | None = None) -> Resource:
        return Resource(meta=Meta(type="Mesh", name=name, labels=labels or {}), spec=MeshSpec())

    @staticmethod
    def secret(
        name: str,
        *,
        mesh: str = "default",
        zone: str = "",
        data: str = "c2VjcmV0",
        labels: dict[str, str] | None = None,
        owner: ResourceKey | None = None,
    ) -> Resource:
        return Resource(
            meta=Meta(type="Secret", name=name, mesh=mesh, zone=zone, labels=labels or {}, owner=owner),
            spec=SecretSpec(data=data),
        )

    @staticmethod
    def secret_key(name: str, *, mesh: str = "default", zone: str = "") -> ResourceKey:
        return ResourceKey("Secret", name, mesh, zone)

    @staticmethod
    def mesh_key(name: str = "default") -> ResourceKey:
        return ResourceKey("Mesh", name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def res() -> Builders:
    return Builders()


StoreFactory = Callable[..., StoreBase]


@pytest.fixture(params=["memory", "sqlite"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> StoreFactory:
    """Makes a store of the parametrized kind (with the manual clock unless told otherwise)."""

    def make(**kwargs: object) -> StoreBase:
        kwargs.setdefault("clock", clock)
        if request.param == "memory":
            return MemoryStore(**kwargs)  # type: ignore[arg-type]
        return SqliteStore(tmp_path / "store" / "kmesh.db", **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[StoreBase]:
    opened = store_factory()
    yield opened
    await opened.close()
