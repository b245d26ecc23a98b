"""The fixed endpoints: ``/`` (who is serving), ``/global-insight`` (counts) and ``/config``.

``/global-insight`` follows Kuma's shape (``meshes``, ``dataplanes``, ``policies``, ``zones``,
``resources``, ``createdAt``) and is computed from the store on each request: one count per type, and one
full listing of dataplanes, zones and their insights to tell online from offline. That is O(proxies) per
request, fine for a dashboard's polling; a cache can sit in front of it when fleets grow.

Online means what Kuma means: the insight's newest subscription (a connection to a control plane) has no
``disconnectTime`` yet. A dataplane without an insight has never connected and is
offline. A zone is online when its ``ZoneInsight`` is and the zone is not disabled (``enabled: false``),
since a disabled zone's traffic is not routed however connected its CP is.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from kmesh._version import __version__
from kmesh.api._responses import dumps, json_response
from kmesh.api._writes import Mode
from kmesh.model import Resource, ResourceKey, Spec, all_descriptors
from kmesh.store import ResourceStore

__all__ = ["FixedEndpoints", "is_online", "summarize"]

BASED_ON_KUMA: Final = "2.x"


def is_online(spec: Spec) -> bool:
    """Whether an insight spec's newest subscription (the last one) is live."""
    subscriptions: Sequence[object] = getattr(spec, "subscriptions", None) or ()
    return bool(subscriptions) and getattr(subscriptions[-1], "disconnect_time", None) is None


async def _all(store: ResourceStore, type_name: str) -> list[Resource]:
    return (await store.list(type_name)).items


async def _online_keys(store: ResourceStore, insight_type: str, of_type: str) -> set[ResourceKey]:
    """Keys (as ``of_type``) of the resources whose ``insight_type`` insight is online."""
    return {
        ResourceKey(of_type, r.meta.name, r.meta.mesh, r.meta.zone)
        for r in await _all(store, insight_type)
        if is_online(r.spec)
    }


async def _online_total(store: ResourceStore, type_name: str, known: set[str]) -> dict[str, int]:
    """``{"online", "offline", "total"}`` of a type whose ``<type>Insight`` records its connections."""
    resources = await _all(store, type_name) if type_name in known else []
    insight = f"{type_name}Insight"
    online_keys = await _online_keys(store, insight, type_name) if insight in known else set()
    # Only Zone has ``enabled``; for the other types the attribute is absent and does not count.
    online = sum(
        1 for r in resources if r.key in online_keys and getattr(r.spec, "enabled", None) is not False
    )
    return {"online": online, "offline": len(resources) - online, "total": len(resources)}


async def summarize(store: ResourceStore) -> dict[str, Any]:
    """The ``/global-insight`` document for what ``store`` holds now."""
    resources: dict[str, dict[str, int]] = {}
    policies = 0
    for desc in all_descriptors():
        # limit=1: only the total is wanted, not the items.
        total = (await store.list(desc.name, limit=1)).total
        resources[desc.name] = {"total": total}
        if desc.policy:
            policies += total
    known = set(resources)
    return {
        "meshes": {"total": resources.get("Mesh", {"total": 0})["total"]},
        "dataplanes": await _online_total(store, "Dataplane", known),
        "policies": {"total": policies},
        "zones": {
            "controlPlanes": await _online_total(store, "Zone", known),
            "zoneIngresses": await _online_total(store, "ZoneIngress", known),
            "zoneEgresses": await _online_total(store, "ZoneEgress", known),
        },
        "resources": resources,
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


class FixedEndpoints:
    """Handlers of the routes that are not about one resource type."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        mode: Mode,
        instance_id: str,
        zone: str | None,
        config_dump: Mapping[str, Any] | None,
    ) -> None:
        self._store = store
        index: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "tagline": "kmesh",
            "product": "kmesh",
            "version": __version__,
            "instanceId": instance_id,
            "mode": mode.value,
        }
        if zone is not None:
            index["zone"] = zone
        index["basedOnKuma"] = BASED_ON_KUMA
        self._index = index
        self._config = dict(config_dump or {})
        dumps(self._config)  # a value JSON cannot carry fails here, at startup, not on every request

    async def index(self, request: web.Request) -> web.Response:
        return json_response(self._index)

    async def global_insight(self, request: web.Request) -> web.Response:
        return json_response(await summarize(self._store))

    async def config(self, request: web.Request) -> web.Response:
        return json_response(self._config)
