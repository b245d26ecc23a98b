"""Dataplane (one proxy's declaration: its address, inbounds, outbounds) and DataplaneInsight (its sessions).

Rules (Kuma's ``dataplane_validator.go``):
- ``networking.address`` is an IP address or DNS name, and not a wildcard (``0.0.0.0``, ``::``).
- Every inbound has a ``kuma.io/service`` tag, and ``kuma.io/protocol`` if set is one kmesh knows.
- Every outbound names its service by ``tags["kuma.io/service"]`` or the legacy ``service`` field.
- A sidecar has at least one inbound; a delegated gateway has none; a builtin gateway has neither inbounds
  nor outbounds.
- Inbounds do not share a port on one address, nor outbounds; the admin port is not an inbound port.
Dataplanes and their insights flow zone-to-global: the global keeps them for observability only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, final

import msgspec

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import (
    Address,
    IPAddress,
    NonNegInt,
    Port,
    PositiveDuration,
    PositiveInt,
    Problems,
    Tags,
)
from kmesh.model._resource import LABEL_PROTOCOL, LABEL_SERVICE, Spec
from kmesh.model.types.common import EnvoyAdmin
from kmesh.model.types.insight import DiscoverySubscription, connected

__all__ = [
    "PROTOCOLS",
    "DataplaneInsightSpec",
    "DataplaneMtlsInsight",
    "DataplaneNetworking",
    "DataplaneSpec",
    "Gateway",
    "Health",
    "Inbound",
    "MetricsBackend",
    "Outbound",
    "ServiceProbe",
    "TcpProbe",
    "TransparentProxying",
]

PROTOCOLS = ("tcp", "http", "http2", "grpc", "kafka")
_WILDCARDS = ("0.0.0.0", "::")


@final
class Health(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ready: bool = False


@final
class TcpProbe(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A TCP connect probe; it has no settings."""


@final
class ServiceProbe(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the proxy probes its own application to fill in ``health.ready``."""

    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    unhealthy_threshold: PositiveInt | None = None
    healthy_threshold: PositiveInt | None = None
    tcp: TcpProbe | None = None


@final
class Inbound(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A port the proxy accepts mesh traffic on, forwarding it to the application."""

    port: Port
    service_port: Port | None = None
    service_address: IPAddress | None = None
    address: IPAddress | None = None
    name: str | None = None
    tags: Tags
    health: Health | None = None
    service_probe: ServiceProbe | None = None
    state: Literal["Ready", "NotReady", "Ignored"] | None = None

    def problems(self) -> Problems:
        if LABEL_SERVICE not in self.tags:
            yield f'tags["{LABEL_SERVICE}"]', "required: every inbound names its service"
        protocol = self.tags.get(LABEL_PROTOCOL)
        if protocol is not None and protocol not in PROTOCOLS:
            yield (
                f'tags["{LABEL_PROTOCOL}"]',
                f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}",
            )

    @property
    def service(self) -> str:
        return self.tags.get(LABEL_SERVICE, "")


@final
class Outbound(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A local port the proxy listens on for the application's calls to another service."""

    port: Port
    address: IPAddress | None = None
    tags: Tags = msgspec.field(default_factory=dict)
    # Kuma's legacy form: `service: web` instead of `tags: {kuma.io/service: web}`.
    service: str | None = None

    def problems(self) -> Problems:
        if self.tags and LABEL_SERVICE not in self.tags:
            yield f'tags["{LABEL_SERVICE}"]', "required: every outbound names its service"
        elif not self.tags and not self.service:
            yield "tags", f'required: set tags["{LABEL_SERVICE}"] (or the legacy service field)'

    @property
    def service_name(self) -> str:
        return self.tags.get(LABEL_SERVICE) or self.service or ""


@final
class Gateway(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["DELEGATED", "BUILTIN"] = "DELEGATED"
    tags: Tags

    def problems(self) -> Problems:
        if LABEL_SERVICE not in self.tags:
            yield f'tags["{LABEL_SERVICE}"]', "required: a gateway names its service"


@final
class TransparentProxying(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    redirect_port_inbound: Port | None = None
    redirect_port_outbound: Port | None = None
    direct_access_services: list[str] = msgspec.field(default_factory=list)
    reachable_services: list[str] = msgspec.field(default_factory=list)
    ip_family_mode: Literal["UnSpecified", "DualStack", "IPv4", "IPv6"] = "UnSpecified"


@final
class DataplaneNetworking(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    address: Address
    advertised_address: Address | None = None
    advertised_port: Port | None = None
    inbound: list[Inbound] = msgspec.field(default_factory=list)
    outbound: list[Outbound] = msgspec.field(default_factory=list)
    gateway: Gateway | None = None
    admin: EnvoyAdmin | None = None
    transparent_proxying: TransparentProxying | None = None

    def problems(self) -> Problems:
        if self.address in _WILDCARDS:
            yield "address", f"must be the proxy's own address, not the wildcard {self.address}"
        if self.gateway is None and not self.inbound:
            yield "inbound", "at least one inbound is required (or declare a gateway)"
        elif self.gateway is not None and self.inbound:
            yield "inbound", "must be empty for a gateway"
        elif self.gateway is not None and self.gateway.type == "BUILTIN" and self.outbound:
            yield "outbound", "must be empty for a builtin gateway"
        bound: dict[tuple[str, int], int] = {}
        for i, inbound in enumerate(self.inbound):
            where = (inbound.address or self.address, inbound.port)
            if where in bound:
                yield f"inbound[{i}].port", f"port {inbound.port} is already used by inbound[{bound[where]}]"
            bound.setdefault(where, i)
            if self.admin is not None and inbound.port == self.admin.port:
                yield "admin.port", f"must differ from the port of inbound[{i}]"
        listening: dict[tuple[str, int], int] = {}
        for i, outbound in enumerate(self.outbound):
            where = (outbound.address or "127.0.0.1", outbound.port)
            if where in listening:
                yield (
                    f"outbound[{i}].port",
                    f"port {outbound.port} is already used by outbound[{listening[where]}]",
                )
            listening.setdefault(where, i)


@final
class MetricsBackend(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the proxy exposes metrics; ``conf`` is the backend's own settings (Prometheus: port, path)."""

    name: str = ""
    type: Literal["prometheus"] = "prometheus"
    conf: dict[str, Any] = msgspec.field(default_factory=dict)


@final
class DataplaneSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    networking: DataplaneNetworking
    metrics: MetricsBackend | None = None

    @property
    def is_gateway(self) -> bool:
        return self.networking.gateway is not None


@final
class DataplaneMtlsInsight(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The proxy's current certificate: when it expires, when and how often it was renewed, by which CA."""

    certificate_expiration_time: datetime | None = None
    last_certificate_regeneration: datetime | None = None
    certificate_regenerations: NonNegInt = 0
    issued_backend: str = ""
    supported_backends: list[str] = msgspec.field(default_factory=list)


@final
class DataplaneInsightSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    subscriptions: list[DiscoverySubscription] = msgspec.field(default_factory=list)
    mtls: DataplaneMtlsInsight | None = msgspec.field(default=None, name="mTLS")
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def connected(self) -> bool:
        return connected(self.subscriptions)


register(
    ResourceDescriptor(
        name="Dataplane",
        spec_type=DataplaneSpec,
        scope=Scope.MESH,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="dataplanes",
        singular="dataplane",
        plural="dataplanes",
        short_names=("dp",),
        flat=True,
    )
)
register(
    ResourceDescriptor(
        name="DataplaneInsight",
        spec_type=DataplaneInsightSpec,
        scope=Scope.MESH,
        kds=KdsDirection.ZONE_TO_GLOBAL,
        path="dataplane-insights",
        singular="dataplane-insight",
        plural="dataplane-insights",
        read_only=True,
        flat=True,
    )
)
