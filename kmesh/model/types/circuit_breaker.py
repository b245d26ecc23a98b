"""MeshCircuitBreaker: connection limits and outlier detection (passive health checking) per destination.

Rules (Kuma's ``meshcircuitbreaker`` validator): ``default`` sets ``connectionLimits`` or
``outlierDetection``; durations are greater than zero; ``maxEjectionPercent`` and the percentage thresholds
lie in 0-100. ``from[]`` takes only ``kind: Mesh``; ``rules[]`` cannot be mixed with ``from``/``to``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, final

import msgspec

from kmesh.model._fields import NonNegInt, Percentage, PositiveDuration, PositiveInt, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.targetref import From, PolicySpec, Rule, To, register_policy

__all__ = [
    "CircuitBreakerConf",
    "ConnectionLimits",
    "ConsecutiveFailures",
    "Detectors",
    "FailurePercentage",
    "MeshCircuitBreakerSpec",
    "OutlierDetection",
    "SuccessRate",
]

Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]


@final
class ConnectionLimits(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_connections: PositiveInt | None = None
    max_connection_pools: PositiveInt | None = None
    max_pending_requests: PositiveInt | None = None
    max_retries: NonNegInt | None = None
    max_requests: PositiveInt | None = None


@final
class ConsecutiveFailures(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    consecutive: NonNegInt | None = None


@final
class SuccessRate(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    minimum_hosts: NonNegInt | None = None
    request_volume: NonNegInt | None = None
    # A decimal factor (1.9 by default in Envoy), written as an int or a string as in Kuma.
    standard_deviation_factor: int | str | None = None


@final
class FailurePercentage(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    minimum_hosts: NonNegInt | None = None
    request_volume: NonNegInt | None = None
    threshold: Percent | None = None


@final
class Detectors(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    total_failures: ConsecutiveFailures | None = None
    gateway_failures: ConsecutiveFailures | None = None
    local_origin_failures: ConsecutiveFailures | None = None
    success_rate: SuccessRate | None = None
    failure_percentage: FailurePercentage | None = None


@final
class OutlierDetection(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Eject endpoints that fail more than their peers, for ``baseEjectionTime`` times their ejections."""

    disabled: bool = False
    interval: PositiveDuration | None = None
    base_ejection_time: PositiveDuration | None = None
    max_ejection_percent: Percent | None = None
    split_external_and_local_errors: bool = False
    detectors: Detectors | None = None
    healthy_panic_threshold: Percentage | None = None


@final
class CircuitBreakerConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connection_limits: ConnectionLimits | None = None
    outlier_detection: OutlierDetection | None = None

    def problems(self) -> Problems:
        if self.connection_limits is None and self.outlier_detection is None:
            yield "", "at least one of connectionLimits or outlierDetection is required"


@final
class MeshCircuitBreakerSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    from_kinds: ClassVar[tuple[str, ...]] = ("Mesh",)
    sections: ClassVar[tuple[str, ...]] = ("from", "to", "rules")

    from_: list[From[CircuitBreakerConf]] = msgspec.field(default_factory=list, name="from")
    to: list[To[CircuitBreakerConf]] = msgspec.field(default_factory=list)
    rules: list[Rule[CircuitBreakerConf]] = msgspec.field(default_factory=list)


register_policy(
    "MeshCircuitBreaker", MeshCircuitBreakerSpec, path="meshcircuitbreakers", short_names=("mcb",)
)
