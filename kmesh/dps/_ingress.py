"""Keeps every local ZoneIngress's ``availableServices`` equal to what this zone's healthy inbounds offer.

Other zones weigh each ingress by these counts (DESIGN.md, "Cross-zone routing"), so they must follow the
dataplanes promptly: the server calls :meth:`AvailableServicesKeeper.refresh` after each coalesced batch of
store changes that touched a Dataplane, a ZoneIngress or a Mesh, never on a timer.

Rules:
- The counts are :func:`kmesh.proxyconfig.available_services` over every Dataplane of this zone in the
  view: per mesh and full effective tag set, the number of healthy inbounds; the same list for every
  local ingress (each serves every mesh of the zone).
- Local ingresses are those whose zone of origin is this zone (``zone_of``); other zones' ingresses, which
  the global relays here, are theirs to keep.
- An ingress is rewritten only when its list differs, with its stored version as the expected one; a
  conflict means it changed meanwhile, and that change triggers another refresh.
"""

from __future__ import annotations

import logging
from typing import final

import msgspec

from kmesh.dps._view import StoreView
from kmesh.errors import Conflict, NotFound, StoreError
from kmesh.model import Resource
from kmesh.model.types import ZoneIngressSpec
from kmesh.model.types.zoneingress import AvailableService
from kmesh.proxyconfig import available_services, zone_of
from kmesh.store import ResourceStore, Update

__all__ = ["AvailableServicesKeeper"]

log = logging.getLogger("kmesh.dps")


@final
class AvailableServicesKeeper:
    """See the module docstring."""

    def __init__(self, store: ResourceStore, view: StoreView, *, zone: str) -> None:
        self._store = store
        self._view = view
        self._zone = zone
        self.writes = 0

    def services(self) -> list[AvailableService]:
        """What every local ingress should advertise now, from the view."""
        return available_services(self._view.of_type("Dataplane"), self._zone)

    def with_services(self, ingress: Resource) -> Resource:
        """``ingress`` (a ZoneIngress) advertising what this zone offers now."""
        spec = ingress.spec
        assert isinstance(spec, ZoneIngressSpec)
        return Resource(
            meta=ingress.meta, spec=msgspec.structs.replace(spec, available_services=self.services())
        )

    async def refresh(self) -> int:
        """Rewrite every local ingress whose list is out of date; return how many were written."""
        wanted = self.services()
        written = 0
        for ingress in self._view.of_type("ZoneIngress"):
            spec = ingress.spec
            if not isinstance(spec, ZoneIngressSpec) or zone_of(ingress, self._zone) != self._zone:
                continue
            if spec.available_services == wanted:
                continue
            updated = Resource(
                meta=ingress.meta, spec=msgspec.structs.replace(spec, available_services=wanted)
            )
            try:
                await self._store.commit([Update(updated, expected_version=ingress.meta.version)])
            except (Conflict, NotFound):
                continue  # changed or gone meanwhile: its change event brings another refresh
            except StoreError as exc:
                log.warning(
                    "could not update a zone ingress's available services",
                    extra={"zone_ingress": ingress.meta.name, "error": str(exc)},
                )
                continue
            written += 1
        self.writes += written
        return written
