"""MeshLoadBalancingStrategy: locality awareness (local zone first, then other zones in a given order) and the
load-balancing algorithm, per destination in ``to[]``.

Rules (Kuma's ``meshloadbalancingstrategy`` validator):
- ``crossZone.failover[].to.type`` is ``Any``, ``Only``, ``AnyExcept`` or ``None``; ``Only`` and
  ``AnyExcept`` need ``zones``, ``Any`` and ``None`` take none; ``from.zones`` is non-empty if given.
- ``failoverThreshold.percentage`` lies in 0-100; affinity tags have a key, and either all or none carry
  a weight (greater than zero).
- ``loadBalancer`` settings match its ``type`` (``ringHash`` only with ``RingHash``, ...), and each hash
  policy carries the settings of its own type.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, final

import msgspec

from kmesh.model._fields import Percentage, PositiveDuration, PositiveInt, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.targetref import PolicySpec, To, register_policy

__all__ = [
    "AffinityTag",
    "ConnectionKey",
    "CookieKey",
    "CrossZone",
    "Empty",
    "Failover",
    "FailoverThreshold",
    "FilterStateKey",
    "HashPolicy",
    "LeastRequest",
    "LoadBalancer",
    "LoadBalancingConf",
    "LocalZone",
    "LocalityAwareness",
    "Maglev",
    "MeshLoadBalancingStrategySpec",
    "NamedKey",
    "RingHash",
    "ToZone",
    "Zones",
]


@final
class AffinityTag(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key: str
    weight: PositiveInt | None = None

    def problems(self) -> Problems:
        if not self.key:
            yield "key", "must not be empty"


@final
class LocalZone(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    affinity_tags: list[AffinityTag] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        weighted = [t.weight is not None for t in self.affinity_tags]
        if any(weighted) and not all(weighted):
            yield "affinityTags", "either all affinity tags have a weight or none does"


@final
class Zones(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zones: list[str]

    def problems(self) -> Problems:
        if not self.zones:
            yield "zones", "must not be empty"
        for i, zone in enumerate(self.zones):
            if not zone:
                yield f"zones[{i}]", "must not be empty"


@final
class ToZone(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which zones take the traffic: ``Any``, ``Only`` the listed, ``AnyExcept`` the listed, or ``None``."""

    type: Literal["Any", "Only", "AnyExcept", "None"]
    zones: list[str] | None = None

    def problems(self) -> Problems:
        if self.type in ("Only", "AnyExcept") and not self.zones:
            yield "zones", f"must not be empty when type is {self.type}"
        elif self.type in ("Any", "None") and self.zones:
            yield "zones", f"must be empty when type is {self.type}"


@final
class Failover(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A failover step; ``from`` limits it to clients in those zones (all zones when left out)."""

    from_: Zones | None = msgspec.field(default=None, name="from")
    to: ToZone


@final
class FailoverThreshold(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fail over to the next priority when fewer than this percentage of endpoints are healthy (50)."""

    percentage: Percentage


@final
class CrossZone(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    failover: list[Failover] = msgspec.field(default_factory=list)
    failover_threshold: FailoverThreshold | None = None


@final
class LocalityAwareness(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool = False
    local_zone: LocalZone | None = None
    cross_zone: CrossZone | None = None


HashPolicyType = Literal["Header", "Cookie", "Connection", "SourceIP", "QueryParameter", "FilterState"]


@final
class NamedKey(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]


@final
class CookieKey(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    ttl: PositiveDuration | None = None
    path: str | None = None

    def problems(self) -> Problems:
        if self.path is not None and not self.path.startswith("/"):
            yield "path", "must be an absolute path"


@final
class ConnectionKey(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source_ip: bool = msgspec.field(default=False, name="sourceIP")


@final
class FilterStateKey(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1)]


# The settings field each hash policy type needs, in wire names; SourceIP needs none.
_HASH_SETTINGS = {
    "Header": "header",
    "Cookie": "cookie",
    "Connection": "connection",
    "QueryParameter": "queryParameter",
    "FilterState": "filterState",
}


@final
class HashPolicy(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: HashPolicyType
    terminal: bool = False
    header: NamedKey | None = None
    cookie: CookieKey | None = None
    connection: ConnectionKey | None = None
    query_parameter: NamedKey | None = None
    filter_state: FilterStateKey | None = None

    def problems(self) -> Problems:
        settings = {
            "header": self.header,
            "cookie": self.cookie,
            "connection": self.connection,
            "queryParameter": self.query_parameter,
            "filterState": self.filter_state,
        }
        wanted = _HASH_SETTINGS.get(self.type)
        for wire, value in settings.items():
            if wire == wanted and value is None:
                yield wire, f"required with type {self.type}"
            elif wire != wanted and value is not None:
                yield wire, f"must not be set with type {self.type}"


@final
class LeastRequest(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    choice_count: Annotated[int, msgspec.Meta(ge=2)] | None = None
    active_request_bias: int | str | None = None


@final
class RingHash(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hash_function: Literal["XXHash", "MurmurHash2"] | None = None
    min_ring_size: Annotated[int, msgspec.Meta(ge=1, le=8_000_000)] | None = None
    max_ring_size: Annotated[int, msgspec.Meta(ge=1, le=8_000_000)] | None = None
    hash_policies: list[HashPolicy] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        if self.min_ring_size and self.max_ring_size and self.min_ring_size > self.max_ring_size:
            yield "minRingSize", "must not exceed maxRingSize"


@final
class Maglev(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    table_size: Annotated[int, msgspec.Meta(ge=1, le=5_000_011)] | None = None
    hash_policies: list[HashPolicy] = msgspec.field(default_factory=list)


@final
class Empty(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The settings of an algorithm that has none (``roundRobin: {}``, ``random: {}``)."""


LoadBalancerType = Literal["RoundRobin", "LeastRequest", "RingHash", "Random", "Maglev"]


@final
class LoadBalancer(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: LoadBalancerType
    round_robin: Empty | None = None
    least_request: LeastRequest | None = None
    ring_hash: RingHash | None = None
    random: Empty | None = None
    maglev: Maglev | None = None

    def problems(self) -> Problems:
        settings = {
            "RoundRobin": ("roundRobin", self.round_robin),
            "LeastRequest": ("leastRequest", self.least_request),
            "RingHash": ("ringHash", self.ring_hash),
            "Random": ("random", self.random),
            "Maglev": ("maglev", self.maglev),
        }
        for kind, (wire, value) in settings.items():
            if kind != self.type and value is not None:
                yield wire, f"must not be set with type {self.type}"


@final
class LoadBalancingConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    locality_awareness: LocalityAwareness | None = None
    load_balancer: LoadBalancer | None = None

    def problems(self) -> Problems:
        if self.locality_awareness is None and self.load_balancer is None:
            yield "", "at least one of localityAwareness or loadBalancer is required"


@final
class MeshLoadBalancingStrategySpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService")

    to: list[To[LoadBalancingConf]] = msgspec.field(default_factory=list)


register_policy(
    "MeshLoadBalancingStrategy",
    MeshLoadBalancingStrategySpec,
    path="meshloadbalancingstrategies",
    short_names=("mlbs",),
)
