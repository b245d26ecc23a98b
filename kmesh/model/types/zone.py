"""Zone (a zone control plane known to the global) and ZoneInsight (its KDS subscriptions).

Rules:
- A Zone is created by the global the first time a zone connects; ``enabled: false`` takes the zone out of
  service (shown Offline, its ingresses withdrawn from other zones). Zones stay on the global (KDS none).
- ZoneInsight records, per KDS connection: connect and disconnect time, the global and zone CP instances,
  the zone CP's version, the counters of updates sent, acknowledged and rejected (in total and per resource
  type), and the last heartbeat. A zone is online when its newest subscription is live and it is enabled.
"""

from __future__ import annotations

from datetime import datetime
from typing import final

import msgspec

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import NonNegInt
from kmesh.model._resource import Spec
from kmesh.model.types.insight import SubscriptionStatus, connected

__all__ = ["KDSSubscription", "KumaCpVersion", "ZoneInsightSpec", "ZoneSpec", "ZoneVersion"]


@final
class ZoneSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True


@final
class KumaCpVersion(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str = ""
    git_tag: str = ""
    git_commit: str = ""
    build_date: str = ""
    kuma_cp_global_compatible: bool = True


@final
class ZoneVersion(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kuma_cp: KumaCpVersion = msgspec.field(default_factory=KumaCpVersion)


@final
class KDSSubscription(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One KDS connection of the zone's control plane to the global."""

    id: str
    global_instance_id: str
    zone_instance_id: str = ""
    connect_time: datetime
    disconnect_time: datetime | None = None
    last_heartbeat_time: datetime | None = None
    status: SubscriptionStatus = msgspec.field(default_factory=SubscriptionStatus)
    version: ZoneVersion = msgspec.field(default_factory=ZoneVersion)
    generation: NonNegInt = 0
    # The zone CP's effective configuration as JSON, for `inspect` and support.
    config: str = ""
    auth_token_provided: bool = False


@final
class ZoneInsightSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    subscriptions: list[KDSSubscription] = msgspec.field(default_factory=list)

    @property
    def connected(self) -> bool:
        """Whether the newest subscription is live (the zone CP is connected now)."""
        return connected(self.subscriptions)


register(
    ResourceDescriptor(
        name="Zone",
        spec_type=ZoneSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.NONE,
        path="zones",
        singular="zone",
        plural="zones",
        flat=True,
    )
)
register(
    ResourceDescriptor(
        name="ZoneInsight",
        spec_type=ZoneInsightSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.NONE,
        path="zone-insights",
        singular="zone-insight",
        plural="zone-insights",
        read_only=True,
        flat=True,
    )
)
