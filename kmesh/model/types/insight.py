"""Parts every insight shares: per-subscription counters and the proxy subscription record.

Insights are read-only: control planes write them, users only read them. A subscription is one connection
of a peer (a proxy to its zone CP, a zone CP to the global); it is live while it has a ``connectTime`` and no
``disconnectTime``. Counters follow Kuma: updates sent, acknowledged (ACK) and rejected (NACK), in total and
per resource type (``stat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, final

import msgspec

from kmesh.model._fields import NonNegInt
from kmesh.model._resource import Spec

__all__ = [
    "DiscoverySubscription",
    "DpVersion",
    "KumaDpVersion",
    "ServiceStats",
    "SubscriptionStatus",
    "connected",
]


@final
class ServiceStats(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    responses_sent: NonNegInt = 0
    responses_acknowledged: NonNegInt = 0
    responses_rejected: NonNegInt = 0


@final
class SubscriptionStatus(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Counters of one subscription: ``total`` and, per resource type or config kind, ``stat``."""

    last_update_time: datetime | None = None
    total: ServiceStats = msgspec.field(default_factory=ServiceStats)
    stat: dict[str, ServiceStats] = msgspec.field(default_factory=dict)


@final
class KumaDpVersion(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str = ""
    git_tag: str = ""
    git_commit: str = ""
    build_date: str = ""
    kuma_cp_compatible: bool = True


@final
class DpVersion(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kuma_dp: KumaDpVersion = msgspec.field(default_factory=KumaDpVersion)
    dependencies: dict[str, str] = msgspec.field(default_factory=dict)


@final
class DiscoverySubscription(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One connection of a proxy (sidecar, ingress or egress) to a zone control plane."""

    id: str
    control_plane_instance_id: str
    connect_time: datetime
    disconnect_time: datetime | None = None
    status: SubscriptionStatus = msgspec.field(default_factory=SubscriptionStatus)
    version: DpVersion | None = None
    generation: NonNegInt = 0


class _Subscription(Protocol):
    @property
    def connect_time(self) -> datetime: ...

    @property
    def disconnect_time(self) -> datetime | None: ...


def connected(subscriptions: Sequence[_Subscription]) -> bool:
    """Whether the newest subscription (the last one) is live."""
    return bool(subscriptions) and subscriptions[-1].disconnect_time is None
