"""``StoreView``: the DP server's in-memory copy of the store state that proxy configs and admission read.

Computing a config for every connected proxy from store queries would cost a listing per proxy per change.
Instead the server keeps one view, loads it once, and applies the keys of each coalesced batch of change
events to it; configs, mesh snapshots and certificate material are then computed from memory.

Rules:
- The view holds the types a proxy's config, certificate or admission depends on: meshes, dataplanes,
  zone ingresses and egresses, zones, secrets (mesh CAs and token keys), global secrets (zone-proxy keys),
  external services and every policy type (the descriptor table's ``policy`` flag). Insights are not held:
  the server writes them on every ack, and they change no config.
- ``apply`` re-reads each changed key (a deleted one leaves the view), so the view converges on the store
  whatever order events arrive in; ``load`` lists everything again (after a watch ``RESYNC``).
- ``snapshot(mesh)`` builds the mesh's :class:`~kmesh.proxyconfig.MeshSnapshot` once per view revision and
  shares it between all proxies of the mesh.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final, final

from kmesh.errors import NotFound
from kmesh.model import Resource, ResourceKey, all_descriptors
from kmesh.model.types import ZoneSpec
from kmesh.proxyconfig import MeshSnapshot
from kmesh.store import ResourceStore

__all__ = ["VIEW_TYPES", "StoreView", "policy_types"]

_BASE_TYPES: Final = (
    "Mesh",
    "Zone",
    "Dataplane",
    "ZoneIngress",
    "ZoneEgress",
    "Secret",
    "GlobalSecret",
    "MeshExternalService",
)


@functools.cache
def policy_types() -> frozenset[str]:
    """Every targetRef policy type, from the descriptor table."""
    return frozenset(d.name for d in all_descriptors() if d.policy)


VIEW_TYPES: Final = frozenset(_BASE_TYPES) | policy_types()


@final
class StoreView:
    """See the module docstring. Every read is synchronous; ``load`` and ``apply`` read the store."""

    def __init__(self, store: ResourceStore) -> None:
        self._store = store
        self._by_type: dict[str, dict[ResourceKey, Resource]] = {t: {} for t in VIEW_TYPES}
        self._snapshots: dict[str, MeshSnapshot | None] = {}
        self.revision = 0

    async def load(self) -> None:
        """List every held type again. Raises StoreError."""
        fresh: dict[str, dict[ResourceKey, Resource]] = {}
        for type_name in VIEW_TYPES:
            page = await self._store.list(type_name)
            fresh[type_name] = {r.key: r for r in page.items}
        self._by_type = fresh
        self._changed()

    async def apply(self, keys: Iterable[ResourceKey]) -> list[ResourceKey]:
        """Re-read ``keys``; return those of held types, which may have changed. Raises StoreError."""
        held = [key for key in keys if key.type in VIEW_TYPES]
        for key in held:
            try:
                self._by_type[key.type][key] = await self._store.get(key)
            except NotFound:
                self._by_type[key.type].pop(key, None)
        if held:
            self._changed()
        return held

    def get(self, key: ResourceKey) -> Resource | None:
        return self._by_type.get(key.type, {}).get(key)

    def of_type(self, type_name: str, *, mesh: str | None = None) -> list[Resource]:
        """Resources of ``type_name`` (in ``mesh`` when given), in key order."""
        items = self._by_type.get(type_name, {})
        return [r for k, r in sorted(items.items()) if mesh is None or k.mesh == mesh]

    def mesh(self, name: str) -> Resource | None:
        return self.get(ResourceKey("Mesh", name))

    def mesh_names(self) -> list[str]:
        return [key.name for key in sorted(self._by_type["Mesh"])]

    def secrets(self, mesh: str) -> list[Resource]:
        """The Secrets of ``mesh``."""
        return self.of_type("Secret", mesh=mesh)

    def global_secrets(self) -> list[Resource]:
        return self.of_type("GlobalSecret")

    def snapshot(self, mesh: str) -> MeshSnapshot | None:
        """The snapshot of ``mesh`` at this revision, or None when the mesh is not here."""
        if mesh not in self._snapshots:
            self._snapshots[mesh] = self._build(mesh)
        return self._snapshots[mesh]

    def snapshots(self) -> list[MeshSnapshot]:
        """The snapshots of every mesh (what zone ingresses and egresses serve)."""
        return [s for name in self.mesh_names() if (s := self.snapshot(name)) is not None]

    def _build(self, mesh: str) -> MeshSnapshot | None:
        mesh_resource = self.mesh(mesh)
        if mesh_resource is None:
            return None
        disabled = frozenset(
            r.meta.name for r in self.of_type("Zone") if isinstance(r.spec, ZoneSpec) and not r.spec.enabled
        )
        policies = tuple(r for t in sorted(policy_types()) for r in self.of_type(t, mesh=mesh))
        return MeshSnapshot(
            mesh=mesh_resource,
            dataplanes=tuple(self.of_type("Dataplane", mesh=mesh)),
            zone_ingresses=tuple(self.of_type("ZoneIngress")),
            zone_egresses=tuple(self.of_type("ZoneEgress")),
            policies=policies,
            external_services=tuple(self.of_type("MeshExternalService", mesh=mesh)),
            disabled_zones=disabled,
        )

    def _changed(self) -> None:
        self._snapshots.clear()
        self.revision += 1
