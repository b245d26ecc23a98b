"""Per-proxy configuration, computed by a zone control plane as pure functions of a ``MeshSnapshot``.

``generate_sidecar`` (a dataplane; ``generate_sidecars`` for many, sharing the zone's analysis),
``generate_ingress`` and ``generate_egress`` (the zone's gateways, for
every mesh) return a sealed ``ProxyConfig``: the snapshot the zone CP pushes over the DP protocol, with
``notes`` saying why anything one might expect is missing. ``available_services`` computes what this
zone's ingresses advertise to the other zones. ``sni_for`` names a destination on the wire.

Sans-IO: nothing here imports asyncio or socket, reads a clock or touches a store.
"""

from __future__ import annotations

from kmesh.proxyconfig._config import (
    Action,
    Cluster,
    EgressConfig,
    Endpoint,
    ExternalRoute,
    InboundConfig,
    IngressConfig,
    OutboundConfig,
    ProxyConfig,
    ProxyType,
    SniRoute,
    UpstreamTls,
    Via,
    seal,
)
from kmesh.proxyconfig._names import (
    EGRESS_SERVICE,
    cluster_name,
    external_cluster_name,
    external_sni,
    sni_for,
    spiffe_id,
)
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
from kmesh.proxyconfig._sidecar import generate_sidecar, generate_sidecars
from kmesh.proxyconfig._snapshot import MeshSnapshot, effective_tags, inbound_healthy, zone_of
from kmesh.proxyconfig._topology import available_services
from kmesh.proxyconfig._zoneproxies import generate_egress, generate_ingress

__all__ = [
    "EGRESS_SERVICE",
    "Action",
    "CircuitBreakerConfig",
    "Cluster",
    "ConnectionLimitsConfig",
    "EgressConfig",
    "Endpoint",
    "ExternalRoute",
    "FailurePercentageConfig",
    "GrpcCheckConfig",
    "GrpcRetryConfig",
    "HashPolicyConfig",
    "HeaderMatchConfig",
    "HealthCheckConfig",
    "HostSelectionConfig",
    "HttpCheckConfig",
    "HttpRetryConfig",
    "InboundConfig",
    "IngressConfig",
    "LbConfig",
    "MeshSnapshot",
    "OutboundConfig",
    "OutlierDetectionConfig",
    "ProxyConfig",
    "ProxyType",
    "ResetHeaderConfig",
    "RetryConfig",
    "SniRoute",
    "SuccessRateConfig",
    "TcpCheckConfig",
    "TimeoutConfig",
    "UpstreamTls",
    "Via",
    "available_services",
    "cluster_name",
    "effective_tags",
    "external_cluster_name",
    "external_sni",
    "generate_egress",
    "generate_ingress",
    "generate_sidecar",
    "generate_sidecars",
    "inbound_healthy",
    "seal",
    "sni_for",
    "spiffe_id",
    "zone_of",
]
