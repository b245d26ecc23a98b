"""``GET /meshes/{mesh}/dataplanes/{name}/_config``: the ProxyConfig a zone CP computes for a Dataplane now.

Kuma answers ``/meshes/{mesh}/dataplanes/{name}/_config`` with the dataplane's Envoy config; kmesh answers
with what its zone control plane would push to that proxy over the DP protocol, as
``{"config": <ProxyConfig>, "notes": [...]}``. The notes (also inside the config) say for people why
something one might expect is missing, e.g. no remote endpoints in a mesh without mTLS.

Rules:
- The config is computed the way the DP server computes it: a :class:`~kmesh.dps._view.StoreView` loaded
  from the store builds the mesh's snapshot and :func:`~kmesh.proxyconfig.generate_sidecar` does the
  rest, so what this endpoint shows is what a proxy connecting now would get. It costs one listing of each
  type the view holds per request: fine for an operator's inspection, and nothing on the proxies' path.
- A standalone control plane serves its proxies as zone :data:`~kmesh.dps.STANDALONE_ZONE` (as its DP
  server does); a zone CP as its own zone.
- A global computes no proxy config (it keeps dataplanes for observability only): it answers 400 naming
  the dataplane's zone (its ``kuma.io/zone``), whose CP to ask instead, or 404 when no zone sent such a
  dataplane. A dataplane that is missing, or in a mesh that is missing, is a 404 on every CP.
"""

from __future__ import annotations

from typing import Final, final

import msgspec
from aiohttp import web

from kmesh.api._responses import ApiError, json_response
from kmesh.api._writes import Mode
from kmesh.dps import STANDALONE_ZONE
from kmesh.dps._view import StoreView
from kmesh.errors import FieldViolation, NotFound
from kmesh.model import LABEL_ZONE, Resource, ResourceKey
from kmesh.proxyconfig import generate_sidecar
from kmesh.store import ResourceStore

__all__ = ["PROXY_CONFIG_PATH", "ProxyConfigEndpoint"]

PROXY_CONFIG_PATH: Final = "/meshes/{mesh}/dataplanes/{name}/_config"
NOT_COMPUTED_HERE: Final = "Proxy config is not computed here"


@final
class ProxyConfigEndpoint:
    """The handler of :data:`PROXY_CONFIG_PATH`; see the module docstring."""

    def __init__(self, store: ResourceStore, mode: Mode, zone: str | None) -> None:
        self._store = store
        self._mode = mode
        self._zone = zone or STANDALONE_ZONE

    async def get(self, request: web.Request) -> web.Response:
        mesh, name = request.match_info["mesh"], request.match_info["name"]
        if self._mode is Mode.GLOBAL:
            raise await self._refusal_on_global(mesh, name)
        view = StoreView(self._store)
        await view.load()
        dataplane = view.get(ResourceKey("Dataplane", name, mesh))
        snapshot = view.snapshot(mesh)
        if snapshot is None:
            raise ApiError(404, "Not found", f"mesh {mesh!r} not found; create it first")
        if dataplane is None:
            raise ApiError(404, "Not found", f"Dataplane {name!r} not found in mesh {mesh!r}")
        try:
            config = generate_sidecar(snapshot, self._zone, dataplane)
        except ValueError as exc:
            # The dataplane claims another zone (its kuma.io/zone label): this CP does not serve it.
            reason = f"cannot compute the config of Dataplane {name!r} in zone {self._zone!r}: {exc}"
            raise ApiError(
                400,
                "Cannot compute proxy config",
                reason,
                invalid_parameters=[FieldViolation("name", reason)],
            ) from None
        return json_response({"config": msgspec.to_builtins(config), "notes": list(config.notes)})

    async def _refusal_on_global(self, mesh: str, name: str) -> ApiError:
        """Why the global does not answer: the zones that have this dataplane, or that none has it."""
        try:
            await self._store.get(ResourceKey("Mesh", mesh))
        except NotFound:
            return ApiError(404, "Not found", f"mesh {mesh!r} not found; create it first")
        page = await self._store.list("Dataplane", mesh=mesh, name_prefix=name)
        zones = sorted({_zone_of(r) for r in page.items if r.meta.name == name})
        if not zones:
            return ApiError(
                404,
                "Not found",
                f"Dataplane {name!r} not found in mesh {mesh!r}; proxy configs are computed by the "
                "dataplane's zone control plane, so ask that zone's CP",
            )
        where = ("zone " if len(zones) == 1 else "zones ") + ", ".join(repr(z) for z in zones)
        reason = (
            f"proxy configs are computed by the dataplane's zone control plane, not the global: "
            f"Dataplane {name!r} of mesh {mesh!r} is in {where}; run "
            f"`kmeshctl inspect dataplane {name} --mesh {mesh} --config` against its zone's control plane"
        )
        return ApiError(400, NOT_COMPUTED_HERE, reason, invalid_parameters=[FieldViolation("zone", reason)])


def _zone_of(resource: Resource) -> str:
    return resource.meta.zone or resource.meta.labels.get(LABEL_ZONE) or "<unknown>"
