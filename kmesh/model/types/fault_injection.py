"""MeshFaultInjection: abort, delay or throttle a share of requests, to test how callers cope.

Rules (Kuma's ``meshfaultinjection`` validator): ``abort.httpStatus`` is an HTTP status code (100-599),
``delay.value`` a duration, ``responseBandwidth.limit`` a rate such as ``10kbps``/``5Mbps``/``1Gbps``;
every ``percentage`` lies in 0-100; each fault entry sets at least one of the three.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Final, final

import msgspec

from kmesh.model._fields import Duration, Percentage, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.targetref import From, PolicySpec, To, register_policy

__all__ = [
    "AbortFault",
    "BandwidthFault",
    "DelayFault",
    "FaultInjectionConf",
    "HttpFault",
    "MeshFaultInjectionSpec",
    "parse_bandwidth",
]

_BANDWIDTH: Final = re.compile(r"(\d+)\s*(kbps|Mbps|Gbps)")
_BITS_PER_UNIT: Final = {"kbps": 1_000, "Mbps": 1_000_000, "Gbps": 1_000_000_000}


def parse_bandwidth(limit: str) -> int:
    """Bits per second of a limit such as ``10kbps``. Raises ValueError for anything else."""
    match = _BANDWIDTH.fullmatch(limit)
    if match is None:
        raise ValueError(f"invalid bandwidth {limit!r}; write a whole number with kbps, Mbps or Gbps")
    return int(match.group(1)) * _BITS_PER_UNIT[match.group(2)]


@final
class AbortFault(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    http_status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    percentage: Percentage


@final
class DelayFault(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    value: Duration
    percentage: Percentage


@final
class BandwidthFault(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    limit: str
    percentage: Percentage

    def problems(self) -> Problems:
        try:
            parse_bandwidth(self.limit)
        except ValueError as exc:
            yield "limit", str(exc)


@final
class HttpFault(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    abort: AbortFault | None = None
    delay: DelayFault | None = None
    response_bandwidth: BandwidthFault | None = None

    def problems(self) -> Problems:
        if self.abort is None and self.delay is None and self.response_bandwidth is None:
            yield "", "at least one of abort, delay or responseBandwidth is required"


@final
class FaultInjectionConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    http: list[HttpFault] = msgspec.field(default_factory=list)


@final
class MeshFaultInjectionSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService")
    sections: ClassVar[tuple[str, ...]] = ("from", "to")

    from_: list[From[FaultInjectionConf]] = msgspec.field(default_factory=list, name="from")
    to: list[To[FaultInjectionConf]] = msgspec.field(default_factory=list)


register_policy(
    "MeshFaultInjection", MeshFaultInjectionSpec, path="meshfaultinjections", short_names=("mfi",)
)
