"""MeshHealthCheck: active health checks a client runs against the endpoints of the destinations in ``to[]``.

Rules (Kuma's ``meshhealthcheck`` validator): intervals, timeouts and jitters are durations greater than
zero; thresholds are at least 1; ``intervalJitterPercent`` and ``healthyPanicThreshold`` are percentages;
``http.path`` is non-empty and ``expectedStatuses`` are HTTP status codes (100-599).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, final

import msgspec

from kmesh.model._fields import Base64, Percentage, PositiveDuration, PositiveInt, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.common import HeaderModifier
from kmesh.model.types.targetref import PolicySpec, To, register_policy

__all__ = ["GrpcHealthCheck", "HealthCheckConf", "HttpHealthCheck", "MeshHealthCheckSpec", "TcpHealthCheck"]

StatusCode = Annotated[int, msgspec.Meta(ge=100, le=599)]


@final
class TcpHealthCheck(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Connect, optionally send ``send`` and expect every ``receive`` block in order (all base64)."""

    disabled: bool = False
    send: Base64 | None = None
    receive: list[Base64] = msgspec.field(default_factory=list)


@final
class HttpHealthCheck(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool = False
    path: str = "/"
    request_headers_to_add: HeaderModifier | None = None
    expected_statuses: list[StatusCode] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        if not self.path.startswith("/"):
            yield "path", f"must be an absolute path starting with '/', got {self.path!r}"


@final
class GrpcHealthCheck(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool = False
    service_name: str | None = None
    authority: str | None = None


@final
class HealthCheckConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Defaults when unset (Kuma's): interval 1m, timeout 15s, unhealthy after 5, healthy after 1."""

    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    unhealthy_threshold: PositiveInt | None = None
    healthy_threshold: PositiveInt | None = None
    initial_jitter: PositiveDuration | None = None
    interval_jitter: PositiveDuration | None = None
    interval_jitter_percent: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    healthy_panic_threshold: Percentage | None = None
    fail_traffic_on_panic: bool | None = None
    event_log_path: str | None = None
    always_log_health_check_failures: bool | None = None
    no_traffic_interval: PositiveDuration | None = None
    tcp: TcpHealthCheck | None = None
    http: HttpHealthCheck | None = None
    grpc: GrpcHealthCheck | None = None
    reuse_connection: bool | None = None

    def problems(self) -> Problems:
        if self.tcp is None and self.http is None and self.grpc is None:
            yield "", "at least one of tcp, http or grpc is required"


@final
class MeshHealthCheckSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService", "MeshExternalService")

    to: list[To[HealthCheckConf]] = msgspec.field(default_factory=list)


register_policy("MeshHealthCheck", MeshHealthCheckSpec, path="meshhealthchecks", short_names=("mhc",))
