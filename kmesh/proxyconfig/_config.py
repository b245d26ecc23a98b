"""``ProxyConfig``: the snapshot a zone control plane pushes to one proxy over the DP protocol.

Rules:
- Frozen msgspec Structs, encoded as msgpack on the wire and as YAML/JSON for ``/config_dump`` and
  ``kmeshctl inspect``. Forward compatible: structs only ever gain fields with defaults, and decoders ignore
  unknown fields, so a proxy one version behind still reads the config.
- Every list is sorted and every map built in sorted order by the generator, so the same inputs encode to
  the same bytes; ``version`` is a digest of those bytes (see ``seal``), so an unchanged config keeps its
  version and the proxy can skip it.
- Units are in the names (``_s``, ``_percent``); addresses are IPs or DNS names, ports 1-65535.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal, final

import msgspec

from kmesh.proxyconfig._resilience import (
    CircuitBreakerConfig,
    HealthCheckConfig,
    LbConfig,
    RetryConfig,
    TimeoutConfig,
    Wire,
)

__all__ = [
    "Action",
    "Cluster",
    "EgressConfig",
    "Endpoint",
    "ExternalRoute",
    "InboundConfig",
    "IngressConfig",
    "OutboundConfig",
    "ProxyConfig",
    "ProxyType",
    "SniRoute",
    "UpstreamTls",
    "Via",
    "seal",
]

ProxyType = Literal["sidecar", "ingress", "egress"]
# How an endpoint is reached: "local" a proxy of this zone (direct mTLS), "ingress" another zone's zone
# ingress, "egress" this zone's zone egress, "external" a host outside the mesh (no mesh mTLS).
Via = Literal["local", "ingress", "egress", "external"]
Action = Literal["Allow", "Deny"]


@final
class Endpoint(Wire, frozen=True, kw_only=True):
    """One address a cluster may connect to.

    ``weight``: relative share of connections among the endpoints of the same ``priority``; for a zone
    ingress it is the number of healthy instances behind it (scaled, see ``Cluster``). ``priority``: 0 is
    used first; a higher one only when the lower ones are unhealthy (locality-aware clusters). ``zone``:
    where the instances behind the endpoint run ("" when it is a zone egress leading to several zones).
    ``sni``: the TLS server name to send (always set for ingress and egress hops, which route on it).
    ``spiffe_id``: the URI SAN the peer terminating TLS must present; None without mesh mTLS.
    """

    address: str
    port: int
    weight: int = 1
    zone: str = ""
    priority: int = 0
    via: Via = "local"
    sni: str | None = None
    spiffe_id: str | None = None


@final
class UpstreamTls(Wire, frozen=True, kw_only=True):
    """TLS the proxy originates to an external service (MeshExternalService ``tls``).

    ``verification`` is Secured, SkipSAN, SkipCA or SkipAll; ``subject_alt_names`` are ``(type, value)``
    pairs with type Exact or Prefix. Certificates are referenced, not inlined, unless given inline:
    ``*_secret`` names a Secret of the mesh, ``*_file`` a file on the proxy's host, ``*_inline`` the PEM.
    """

    server_name: str | None = None
    min_version: str = "TLSAuto"
    max_version: str = "TLSAuto"
    allow_renegotiation: bool = False
    verification: str = "Secured"
    subject_alt_names: list[tuple[str, str]] = msgspec.field(default_factory=list)
    ca_cert_secret: str | None = None
    ca_cert_file: str | None = None
    ca_cert_inline: bytes | None = None
    client_cert_secret: str | None = None
    client_cert_file: str | None = None
    client_cert_inline: bytes | None = None
    client_key_secret: str | None = None
    client_key_file: str | None = None
    client_key_inline: bytes | None = None


@final
class Cluster(Wire, frozen=True, kw_only=True):
    """A destination: a service (or one tag subset of it) and how to balance over its endpoints.

    ``tags`` is the subset, ``kuma.io/service`` included; an endpoint serves the cluster when its
    instances carry every one of these tags. ``mtls``: connect with the mesh certificate and check each
    endpoint's ``spiffe_id``. Weights are integers proportional to instance counts: each local instance
    weighs ``weight_scale``, a zone's ingresses together weigh its instance count times ``weight_scale``
    (split evenly when a zone has several), and ``weight_scale`` is the least common multiple of those
    splits so every weight stays whole (1 when each zone has one ingress).
    ``upstream_tls``: TLS origination for an external service reached directly.
    """

    name: str
    service: str
    tags: dict[str, str]
    external: bool = False
    mtls: bool = False
    weight_scale: int = 1
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)
    lb: LbConfig = msgspec.field(default_factory=LbConfig)
    timeout: TimeoutConfig = msgspec.field(default_factory=TimeoutConfig)
    retry: RetryConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None
    health_check: HealthCheckConfig | None = None
    upstream_tls: UpstreamTls | None = None


@final
class InboundConfig(Wire, frozen=True, kw_only=True):
    """A port the proxy accepts mesh traffic on and forwards to its application.

    Who may connect (MeshTrafficPermission, enforced only with mTLS, on the peer's SPIFFE id): a peer in
    ``allowed_spiffe_ids`` is let in, one in ``denied_spiffe_ids`` refused, any other peer of the mesh gets
    ``default_action``. ``shadow_denied_spiffe_ids`` are allowed but logged as if denied
    (AllowWithShadowDeny). With mTLS on, empty lists and ``default_action: Deny`` deny everyone.
    """

    name: str | None = None
    address: str
    port: int
    service_address: str
    service_port: int
    service: str
    protocol: str = "tcp"
    tags: dict[str, str]
    allowed_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    denied_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    shadow_denied_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    default_action: Action = "Deny"


@final
class OutboundConfig(Wire, frozen=True, kw_only=True):
    """A local listener for the application's calls to ``service`` (the subset ``tags``), sent to the
    cluster named ``cluster``."""

    address: str
    port: int
    service: str
    tags: dict[str, str]
    cluster: str


@final
class SniRoute(Wire, frozen=True, kw_only=True):
    """Where a zone ingress or egress forwards a connection whose ClientHello carries a given SNI, without
    decrypting it: the destination ``(mesh, service, tags)`` and its endpoints."""

    mesh: str
    service: str
    tags: dict[str, str]
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)


@final
class ExternalRoute(Wire, frozen=True, kw_only=True):
    """A MeshExternalService served by a zone egress: it terminates the sidecar's mTLS presenting
    ``identity``, then connects to ``endpoints`` (originating TLS per ``upstream_tls``).

    Who may use it (MeshTrafficPermission, on the client's SPIFFE id of ``mesh``): read exactly as
    ``InboundConfig``'s lists. ``default_action`` defaults to ``Allow``, unlike an inbound's, because a
    route without these fields comes from a control plane that predates them, whose egress let any verified
    identity of the mesh through: decoding such a config keeps that behaviour. A control plane that knows
    the fields always sends them, ``Deny`` included.
    """

    mesh: str
    name: str
    identity: str
    protocol: str = "tcp"
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)
    upstream_tls: UpstreamTls | None = None
    allowed_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    denied_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    shadow_denied_spiffe_ids: list[str] = msgspec.field(default_factory=list)
    default_action: Action = "Allow"


@final
class IngressConfig(Wire, frozen=True, kw_only=True):
    """A zone ingress's table: SNI -> local healthy endpoints, for every mesh with mTLS."""

    routes: dict[str, SniRoute] = msgspec.field(default_factory=dict)


@final
class EgressConfig(Wire, frozen=True, kw_only=True):
    """A zone egress's tables: SNI -> other zones' ingresses (passed through encrypted) and SNI -> external
    services (mTLS terminated)."""

    routes: dict[str, SniRoute] = msgspec.field(default_factory=dict)
    external_services: dict[str, ExternalRoute] = msgspec.field(default_factory=dict)


@final
class ProxyConfig(Wire, frozen=True, kw_only=True):
    """Everything one proxy needs.

    ``mesh`` is "" for ingresses and egresses, which serve every mesh. ``identity`` is the proxy's SPIFFE
    id (its first inbound's service; "" without mTLS or for an ingress, which never terminates TLS).
    ``notes`` say, for people, why something one might expect is missing (``kmeshctl inspect``).
    """

    version: str = ""
    proxy_type: ProxyType
    mesh: str = ""
    name: str
    zone: str
    mtls_enabled: bool = False
    identity: str = ""
    inbounds: list[InboundConfig] = msgspec.field(default_factory=list)
    outbounds: list[OutboundConfig] = msgspec.field(default_factory=list)
    clusters: list[Cluster] = msgspec.field(default_factory=list)
    ingress: IngressConfig | None = None
    egress: EgressConfig | None = None
    notes: list[str] = msgspec.field(default_factory=list)


_ENCODER = msgspec.msgpack.Encoder()


def seal(config: ProxyConfig) -> ProxyConfig:
    """``config`` with ``version`` set to a digest of its content (the version itself excluded), so equal
    content always carries an equal version and any change a different one."""
    body = _ENCODER.encode(msgspec.structs.replace(config, version=""))
    digest = base64.b32encode(hashlib.sha256(body).digest()).decode("ascii").lower()[:16]
    return msgspec.structs.replace(config, version=digest)
