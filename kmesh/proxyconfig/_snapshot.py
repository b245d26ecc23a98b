"""``MeshSnapshot``: everything of one mesh that a zone control plane sees, the single input of generation.

Rules:
- A snapshot holds the Mesh and the resources of that mesh visible to the zone CP: its Dataplanes, every
  ZoneIngress it knows (its own and, relayed by the global, the other zones'), its ZoneEgresses, the
  policies and the MeshExternalServices. Generation filters again (by mesh, by zone, by type) rather than
  trusting the caller, so a store query that returns a little too much does no harm.
- The zone a resource belongs to is its zone of origin as KDS stores it (``meta.zone``), else its
  ``kuma.io/zone`` label, else the ``zone`` field of an ingress or egress spec, else this zone: a zone CP
  stores its own resources with zone "" (see ``kmesh.kds._convert``).
- An inbound's effective tags are its tags plus ``kuma.io/zone`` (its dataplane's zone) when missing, as
  Kuma adds it, so policies and outbound subsets can select by zone.
- An inbound is healthy when its ``state`` is Ready, or, with no state, when it has no ``health`` or
  ``health.ready`` is true (Kuma's rule: no health information means healthy). ``Ignored`` inbounds are
  never endpoints.
- ``disabled_zones`` lists zones whose ``Zone`` has ``enabled: false``: the global stops relaying their
  ingresses, and generation also drops any it still holds, so a disabled zone never gets traffic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar, final

import msgspec

from kmesh.model import LABEL_ZONE, Resource, Spec
from kmesh.model.types import (
    DataplaneSpec,
    MeshExternalServiceSpec,
    MeshSpec,
    ZoneEgressSpec,
    ZoneIngressSpec,
)
from kmesh.model.types.dataplane import Inbound

__all__ = [
    "MeshSnapshot",
    "effective_tags",
    "inbound_healthy",
    "zone_of",
]

SpecT = TypeVar("SpecT", bound=Spec)


def zone_of(resource: Resource, local_zone: str) -> str:
    """The zone ``resource`` comes from (see the module rules)."""
    meta = resource.meta
    if meta.zone:
        return meta.zone
    labelled = meta.labels.get(LABEL_ZONE)
    if labelled:
        return labelled
    spec = resource.spec
    if isinstance(spec, ZoneIngressSpec | ZoneEgressSpec) and spec.zone:
        return spec.zone
    return local_zone


def effective_tags(inbound: Inbound, zone: str) -> dict[str, str]:
    """``inbound.tags`` plus ``kuma.io/zone`` when the inbound does not set it, sorted by key."""
    tags = dict(inbound.tags)
    tags.setdefault(LABEL_ZONE, zone)
    return dict(sorted(tags.items()))


def inbound_healthy(inbound: Inbound) -> bool:
    """Whether ``inbound`` may receive traffic (see the module rules)."""
    if inbound.state is not None:
        return inbound.state == "Ready"
    return inbound.health is None or inbound.health.ready


def _typed(resources: Sequence[Resource], type_name: str, spec_type: type[SpecT], mesh: str | None) -> None:
    for resource in resources:
        if resource.meta.type != type_name or not isinstance(resource.spec, spec_type):
            raise ValueError(
                f"expected {type_name} resources, got {resource.meta.type} {resource.meta.name!r}"
            )
        if mesh is not None and resource.meta.mesh != mesh:
            raise ValueError(
                f"{type_name} {resource.meta.name!r} is in mesh {resource.meta.mesh!r}, not {mesh!r}"
            )


@final
class MeshSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The resources of one mesh visible to a zone control plane (see the module rules).

    Raises ValueError on construction when a resource is of the wrong type or in another mesh.
    """

    mesh: Resource
    dataplanes: tuple[Resource, ...] = ()
    zone_ingresses: tuple[Resource, ...] = ()
    zone_egresses: tuple[Resource, ...] = ()
    policies: tuple[Resource, ...] = ()
    external_services: tuple[Resource, ...] = ()
    disabled_zones: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mesh.meta.type != "Mesh" or not isinstance(self.mesh.spec, MeshSpec):
            raise ValueError(f"expected a Mesh, got {self.mesh.meta.type} {self.mesh.meta.name!r}")
        name = self.mesh.meta.name
        _typed(self.dataplanes, "Dataplane", DataplaneSpec, name)
        _typed(self.zone_ingresses, "ZoneIngress", ZoneIngressSpec, None)
        _typed(self.zone_egresses, "ZoneEgress", ZoneEgressSpec, None)
        _typed(self.external_services, "MeshExternalService", MeshExternalServiceSpec, name)
        for policy in self.policies:
            if policy.meta.mesh != name:
                raise ValueError(f"{policy.meta.type} {policy.meta.name!r} is not in mesh {name!r}")

    @property
    def name(self) -> str:
        return self.mesh.meta.name

    @property
    def spec(self) -> MeshSpec:
        spec = self.mesh.spec
        assert isinstance(spec, MeshSpec)  # checked in __post_init__
        return spec

    @property
    def mtls(self) -> bool:
        """Whether the mesh has an enabled mTLS backend."""
        return self.spec.mtls_backend is not None

    def local_dataplanes(self, zone: str) -> Iterator[tuple[Resource, DataplaneSpec]]:
        """The dataplanes of ``zone``, sorted by name."""
        for resource in sorted(self.dataplanes, key=lambda r: r.meta.name):
            if zone_of(resource, zone) == zone:
                assert isinstance(resource.spec, DataplaneSpec)
                yield resource, resource.spec

    def policies_of(self, type_name: str, spec_type: type[SpecT]) -> list[tuple[Resource, SpecT]]:
        """The policies of ``type_name``, each with its spec typed as ``spec_type``."""
        found: list[tuple[Resource, SpecT]] = []
        for resource in self.policies:
            spec = resource.spec
            if resource.meta.type == type_name and isinstance(spec, spec_type):
                found.append((resource, spec))
        return found
