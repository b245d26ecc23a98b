"""MeshRetry: how a client retries failed calls to the destinations in ``to[]``.

Rules (Kuma's ``meshretry`` validator):
- ``default`` sets at least one of ``tcp``, ``http``, ``grpc``; each protocol block sets something.
- ``http.retryOn`` items are Kuma's conditions (``5xx``, ``GatewayError``, ``Reset``, ...), ``HttpMethod*``,
  or an HTTP status code; ``grpc.retryOn`` items are gRPC status names.
- ``backOff`` intervals are durations greater than zero, ``maxInterval`` not below ``baseInterval``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, final

import msgspec

from kmesh.model._duration import parse_duration
from kmesh.model._fields import (
    Duration,
    HeaderName,
    NonNegInt,
    PositiveDuration,
    PositiveInt,
    Problems,
    Selector,
)
from kmesh.model._resource import Spec
from kmesh.model.types.common import HeaderMatch
from kmesh.model.types.targetref import PolicySpec, To, register_policy

__all__ = [
    "HTTP_RETRY_ON",
    "BackOff",
    "GrpcRetry",
    "HttpRetry",
    "MeshRetrySpec",
    "Predicate",
    "RateLimitedBackOff",
    "ResetHeader",
    "RetryConf",
    "TcpRetry",
]

HTTP_RETRY_ON = (
    "5xx",
    "GatewayError",
    "Reset",
    "Retriable4xx",
    "ConnectFailure",
    "EnvoyRatelimited",
    "RefusedStream",
    "Http3PostConnectFailure",
    "HttpMethodConnect",
    "HttpMethodDelete",
    "HttpMethodGet",
    "HttpMethodHead",
    "HttpMethodOptions",
    "HttpMethodPatch",
    "HttpMethodPost",
    "HttpMethodPut",
    "HttpMethodTrace",
)
GrpcRetryOn = Literal["Canceled", "DeadlineExceeded", "Internal", "ResourceExhausted", "Unavailable"]


@final
class TcpRetry(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_connect_attempt: PositiveInt | None = None

    def problems(self) -> Problems:
        if self.max_connect_attempt is None:
            yield "maxConnectAttempt", "required field is missing"


@final
class BackOff(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exponential back-off between attempts: from ``baseInterval`` (25ms) up to ``maxInterval``."""

    base_interval: PositiveDuration | None = None
    max_interval: PositiveDuration | None = None

    def problems(self) -> Problems:
        try:
            base = parse_duration(self.base_interval) if self.base_interval else None
            top = parse_duration(self.max_interval) if self.max_interval else None
        except ValueError:
            return  # reported on the field itself
        if base is not None and top is not None and top < base:
            yield "maxInterval", "must not be shorter than baseInterval"


@final
class ResetHeader(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: HeaderName
    format: Literal["Seconds", "UnixTimestamp"]


@final
class RateLimitedBackOff(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Back-off driven by the upstream's rate-limit headers (``Retry-After``), tried in order."""

    reset_headers: list[ResetHeader] = msgspec.field(default_factory=list)
    max_interval: PositiveDuration | None = None

    def problems(self) -> Problems:
        if not self.reset_headers:
            yield "resetHeaders", "required field is missing"


@final
class Predicate(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    predicate: Literal["OmitPreviousHosts", "OmitHostsWithTags", "OmitPreviousPriorities"]
    tags: Selector | None = None
    update_frequency: PositiveInt = 2

    def problems(self) -> Problems:
        if self.predicate == "OmitHostsWithTags" and not self.tags:
            yield "tags", "required with OmitHostsWithTags"


def _retry_on_problem(item: str) -> str | None:
    # Kuma's own docs write "5XX" while its enum says "5xx"; take both.
    if item in HTTP_RETRY_ON or item == "5XX" or (item.isdigit() and 100 <= int(item) <= 599):
        return None
    return f"unknown condition {item!r}; use an HTTP status code or one of {', '.join(HTTP_RETRY_ON)}"


@final
class HttpRetry(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    num_retries: NonNegInt | None = None
    per_try_timeout: Duration | None = None
    back_off: BackOff | None = None
    rate_limited_back_off: RateLimitedBackOff | None = None
    # Status codes may be written as YAML numbers (503) or strings ("503").
    retry_on: list[str | int] | None = None
    retriable_response_headers: list[HeaderMatch] | None = None
    retriable_request_headers: list[HeaderMatch] | None = None
    host_selection: list[Predicate] | None = None
    host_selection_max_attempts: NonNegInt | None = None

    def problems(self) -> Problems:
        if self == HttpRetry():
            yield "", "must set at least one field"
        for i, item in enumerate(self.retry_on or ()):
            reason = _retry_on_problem(str(item))
            if reason:
                yield f"retryOn[{i}]", reason
        kinds = [p.predicate for p in self.host_selection or ()]
        for i, kind in enumerate(kinds):
            if kind != "OmitHostsWithTags" and kind in kinds[:i]:
                yield f"hostSelection[{i}].predicate", f"{kind} may be listed only once"


@final
class GrpcRetry(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    num_retries: NonNegInt | None = None
    per_try_timeout: Duration | None = None
    back_off: BackOff | None = None
    rate_limited_back_off: RateLimitedBackOff | None = None
    retry_on: list[GrpcRetryOn] | None = None

    def problems(self) -> Problems:
        if self == GrpcRetry():
            yield "", "must set at least one field"


@final
class RetryConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tcp: TcpRetry | None = None
    http: HttpRetry | None = None
    grpc: GrpcRetry | None = None

    def problems(self) -> Problems:
        if self.tcp is None and self.http is None and self.grpc is None:
            yield "", "at least one of tcp, http or grpc is required"


@final
class MeshRetrySpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = (
        "Mesh",
        "MeshSubset",
        "MeshService",
        "MeshServiceSubset",
        "MeshGateway",
        "MeshHTTPRoute",
        "Dataplane",
    )
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService", "MeshExternalService", "MeshHTTPRoute")

    to: list[To[RetryConf]] = msgspec.field(default_factory=list)


register_policy("MeshRetry", MeshRetrySpec, path="meshretries", short_names=("mr",))
