"""Merged policy ``default`` blocks -> the normalized cluster settings of ``_resilience``.

Rules:
- Durations become float seconds (``parse_duration``), Kuma percentages floats, HTTP status codes written
  as numbers or strings become strings in ``retry_on`` (``5XX`` is spelled ``5xx``, Kuma's enum).
- A field the policy leaves unset takes the default documented on the config struct; a disabled health
  check probe is left out, and a health check with every probe disabled is no health check at all.
- ``maxInterval`` of a back-off defaults to ten times ``baseInterval``, as Envoy does.
"""

from __future__ import annotations

import base64
from typing import Any

from kmesh.model import parse_duration
from kmesh.model._fields import percentage_value
from kmesh.model.types.circuit_breaker import CircuitBreakerConf, OutlierDetection
from kmesh.model.types.common import HeaderMatch
from kmesh.model.types.health_check import HealthCheckConf
from kmesh.model.types.load_balancing import HashPolicy, LoadBalancer
from kmesh.model.types.retry import BackOff, GrpcRetry, HttpRetry, RateLimitedBackOff, RetryConf
from kmesh.model.types.timeout import TimeoutConf
from kmesh.proxyconfig._resilience import (
    CircuitBreakerConfig,
    ConnectionLimitsConfig,
    FailurePercentageConfig,
    GrpcCheckConfig,
    GrpcRetryConfig,
    HashPolicyConfig,
    HeaderMatchConfig,
    HealthCheckConfig,
    HostSelectionConfig,
    HttpCheckConfig,
    HttpRetryConfig,
    LbConfig,
    OutlierDetectionConfig,
    ResetHeaderConfig,
    RetryConfig,
    SuccessRateConfig,
    TcpCheckConfig,
    TimeoutConfig,
)

__all__ = [
    "circuit_breaker_config",
    "health_check_config",
    "lb_algorithm",
    "lb_config",
    "retry_config",
    "timeout_config",
]


def _seconds(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def _number(value: int | float | str | None) -> float | None:
    # Kuma writes percentages and decimal factors as ints or strings ("99.5").
    return None if value is None else float(percentage_value(value))


def _kw(**values: Any) -> dict[str, Any]:
    """Keyword arguments without the unset ones, so the config struct's defaults apply to those."""
    return {k: v for k, v in values.items() if v is not None}


def timeout_config(conf: TimeoutConf | None) -> TimeoutConfig:
    """MeshTimeout ``to[]`` -> TimeoutConfig; Kuma's default timeouts when there is no policy."""
    if conf is None:
        return TimeoutConfig()
    http = conf.http
    return TimeoutConfig(
        **_kw(
            connect_timeout_s=_seconds(conf.connection_timeout),
            idle_timeout_s=_seconds(conf.idle_timeout),
            http_request_timeout_s=_seconds(http.request_timeout) if http else None,
            http_stream_idle_timeout_s=_seconds(http.stream_idle_timeout) if http else None,
            http_max_stream_duration_s=_seconds(http.max_stream_duration) if http else None,
            http_max_connection_duration_s=_seconds(http.max_connection_duration) if http else None,
            http_request_headers_timeout_s=_seconds(http.request_headers_timeout) if http else None,
        )
    )


def _back_off(back_off: BackOff | None) -> tuple[float, float]:
    """``(base, max)`` in seconds: Envoy's 25ms base, and ten times the base as the cap."""
    base = _seconds(back_off.base_interval) if back_off else None
    top = _seconds(back_off.max_interval) if back_off else None
    base = 0.025 if base is None else base
    return base, base * 10 if top is None else top


def _rate_limited(back_off: RateLimitedBackOff | None) -> dict[str, Any]:
    if back_off is None:
        return {}
    headers = [ResetHeaderConfig(name=h.name, format=h.format) for h in back_off.reset_headers]
    return {
        "rate_limited_reset_headers": headers,
        **_kw(rate_limited_max_interval_s=_seconds(back_off.max_interval)),
    }


def _header_matches(matches: list[HeaderMatch] | None) -> list[HeaderMatchConfig]:
    return [HeaderMatchConfig(type=m.type, name=m.name, value=m.value) for m in matches or ()]


def _retry_on(items: list[str | int] | None) -> list[str]:
    return ["5xx" if str(item) == "5XX" else str(item) for item in items or ()]


def _http_retry(http: HttpRetry) -> HttpRetryConfig:
    hosts = [
        HostSelectionConfig(
            predicate=p.predicate, tags=dict(p.tags or {}), update_frequency=p.update_frequency
        )
        for p in http.host_selection or ()
    ]
    base, top = _back_off(http.back_off)
    return HttpRetryConfig(
        **_kw(num_retries=http.num_retries, per_try_timeout_s=_seconds(http.per_try_timeout)),
        back_off_base_s=base,
        back_off_max_s=top,
        **_rate_limited(http.rate_limited_back_off),
        retry_on=_retry_on(http.retry_on),
        retriable_response_headers=_header_matches(http.retriable_response_headers),
        retriable_request_headers=_header_matches(http.retriable_request_headers),
        host_selection=hosts,
        host_selection_max_attempts=http.host_selection_max_attempts,
    )


def _grpc_retry(grpc: GrpcRetry) -> GrpcRetryConfig:
    base, top = _back_off(grpc.back_off)
    return GrpcRetryConfig(
        **_kw(num_retries=grpc.num_retries, per_try_timeout_s=_seconds(grpc.per_try_timeout)),
        back_off_base_s=base,
        back_off_max_s=top,
        **_rate_limited(grpc.rate_limited_back_off),
        retry_on=list(grpc.retry_on or ()),
    )


def retry_config(conf: RetryConf | None) -> RetryConfig | None:
    """MeshRetry ``to[]`` -> RetryConfig (None: no retries configured)."""
    if conf is None:
        return None
    return RetryConfig(
        tcp_max_connect_attempts=conf.tcp.max_connect_attempt if conf.tcp else None,
        http=_http_retry(conf.http) if conf.http else None,
        grpc=_grpc_retry(conf.grpc) if conf.grpc else None,
    )


def _outlier(od: OutlierDetection) -> OutlierDetectionConfig:
    det = od.detectors
    success = det.success_rate if det else None
    failure = det.failure_percentage if det else None
    return OutlierDetectionConfig(
        disabled=od.disabled,
        split_external_and_local_errors=od.split_external_and_local_errors,
        **_kw(
            interval_s=_seconds(od.interval),
            base_ejection_time_s=_seconds(od.base_ejection_time),
            max_ejection_percent=None if od.max_ejection_percent is None else float(od.max_ejection_percent),
            consecutive_total_failures=det.total_failures.consecutive if det and det.total_failures else None,
            consecutive_gateway_failures=(
                det.gateway_failures.consecutive if det and det.gateway_failures else None
            ),
            consecutive_local_origin_failures=(
                det.local_origin_failures.consecutive if det and det.local_origin_failures else None
            ),
            success_rate=SuccessRateConfig(
                **_kw(
                    minimum_hosts=success.minimum_hosts,
                    request_volume=success.request_volume,
                    standard_deviation_factor=_number(success.standard_deviation_factor),
                )
            )
            if success
            else None,
            failure_percentage=FailurePercentageConfig(
                **_kw(
                    minimum_hosts=failure.minimum_hosts,
                    request_volume=failure.request_volume,
                    threshold_percent=_number(failure.threshold),
                )
            )
            if failure
            else None,
            healthy_panic_threshold_percent=_number(od.healthy_panic_threshold),
        ),
    )


def circuit_breaker_config(conf: CircuitBreakerConf | None) -> CircuitBreakerConfig | None:
    """MeshCircuitBreaker ``to[]`` -> CircuitBreakerConfig (None: no policy)."""
    if conf is None:
        return None
    limits = conf.connection_limits
    return CircuitBreakerConfig(
        connection_limits=ConnectionLimitsConfig(
            **_kw(
                max_connections=limits.max_connections,
                max_pending_requests=limits.max_pending_requests,
                max_requests=limits.max_requests,
                max_retries=limits.max_retries,
                max_connection_pools=limits.max_connection_pools,
            )
        )
        if limits
        else None,
        outlier_detection=_outlier(conf.outlier_detection) if conf.outlier_detection else None,
    )


def health_check_config(conf: HealthCheckConf | None) -> HealthCheckConfig | None:
    """MeshHealthCheck ``to[]`` -> HealthCheckConfig (None: no policy, or every probe disabled)."""
    if conf is None:
        return None
    tcp = conf.tcp if conf.tcp and not conf.tcp.disabled else None
    http = conf.http if conf.http and not conf.http.disabled else None
    grpc = conf.grpc if conf.grpc and not conf.grpc.disabled else None
    if tcp is None and http is None and grpc is None:
        return None
    headers = http.request_headers_to_add if http else None
    return HealthCheckConfig(
        **_kw(
            interval_s=_seconds(conf.interval),
            timeout_s=_seconds(conf.timeout),
            unhealthy_threshold=conf.unhealthy_threshold,
            healthy_threshold=conf.healthy_threshold,
            initial_jitter_s=_seconds(conf.initial_jitter),
            interval_jitter_s=_seconds(conf.interval_jitter),
            interval_jitter_percent=None
            if conf.interval_jitter_percent is None
            else float(conf.interval_jitter_percent),
            healthy_panic_threshold_percent=_number(conf.healthy_panic_threshold),
            fail_traffic_on_panic=conf.fail_traffic_on_panic,
            no_traffic_interval_s=_seconds(conf.no_traffic_interval),
            reuse_connection=conf.reuse_connection,
            event_log_path=conf.event_log_path,
            always_log_health_check_failures=conf.always_log_health_check_failures,
        ),
        tcp=TcpCheckConfig(
            send=base64.b64decode(tcp.send) if tcp.send else None,
            receive=[base64.b64decode(block) for block in tcp.receive],
        )
        if tcp
        else None,
        http=HttpCheckConfig(
            path=http.path,
            **_kw(expected_statuses=list(http.expected_statuses) or None),
            request_headers_to_set={h.name: h.value for h in headers.set} if headers else {},
            request_headers_to_add={h.name: h.value for h in headers.add} if headers else {},
        )
        if http
        else None,
        grpc=GrpcCheckConfig(**_kw(service_name=grpc.service_name, authority=grpc.authority))
        if grpc
        else None,
    )


def _hash_policy(policy: HashPolicy) -> HashPolicyConfig:
    key: str | None = None
    if policy.header is not None:
        key = policy.header.name
    elif policy.cookie is not None:
        key = policy.cookie.name
    elif policy.query_parameter is not None:
        key = policy.query_parameter.name
    elif policy.filter_state is not None:
        key = policy.filter_state.key
    cookie = policy.cookie
    return HashPolicyConfig(
        type=policy.type,
        terminal=policy.terminal,
        key=key,
        source_ip=policy.connection.source_ip if policy.connection else False,
        cookie_ttl_s=_seconds(cookie.ttl) if cookie else None,
        cookie_path=cookie.path if cookie else None,
    )


def lb_algorithm(balancer: LoadBalancer | None) -> dict[str, Any]:
    """The algorithm fields of ``LbConfig`` for ``balancer`` (RoundRobin when None)."""
    if balancer is None:
        return {}
    least, ring, maglev = balancer.least_request, balancer.ring_hash, balancer.maglev
    policies = (ring.hash_policies if ring else []) + (maglev.hash_policies if maglev else [])
    bias = least.active_request_bias if least else None
    return _kw(
        type=balancer.type,
        choice_count=least.choice_count if least else None,
        active_request_bias=None if bias is None else float(percentage_value(bias)),
        hash_function=ring.hash_function if ring else None,
        min_ring_size=ring.min_ring_size if ring else None,
        max_ring_size=ring.max_ring_size if ring else None,
        table_size=maglev.table_size if maglev else None,
        hash_policies=[_hash_policy(p) for p in policies] or None,
    )


def lb_config(
    balancer: LoadBalancer | None, *, locality_aware: bool, failover_threshold: float | None
) -> LbConfig:
    """The full ``LbConfig`` of a cluster."""
    extra = _kw(failover_threshold_percent=failover_threshold)
    return LbConfig(locality_aware=locality_aware, **extra, **lb_algorithm(balancer))
