"""MeshRateLimit: local (per proxy) limits on requests or connections accepted by the selected proxies.

Rules (Kuma's ``meshratelimit`` validator): ``default.local`` sets ``http`` or ``tcp``; each sets
``disabled`` or a rate; a rate has ``num`` greater than zero and an ``interval`` of at least 50ms;
``onRateLimit.status`` is an HTTP status code. ``rules[]`` cannot be mixed with ``from``/``to``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, final

import msgspec

from kmesh.model._duration import parse_duration
from kmesh.model._fields import Duration, PositiveInt, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.common import HeaderModifier
from kmesh.model.types.targetref import From, PolicySpec, Rule, To, register_policy

__all__ = [
    "LocalHttp",
    "LocalRateLimit",
    "LocalTcp",
    "MeshRateLimitSpec",
    "OnRateLimit",
    "Rate",
    "RateLimitConf",
]

_MIN_INTERVAL_S = 0.05


@final
class Rate(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``num`` requests (or connections) per ``interval``."""

    num: PositiveInt
    interval: Duration

    def problems(self) -> Problems:
        try:
            seconds = parse_duration(self.interval)
        except ValueError:
            return  # reported on the field itself
        if seconds < _MIN_INTERVAL_S:
            yield "interval", "must be at least 50ms"


@final
class OnRateLimit(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    headers: HeaderModifier | None = None


@final
class LocalHttp(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool | None = None
    request_rate: Rate | None = None
    on_rate_limit: OnRateLimit | None = None

    def problems(self) -> Problems:
        if self == LocalHttp():
            yield "", "at least one of disabled, requestRate or onRateLimit is required"


@final
class LocalTcp(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool | None = None
    connection_rate: Rate | None = None

    def problems(self) -> Problems:
        if self == LocalTcp():
            yield "", "at least one of disabled or connectionRate is required"


@final
class LocalRateLimit(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    http: LocalHttp | None = None
    tcp: LocalTcp | None = None

    def problems(self) -> Problems:
        if self.http is None and self.tcp is None:
            yield "", "at least one of http or tcp is required"


@final
class RateLimitConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    local: LocalRateLimit


@final
class MeshRateLimitSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = (
        "Mesh",
        "MeshSubset",
        "MeshService",
        "MeshServiceSubset",
        "MeshGateway",
        "MeshHTTPRoute",
        "Dataplane",
    )
    # `to` only applies to gateways (rate limiting what a gateway forwards), so only kind Mesh fits.
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh",)
    sections: ClassVar[tuple[str, ...]] = ("from", "to", "rules")

    from_: list[From[RateLimitConf]] = msgspec.field(default_factory=list, name="from")
    to: list[To[RateLimitConf]] = msgspec.field(default_factory=list)
    rules: list[Rule[RateLimitConf]] = msgspec.field(default_factory=list)


register_policy("MeshRateLimit", MeshRateLimitSpec, path="meshratelimits", short_names=("mrl",))
