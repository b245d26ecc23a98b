"""Zone lifecycle on the global control plane: admission, the ``Zone`` of each zone and its ``ZoneInsight``.

Rules (DESIGN.md, "Roles" and "Wire"; Kuma's zone insight sink):

- Admission (:meth:`ZoneLifecycle.refusal`), in this order: a zone name that is not a valid resource name
  is refused (``bad_hello``); the ``authenticate`` callback (the zone token) may refuse with its reason
  (``unauthenticated``), before anything that reveals a zone's state; a zone whose Zone exists with
  ``enabled: false`` is refused (``zone_disabled``).

- The global creates a zone's ``Zone`` (enabled) the first time the zone connects; an existing Zone is
  never changed here. A zone whose Zone says ``enabled: false`` is refused by the server.
- ``ZoneInsight`` (named like the zone, owned by its Zone so it goes when the Zone goes) lists the zone's
  KDS subscriptions, newest last, keeping the last ``kept_subscriptions``. A subscription is written when
  the connection opens, when it closes (``disconnectTime``), and at most every few seconds in between when
  its counters or last heartbeat changed; never per message.
- A zone has one live KDS connection at a time (only its leader dials), so opening a subscription closes
  any other entry of that zone still marked open: it belongs to a connection that died unseen.
- Stale entries: an open subscription of this global instance that is not one of its live connections
  (left by an earlier run with the same instance id) is closed; so is an open subscription of another
  instance whose last sign of life (heartbeat, counters, connect time) is older than ``stale_after_s``,
  since every live instance refreshes its entries more often than that. At start, before any zone is
  accepted, every open entry is closed: the global runs as one instance, and a killed run could not record
  its disconnects, so a zone that died meanwhile would otherwise show Online until the sweep.
- Writes of one zone's insight are serialized by a lock per zone (read, modify, upsert). A Zone deleted
  meanwhile makes the write fail with InvalidReference, which is ignored: the insight went with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, TypeAlias, final

import msgspec

from kmesh.errors import AlreadyExists, InvalidReference, InvalidResource, NotFound, StoreError
from kmesh.kds._convert import ZONE_TYPE
from kmesh.kds._syncbase import TypeSyncStats
from kmesh.kds.messages import CloseCode, Hello
from kmesh.model import Meta, Resource, ResourceKey, new_resource, validate_resource
from kmesh.model.types.insight import ServiceStats, SubscriptionStatus
from kmesh.model.types.zone import KDSSubscription, ZoneInsightSpec, ZoneSpec
from kmesh.store import ResourceStore, Upsert

__all__ = [
    "CODE_STORE_UNAVAILABLE",
    "CODE_UNAUTHENTICATED",
    "CODE_ZONE_DISABLED",
    "DEFAULT_KEPT_SUBSCRIPTIONS",
    "DEFAULT_STALE_AFTER_S",
    "ZONE_INSIGHT_TYPE",
    "Authenticator",
    "ZoneLifecycle",
    "disabled_reason",
    "subscription_status",
]

ZONE_INSIGHT_TYPE: Final = "ZoneInsight"
CODE_UNAUTHENTICATED: Final = "unauthenticated"
CODE_ZONE_DISABLED: Final = "zone_disabled"
CODE_STORE_UNAVAILABLE: Final = "store_unavailable"
DEFAULT_KEPT_SUBSCRIPTIONS: Final = 5
DEFAULT_STALE_AFTER_S: Final = 60.0

Clock = Callable[[], dt.datetime]
Authenticator: TypeAlias = Callable[[Hello], str | Awaitable[str | None] | None]
"""Checks a zone's Hello (its token): returns None to accept, or the reason to refuse; may be async."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def disabled_reason(zone: str) -> str:
    """What a zone refused (or disconnected) for being disabled is told."""
    return f"zone {zone} is disabled on the global control plane"


def subscription_status(stats: Mapping[str, TypeSyncStats], now: dt.datetime) -> SubscriptionStatus:
    """ZoneInsight counters from a connection's sync counters.

    Per type, ``responsesSent`` counts the update chunks sent in either direction, ``responsesAcknowledged``
    and ``responsesRejected`` the answers to them (a ZoneIngress flows both ways on one connection).
    """
    stat: dict[str, ServiceStats] = {}
    for type_, s in sorted(stats.items()):
        stat[type_] = ServiceStats(
            responses_sent=s.chunks_sent + s.chunks_received,
            responses_acknowledged=s.chunks_acked + s.chunks_acked_here,
            responses_rejected=s.chunks_nacked + s.chunks_nacked_here,
        )
    total = ServiceStats(
        responses_sent=sum(s.responses_sent for s in stat.values()),
        responses_acknowledged=sum(s.responses_acknowledged for s in stat.values()),
        responses_rejected=sum(s.responses_rejected for s in stat.values()),
    )
    return SubscriptionStatus(last_update_time=now, total=total, stat=stat)


def _last_sign_of_life(sub: KDSSubscription) -> dt.datetime:
    times = [sub.connect_time, sub.last_heartbeat_time, sub.status.last_update_time]
    return max(t for t in times if t is not None)


@final
class ZoneLifecycle:
    """Reads and writes the Zone and ZoneInsight resources for the KDS server; see the module docstring."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        instance_id: str,
        kept_subscriptions: int = DEFAULT_KEPT_SUBSCRIPTIONS,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        clock: Clock = _utc_now,
    ) -> None:
        if kept_subscriptions < 1:
            raise ValueError(f"kept_subscriptions must be at least 1, got {kept_subscriptions}")
        self._store = store
        self._instance_id = instance_id
        self._kept = kept_subscriptions
        self._stale_after = dt.timedelta(seconds=stale_after_s)
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    def now(self) -> dt.datetime:
        return self._clock()

    async def refusal(self, hello: Hello, authenticate: Authenticator | None) -> tuple[str, str] | None:
        """Why ``hello``'s zone may not connect, as ``(code, reason)``, or None to admit it.

        Checked in this order: a zone name that is not a valid resource name; ``authenticate`` (before
        anything that reveals the zone's state); a Zone that exists with ``enabled: false``.
        """
        zone = hello.zone
        try:
            validate_resource(new_resource(ZONE_TYPE, zone))
        except InvalidResource as exc:
            return CloseCode.BAD_HELLO, f"zone name {zone[:100]!r} is not valid: {exc.violations[0].reason}"
        if authenticate is not None:
            verdict = authenticate(hello)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is not None:
                return CODE_UNAUTHENTICATED, verdict
        try:
            enabled = await self.zone_enabled(zone)
        except StoreError as exc:
            return CODE_STORE_UNAVAILABLE, f"the global control plane cannot read its store: {exc}"
        if enabled is False:
            return CODE_ZONE_DISABLED, disabled_reason(zone)
        return None

    def refreshed(
        self,
        sub: KDSSubscription,
        stats: Mapping[str, TypeSyncStats],
        last_heartbeat: dt.datetime | None,
        disconnected: bool,
    ) -> KDSSubscription:
        """``sub`` with current counters and heartbeat (and its disconnect time), one generation on."""
        now = self.now()
        return msgspec.structs.replace(
            sub,
            status=subscription_status(stats, now),
            last_heartbeat_time=last_heartbeat,
            disconnect_time=now if disconnected else None,
            generation=sub.generation + 1,
        )

    async def zone_enabled(self, zone: str) -> bool | None:
        """Whether the Zone is enabled; None when it does not exist. Raises StoreError."""
        try:
            found = await self._store.get(ResourceKey(ZONE_TYPE, zone))
        except NotFound:
            return None
        return isinstance(found.spec, ZoneSpec) and found.spec.enabled

    async def ensure_zone(self, zone: str) -> bool:
        """Create the Zone (enabled) if it does not exist; return whether it is enabled. Raises StoreError."""
        enabled = await self.zone_enabled(zone)
        if enabled is not None:
            return enabled
        try:
            await self._store.create(new_resource(ZONE_TYPE, zone, ZoneSpec(enabled=True)))
        except AlreadyExists:
            # Another replica (or a user) made it between the read and the write; theirs counts.
            return bool(await self.zone_enabled(zone))
        return True

    async def open_subscription(self, zone: str, sub: KDSSubscription) -> None:
        """Record a new connection of ``zone``, closing older entries left open. Raises StoreError."""
        now = self.now()

        def change(subs: list[KDSSubscription]) -> list[KDSSubscription]:
            closed = [
                msgspec.structs.replace(s, disconnect_time=now) if s.disconnect_time is None else s
                for s in subs
                if s.id != sub.id
            ]
            return [*closed, sub][-self._kept :]

        await self._modify(zone, change)

    async def write_subscription(self, zone: str, sub: KDSSubscription) -> None:
        """Replace the entry of ``sub.id`` (if it is still kept). Raises StoreError."""

        def change(subs: list[KDSSubscription]) -> list[KDSSubscription]:
            return [sub if s.id == sub.id else s for s in subs]

        await self._modify(zone, change)

    async def close_stale(self, live: Mapping[str, str], *, starting: bool = False) -> int:
        """Close stale open subscriptions (see the module docstring); ``live`` maps the ids of this
        instance's live subscriptions to their zones. Returns how many were closed. Raises StoreError.

        ``starting``: this global is starting and accepts no zone yet, so every open subscription was left
        by a previous run (a killed process cannot record its disconnects) and is closed at once. A global
        runs as one instance for now; highly available replicas (PostgreSQL) will limit this to the
        subscriptions of instances that no longer hold the leader lock.
        """
        now = self.now()
        closed = 0
        insights = await self._store.list(ZONE_INSIGHT_TYPE)
        for insight in insights.items:
            if not isinstance(insight.spec, ZoneInsightSpec):
                continue
            stale = {
                s.id
                for s in insight.spec.subscriptions
                if s.disconnect_time is None and (starting or self._is_stale(s, live, now))
            }
            if not stale:
                continue

            def change(subs: list[KDSSubscription], stale: set[str] = stale) -> list[KDSSubscription]:
                return [
                    msgspec.structs.replace(s, disconnect_time=now)
                    if s.id in stale and s.disconnect_time is None
                    else s
                    for s in subs
                ]

            await self._modify(insight.meta.name, change)
            closed += len(stale)
        return closed

    def _is_stale(self, sub: KDSSubscription, live: Mapping[str, str], now: dt.datetime) -> bool:
        if sub.disconnect_time is not None:
            return False
        if sub.global_instance_id == self._instance_id:
            return sub.id not in live
        return now - _last_sign_of_life(sub) > self._stale_after

    async def _modify(
        self, zone: str, change: Callable[[list[KDSSubscription]], list[KDSSubscription]]
    ) -> None:
        lock = self._locks.setdefault(zone, asyncio.Lock())
        async with lock:
            key = ResourceKey(ZONE_INSIGHT_TYPE, zone)
            try:
                current = await self._store.get(key)
            except NotFound:
                subs: list[KDSSubscription] = []
            else:
                spec = current.spec
                subs = list(spec.subscriptions) if isinstance(spec, ZoneInsightSpec) else []
            updated = change(subs)
            if updated == subs and subs:
                return
            meta = Meta(type=ZONE_INSIGHT_TYPE, name=zone, owner=ResourceKey(ZONE_TYPE, zone))
            resource = Resource(meta=meta, spec=ZoneInsightSpec(subscriptions=updated))
            try:
                await self._store.commit([Upsert(resource)])
            except InvalidReference:
                return  # the Zone was deleted meanwhile, and its insight with it
