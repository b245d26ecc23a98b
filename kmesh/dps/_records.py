"""The store side of a proxy's life: its resource (Dataplane, ZoneIngress, ZoneEgress) and its insight.

Rules (Kuma's dataplane lifecycle and insight sink):

- Registering writes, in one commit, the proxy's resource and its insight (``DataplaneInsight``,
  ``ZoneIngressInsight``, ``ZoneEgressInsight``: same name and mesh, owned by the resource, so deleting the
  resource deletes its insight). The insight lists the proxy's connections as subscriptions, newest last,
  keeping the last ``kept_subscriptions``; opening one closes any other entry still marked open (it belongs
  to a connection that died unseen). A ``DataplaneInsight`` keeps its ``mTLS`` record across connections.
- A subscription is written when the connection opens, when a certificate is issued, when it closes
  (``disconnectTime``: the proxy shows Offline), and in between when its counters changed, at most every
  few seconds (the server's insight loop); never per message.
- Deregistering (after a proxy's graceful Close) deletes the resource only while it still carries the
  closing connection's ``kmesh.io/proxy-instance``: a proxy that registered again meanwhile keeps it.
- Health reports rewrite the resource only when an inbound's readiness changed (``health.ready``, and
  ``state`` Ready/NotReady when the inbound uses ``state``; an ``Ignored`` inbound stays ignored).
- Stale entries: at start and periodically the server closes open subscriptions of its own instance that
  are not live connections, and those of other instances with no sign of life for ``stale_after_s``; live
  connections refresh their entry more often than that.
- Writes for one resource are serialized by a lock per key (read, modify, write).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import msgspec

from kmesh.dps._admission import LABEL_PROXY_INSTANCE
from kmesh.errors import Conflict, InvalidReference, NotFound
from kmesh.model import Meta, Resource, ResourceKey, Spec
from kmesh.model.types import (
    DataplaneInsightSpec,
    DataplaneSpec,
    ZoneEgressInsightSpec,
    ZoneIngressInsightSpec,
)
from kmesh.model.types.dataplane import DataplaneMtlsInsight, Health
from kmesh.model.types.insight import DiscoverySubscription
from kmesh.store import Delete, ResourceStore, Update, Upsert

__all__ = ["DEFAULT_KEPT_SUBSCRIPTIONS", "INSIGHT_TYPES", "ProxyRecords", "insight_key"]

DEFAULT_KEPT_SUBSCRIPTIONS: Final = 5
INSIGHT_TYPES: Final[Mapping[str, str]] = {
    "Dataplane": "DataplaneInsight",
    "ZoneIngress": "ZoneIngressInsight",
    "ZoneEgress": "ZoneEgressInsight",
}
_CONFLICT_RETRIES: Final = 5

Clock = Callable[[], dt.datetime]
Subs = list[DiscoverySubscription]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def insight_key(key: ResourceKey) -> ResourceKey:
    """The key of the insight of the proxy resource ``key``."""
    return ResourceKey(INSIGHT_TYPES[key.type], key.name, key.mesh, key.zone)


def _subscriptions(spec: Spec | None) -> Subs:
    if isinstance(spec, DataplaneInsightSpec | ZoneIngressInsightSpec | ZoneEgressInsightSpec):
        return list(spec.subscriptions)
    return []


@final
class ProxyRecords:
    """Reads and writes proxies' resources and insights for the DP server; see the module docstring."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        instance_id: str,
        kept_subscriptions: int = DEFAULT_KEPT_SUBSCRIPTIONS,
        stale_after_s: float = 300.0,
        clock: Clock = _utc_now,
    ) -> None:
        if kept_subscriptions < 1:
            raise ValueError(f"kept_subscriptions must be at least 1, got {kept_subscriptions}")
        self._store = store
        self._instance_id = instance_id
        self._kept = kept_subscriptions
        self._stale_after = dt.timedelta(seconds=stale_after_s)
        self._clock = clock
        self._locks: dict[ResourceKey, asyncio.Lock] = {}

    def now(self) -> dt.datetime:
        return self._clock()

    def _lock(self, key: ResourceKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def register(self, resource: Resource, sub: DiscoverySubscription) -> DataplaneMtlsInsight | None:
        """Write ``resource`` and open ``sub`` in its insight; return the insight's earlier mTLS record.
        Raises StoreError."""
        key = resource.key
        async with self._lock(key):
            current = await self._insight(key)
            now = self.now()
            subs = [
                msgspec.structs.replace(s, disconnect_time=now) if s.disconnect_time is None else s
                for s in _subscriptions(current.spec if current else None)
                if s.id != sub.id
            ]
            mtls = current.spec.mtls if current and isinstance(current.spec, DataplaneInsightSpec) else None
            metadata = (
                current.spec.metadata if current and isinstance(current.spec, DataplaneInsightSpec) else {}
            )
            insight = self._insight_resource(key, [*subs, sub][-self._kept :], mtls, metadata)
            await self._store.commit([Upsert(resource), Upsert(insight)])
            return mtls

    async def write_subscription(
        self,
        key: ResourceKey,
        sub: DiscoverySubscription,
        *,
        mtls: DataplaneMtlsInsight | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace the entry of ``sub.id`` (and, for a dataplane, the mTLS record and metadata when given).
        Nothing happens when the resource is gone. Raises StoreError."""
        async with self._lock(key):
            current = await self._insight(key)
            if current is None:
                return
            subs = [sub if s.id == sub.id else s for s in _subscriptions(current.spec)]
            spec = current.spec
            old_mtls = spec.mtls if isinstance(spec, DataplaneInsightSpec) else None
            old_meta = spec.metadata if isinstance(spec, DataplaneInsightSpec) else {}
            insight = self._insight_resource(
                key, subs, mtls or old_mtls, dict(metadata) if metadata is not None else old_meta
            )
            try:
                await self._store.commit([Upsert(insight)])
            except InvalidReference:
                return  # the resource was deleted meanwhile, and its insight with it

    async def deregister(self, key: ResourceKey, instance_id: str) -> bool:
        """Delete the resource (and its insight) if the connection of ``instance_id`` still owns it;
        return whether it was deleted. Raises StoreError."""
        async with self._lock(key):
            try:
                current = await self._store.get(key)
            except NotFound:
                return False
            if current.meta.labels.get(LABEL_PROXY_INSTANCE, "") != instance_id:
                return False
            try:
                await self._store.commit(
                    [Delete(key, expected_version=current.meta.version, missing_ok=True)]
                )
            except Conflict:
                return False
            return True

    async def set_health(self, key: ResourceKey, ready: Mapping[int, bool]) -> bool:
        """Record the readiness of the dataplane's inbounds by port; return whether anything changed.
        Raises StoreError."""
        async with self._lock(key):
            for _ in range(_CONFLICT_RETRIES):
                try:
                    current = await self._store.get(key)
                except NotFound:
                    return False
                spec = current.spec
                if not isinstance(spec, DataplaneSpec):
                    return False
                updated = _with_health(spec, ready)
                if updated == spec:
                    return False
                resource = Resource(meta=current.meta, spec=updated)
                try:
                    await self._store.commit([Update(resource, expected_version=current.meta.version)])
                except (Conflict, NotFound):
                    continue
                return True
        return False

    async def close_stale(self, live: set[str]) -> int:
        """Close stale open subscriptions (see the module docstring); ``live`` holds the ids of this
        instance's live connections. Returns how many were closed. Raises StoreError."""
        now = self.now()
        closed = 0
        for insight_type in INSIGHT_TYPES.values():
            for insight in (await self._store.list(insight_type)).items:
                subs = _subscriptions(insight.spec)
                stale = {s.id for s in subs if self._is_stale(s, live, now)}
                owner = insight.meta.owner
                if not stale or owner is None:
                    continue
                async with self._lock(owner):
                    current = await self._insight(owner)
                    if current is None:
                        continue
                    subs = [
                        msgspec.structs.replace(s, disconnect_time=now)
                        if s.id in stale and s.disconnect_time is None
                        else s
                        for s in _subscriptions(current.spec)
                    ]
                    spec = current.spec
                    resource = Resource(
                        meta=current.meta, spec=msgspec.structs.replace(spec, subscriptions=subs)
                    )
                    try:
                        await self._store.commit([Upsert(resource)])
                    except InvalidReference:
                        continue
                closed += len(stale)
        return closed

    def _is_stale(self, sub: DiscoverySubscription, live: set[str], now: dt.datetime) -> bool:
        if sub.disconnect_time is not None:
            return False
        if sub.control_plane_instance_id == self._instance_id:
            return sub.id not in live
        seen = max(t for t in (sub.connect_time, sub.status.last_update_time) if t is not None)
        return now - seen > self._stale_after

    async def _insight(self, key: ResourceKey) -> Resource | None:
        try:
            return await self._store.get(insight_key(key))
        except NotFound:
            return None

    def _insight_resource(
        self,
        key: ResourceKey,
        subs: Subs,
        mtls: DataplaneMtlsInsight | None,
        metadata: Mapping[str, Any],
    ) -> Resource:
        spec: Spec
        if key.type == "Dataplane":
            spec = DataplaneInsightSpec(subscriptions=subs, mtls=mtls, metadata=dict(metadata))
        elif key.type == "ZoneIngress":
            spec = ZoneIngressInsightSpec(subscriptions=subs)
        else:
            spec = ZoneEgressInsightSpec(subscriptions=subs)
        ikey = insight_key(key)
        meta = Meta(type=ikey.type, name=ikey.name, mesh=ikey.mesh, zone=ikey.zone, owner=key)
        return Resource(meta=meta, spec=spec)


def _with_health(spec: DataplaneSpec, ready: Mapping[int, bool]) -> DataplaneSpec:
    inbounds = []
    for inbound in spec.networking.inbound:
        is_ready = ready.get(inbound.port)
        if is_ready is None or inbound.state == "Ignored":
            inbounds.append(inbound)
            continue
        state = inbound.state if inbound.state is None else ("Ready" if is_ready else "NotReady")
        inbounds.append(msgspec.structs.replace(inbound, health=Health(ready=is_ready), state=state))
    networking = msgspec.structs.replace(spec.networking, inbound=inbounds)
    return msgspec.structs.replace(spec, networking=networking)
