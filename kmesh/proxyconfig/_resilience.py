"""Per-cluster resilience settings, in normalized units: what MeshTimeout, MeshRetry, MeshCircuitBreaker,
MeshHealthCheck and MeshLoadBalancingStrategy become once merged for one proxy and one destination.

Rules:
- Durations are float seconds (``_s``), percentages float 0-100 (``_percent``), status codes ints; Kuma's
  enum spellings are kept (``RoundRobin``, ``5xx``) so a reader can match them to the policy docs.
- A default is written here only where Kuma or Envoy documents one (timeouts, back-off, thresholds); a field
  that has no documented default is ``None`` and means "the proxy's own behaviour".
- These are wire structs of ``ProxyConfig``: they only ever gain fields with defaults, and decoders ignore
  fields they do not know, so an older proxy reads a newer config.
"""

from __future__ import annotations

from typing import Literal, final

import msgspec

__all__ = [
    "CircuitBreakerConfig",
    "ConnectionLimitsConfig",
    "FailurePercentageConfig",
    "GrpcCheckConfig",
    "GrpcRetryConfig",
    "HashPolicyConfig",
    "HeaderMatchConfig",
    "HealthCheckConfig",
    "HostSelectionConfig",
    "HttpCheckConfig",
    "HttpRetryConfig",
    "LbConfig",
    "OutlierDetectionConfig",
    "ResetHeaderConfig",
    "RetryConfig",
    "SuccessRateConfig",
    "TcpCheckConfig",
    "TimeoutConfig",
    "Wire",
]


class Wire(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the config structs (msgspec does not inherit ``kw_only``: subclasses repeat it)."""


@final
class TimeoutConfig(Wire, frozen=True, kw_only=True):
    """MeshTimeout ``to[]``; the defaults are Kuma's default MeshTimeout. ``0`` disables a timeout."""

    connect_timeout_s: float = 5.0
    idle_timeout_s: float = 3600.0
    http_request_timeout_s: float = 15.0
    http_stream_idle_timeout_s: float = 1800.0
    http_max_stream_duration_s: float = 0.0
    http_max_connection_duration_s: float = 0.0
    http_request_headers_timeout_s: float = 0.0


@final
class HeaderMatchConfig(Wire, frozen=True, kw_only=True):
    """``type`` is Kuma's: Exact, Present, RegularExpression, Absent, Prefix."""

    type: str
    name: str
    value: str = ""


@final
class ResetHeaderConfig(Wire, frozen=True, kw_only=True):
    """A rate-limit response header giving the retry time, as ``Seconds`` or ``UnixTimestamp``."""

    name: str
    format: str


@final
class HostSelectionConfig(Wire, frozen=True, kw_only=True):
    """A retry host predicate: OmitPreviousHosts, OmitHostsWithTags (``tags``), OmitPreviousPriorities."""

    predicate: str
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    update_frequency: int = 2


@final
class HttpRetryConfig(Wire, frozen=True, kw_only=True):
    """HTTP retries. ``retry_on`` lists Kuma's conditions and status codes as strings (``"503"``); empty
    means the proxy's default conditions. Back-off is exponential with jitter, capped at the maximum
    (Envoy: 25ms base, 10 times the base at most)."""

    num_retries: int = 1
    per_try_timeout_s: float | None = None
    back_off_base_s: float = 0.025
    back_off_max_s: float = 0.25
    retry_on: list[str] = msgspec.field(default_factory=list)
    rate_limited_reset_headers: list[ResetHeaderConfig] = msgspec.field(default_factory=list)
    rate_limited_max_interval_s: float = 300.0
    retriable_response_headers: list[HeaderMatchConfig] = msgspec.field(default_factory=list)
    retriable_request_headers: list[HeaderMatchConfig] = msgspec.field(default_factory=list)
    host_selection: list[HostSelectionConfig] = msgspec.field(default_factory=list)
    host_selection_max_attempts: int | None = None


@final
class GrpcRetryConfig(Wire, frozen=True, kw_only=True):
    """gRPC retries; ``retry_on`` holds gRPC status names (Canceled, DeadlineExceeded, ...)."""

    num_retries: int = 1
    per_try_timeout_s: float | None = None
    back_off_base_s: float = 0.025
    back_off_max_s: float = 0.25
    retry_on: list[str] = msgspec.field(default_factory=list)
    rate_limited_reset_headers: list[ResetHeaderConfig] = msgspec.field(default_factory=list)
    rate_limited_max_interval_s: float = 300.0


@final
class RetryConfig(Wire, frozen=True, kw_only=True):
    """MeshRetry ``to[]``: one block per protocol; the proxy uses the block of the cluster's protocol.
    ``tcp_max_connect_attempts`` counts connection attempts, the first included."""

    tcp_max_connect_attempts: int | None = None
    http: HttpRetryConfig | None = None
    grpc: GrpcRetryConfig | None = None


@final
class ConnectionLimitsConfig(Wire, frozen=True, kw_only=True):
    """Envoy's circuit-breaker thresholds (defaults 1024 / 1024 / 1024 / 3)."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    max_connection_pools: int | None = None


@final
class SuccessRateConfig(Wire, frozen=True, kw_only=True):
    """Eject hosts whose success rate is below mean - factor * stddev (Envoy defaults)."""

    minimum_hosts: int = 5
    request_volume: int = 100
    standard_deviation_factor: float = 1.9


@final
class FailurePercentageConfig(Wire, frozen=True, kw_only=True):
    """Eject hosts whose failure percentage reaches ``threshold_percent`` (Envoy defaults)."""

    minimum_hosts: int = 5
    request_volume: int = 50
    threshold_percent: float = 85.0


@final
class OutlierDetectionConfig(Wire, frozen=True, kw_only=True):
    """Passive health checking; the ``consecutive_*`` detectors are off when None."""

    disabled: bool = False
    interval_s: float = 10.0
    base_ejection_time_s: float = 30.0
    max_ejection_percent: float = 10.0
    split_external_and_local_errors: bool = False
    consecutive_total_failures: int | None = None
    consecutive_gateway_failures: int | None = None
    consecutive_local_origin_failures: int | None = None
    success_rate: SuccessRateConfig | None = None
    failure_percentage: FailurePercentageConfig | None = None
    healthy_panic_threshold_percent: float | None = None


@final
class CircuitBreakerConfig(Wire, frozen=True, kw_only=True):
    """MeshCircuitBreaker ``to[]``."""

    connection_limits: ConnectionLimitsConfig | None = None
    outlier_detection: OutlierDetectionConfig | None = None


@final
class TcpCheckConfig(Wire, frozen=True, kw_only=True):
    """Connect, send ``send`` if set, then expect each ``receive`` block in order."""

    send: bytes | None = None
    receive: list[bytes] = msgspec.field(default_factory=list)


@final
class HttpCheckConfig(Wire, frozen=True, kw_only=True):
    """GET ``path``; healthy when the status is one of ``expected_statuses`` (Envoy's default: 200)."""

    path: str = "/"
    expected_statuses: list[int] = msgspec.field(default_factory=lambda: [200])
    request_headers_to_set: dict[str, str] = msgspec.field(default_factory=dict)
    request_headers_to_add: dict[str, str] = msgspec.field(default_factory=dict)


@final
class GrpcCheckConfig(Wire, frozen=True, kw_only=True):
    """The gRPC health protocol; ``service_name`` empty checks the whole server."""

    service_name: str = ""
    authority: str | None = None


@final
class HealthCheckConfig(Wire, frozen=True, kw_only=True):
    """MeshHealthCheck ``to[]`` (active checks); defaults are Kuma's. Exactly the enabled probes are set."""

    interval_s: float = 60.0
    timeout_s: float = 15.0
    unhealthy_threshold: int = 5
    healthy_threshold: int = 1
    initial_jitter_s: float | None = None
    interval_jitter_s: float | None = None
    interval_jitter_percent: float | None = None
    healthy_panic_threshold_percent: float | None = None
    fail_traffic_on_panic: bool = False
    no_traffic_interval_s: float | None = None
    reuse_connection: bool = True
    event_log_path: str | None = None
    always_log_health_check_failures: bool = False
    tcp: TcpCheckConfig | None = None
    http: HttpCheckConfig | None = None
    grpc: GrpcCheckConfig | None = None


@final
class HashPolicyConfig(Wire, frozen=True, kw_only=True):
    """What a hash-based balancer hashes. ``key`` is the header, cookie, query parameter or filter-state key
    named by ``type``; ``source_ip`` is for ``Connection``; the cookie fields only for ``Cookie``."""

    type: str
    terminal: bool = False
    key: str | None = None
    source_ip: bool = False
    cookie_ttl_s: float | None = None
    cookie_path: str | None = None


@final
class LbConfig(Wire, frozen=True, kw_only=True):
    """MeshLoadBalancingStrategy ``to[]``, plus the mesh's locality switch.

    ``locality_aware``: endpoints of a higher ``priority`` get traffic only when fewer than
    ``failover_threshold_percent`` of the lower priority's endpoints are healthy. The algorithm settings
    apply to ``type`` only: ``choice_count``/``active_request_bias`` (LeastRequest), ``hash_function`` and
    the ring sizes (RingHash), ``table_size`` (Maglev), ``hash_policies`` (RingHash, Maglev).
    """

    type: Literal["RoundRobin", "LeastRequest", "RingHash", "Random", "Maglev"] = "RoundRobin"
    locality_aware: bool = False
    failover_threshold_percent: float = 50.0
    choice_count: int | None = None
    active_request_bias: float | None = None
    hash_function: str | None = None
    min_ring_size: int | None = None
    max_ring_size: int | None = None
    table_size: int | None = None
    hash_policies: list[HashPolicyConfig] = msgspec.field(default_factory=list)
