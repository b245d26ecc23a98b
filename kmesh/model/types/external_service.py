"""MeshExternalService: a destination outside the mesh that proxies may call, with optional TLS origination.

Rules (Kuma's ``meshexternalservice`` validator):
- ``match`` says what the client calls (a port and protocol); ``endpoints`` are where it really goes,
  required unless an ``extension`` takes over.
- ``tls.version.min`` is not above ``max``; client certificate and key go together.
MeshExternalService has no targetRef, so it is not a ``policy`` in the descriptor table (its kmeshctl
columns are not the policy ones); like the policies it is created on the global and flows to zones.
"""

from __future__ import annotations

from typing import Any, Literal, final

import msgspec

from kmesh.model._fields import Address, Port, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.common import DataSource
from kmesh.model.types.targetref import register_policy

__all__ = [
    "Endpoint",
    "Extension",
    "ExternalServiceMatch",
    "ExternalServiceTls",
    "MeshExternalServiceSpec",
    "SanMatch",
    "TlsVerification",
    "TlsVersion",
]

TlsVersionName = Literal["TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13"]
_ORDER = {"TLS10": 0, "TLS11": 1, "TLS12": 2, "TLS13": 3}


@final
class ExternalServiceMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["HostnameGenerator"] = "HostnameGenerator"
    port: Port
    protocol: Literal["tcp", "grpc", "http", "http2"] = "tcp"


@final
class Extension(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str
    config: Any = None


@final
class Endpoint(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    address: Address
    port: Port


@final
class TlsVersion(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    min: TlsVersionName = "TLSAuto"
    max: TlsVersionName = "TLSAuto"

    def problems(self) -> Problems:
        if self.min in _ORDER and self.max in _ORDER and _ORDER[self.min] > _ORDER[self.max]:
            yield "min", "must not be above max"


@final
class SanMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Exact", "Prefix"] = "Exact"
    value: str


@final
class TlsVerification(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: Literal["Secured", "SkipSAN", "SkipCA", "SkipAll"] = "Secured"
    server_name: str | None = None
    subject_alt_names: list[SanMatch] = msgspec.field(default_factory=list)
    ca_cert: DataSource | None = None
    client_cert: DataSource | None = None
    client_key: DataSource | None = None

    def problems(self) -> Problems:
        if (self.client_cert is None) != (self.client_key is None):
            missing = "clientKey" if self.client_key is None else "clientCert"
            yield missing, "clientCert and clientKey must be set together"


@final
class ExternalServiceTls(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = False
    version: TlsVersion | None = None
    allow_renegotiation: bool = False
    verification: TlsVerification | None = None


@final
class MeshExternalServiceSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    match: ExternalServiceMatch
    extension: Extension | None = None
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)
    tls: ExternalServiceTls | None = None

    def problems(self) -> Problems:
        if self.extension is None and not self.endpoints:
            yield "endpoints", "must list at least one endpoint (unless an extension provides them)"


register_policy(
    "MeshExternalService",
    MeshExternalServiceSpec,
    path="meshexternalservices",
    short_names=("extsvc",),
    policy=False,
)
