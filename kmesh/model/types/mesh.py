"""Mesh: the unit of isolation, with its mTLS backends and routing switches (Kuma's flat legacy form).

Rules (Kuma's ``mesh_validator.go``):
- Backend names are unique and non-empty; ``enabledBackend`` names one of them.
- A ``builtin`` backend takes ``conf.caCert`` only; a ``provided`` one needs ``conf.cert`` and ``conf.key``.
- ``dpCert.rotation.expiration`` and ``caCert.expiration`` are durations greater than zero (``1d``, ``10y``).
- ``routing.zoneEgress`` needs mTLS: the egress routes by SNI inside mTLS connections.
"""

from __future__ import annotations

from typing import Annotated, Literal, final

import msgspec

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import PositiveDuration, Problems, Selector
from kmesh.model._resource import Spec
from kmesh.model.types.common import DataSource

__all__ = [
    "CaCert",
    "CertificateAuthorityBackend",
    "CertificateAuthorityConf",
    "Constraints",
    "DataplaneProxyConstraints",
    "DpCert",
    "MeshNetworking",
    "MeshSpec",
    "Mtls",
    "NetworkingOutbound",
    "Rotation",
    "Routing",
    "TagRules",
]


@final
class Rotation(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expiration: PositiveDuration | None = None


@final
class DpCert(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long the certificates of this backend's proxies live (Kuma's default is 24h)."""

    rotation: Rotation | None = None
    request_timeout: PositiveDuration | None = None


@final
class CaCert(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The builtin CA's own certificate: its RSA key size and lifetime."""

    rsa_bits: Annotated[int, msgspec.Meta(ge=2048, le=8192)] | None = msgspec.field(
        default=None, name="RSAbits"
    )
    expiration: PositiveDuration | None = None


@final
class CertificateAuthorityConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``conf`` of a backend: ``caCert`` for ``builtin``; ``cert`` and ``key`` for ``provided``."""

    ca_cert: CaCert | None = None
    cert: DataSource | None = None
    key: DataSource | None = None


@final
class CertificateAuthorityBackend(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    type: Literal["builtin", "provided"]
    dp_cert: DpCert | None = None
    conf: CertificateAuthorityConf | None = None
    # PERMISSIVE accepts plaintext as well as mTLS on inbounds, for migrating a mesh to mTLS.
    mode: Literal["STRICT", "PERMISSIVE"] = "STRICT"

    def problems(self) -> Problems:
        if not self.name:
            yield "name", "must not be empty"
        conf = self.conf or CertificateAuthorityConf()
        if self.type == "builtin":
            for wire, value in (("cert", conf.cert), ("key", conf.key)):
                if value is not None:
                    yield f"conf.{wire}", "must not be set for a builtin backend (it makes its own CA)"
        else:
            if conf.ca_cert is not None:
                yield "conf.caCert", "must not be set for a provided backend"
            for wire, value in (("cert", conf.cert), ("key", conf.key)):
                if value is None:
                    yield f"conf.{wire}", "required for a provided backend"


@final
class Mtls(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled_backend: str = ""
    backends: list[CertificateAuthorityBackend] = msgspec.field(default_factory=list)
    skip_validation: bool = False

    def problems(self) -> Problems:
        seen: set[str] = set()
        for i, backend in enumerate(self.backends):
            if backend.name in seen:
                yield f"backends[{i}].name", f"{backend.name!r} is already used by another backend"
            seen.add(backend.name)
        if self.enabled_backend and self.enabled_backend not in seen:
            known = ", ".join(repr(n) for n in seen) or "none are defined"
            yield "enabledBackend", f"must name one of the backends ({known})"

    @property
    def enabled(self) -> CertificateAuthorityBackend | None:
        """The backend in use, or None when mTLS is off."""
        for backend in self.backends:
            if backend.name == self.enabled_backend:
                return backend
        return None


@final
class Routing(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    locality_aware_load_balancing: bool = False
    zone_egress: bool = False
    default_forbid_mesh_external_service_access: bool = False


@final
class NetworkingOutbound(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``passthrough``: whether traffic to addresses outside the mesh leaves the proxy unchanged."""

    passthrough: bool | None = None


@final
class MeshNetworking(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    outbound: NetworkingOutbound | None = None


@final
class TagRules(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tags: Selector

    def problems(self) -> Problems:
        if not self.tags:
            yield "tags", "must have at least one tag"


@final
class DataplaneProxyConstraints(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A dataplane may join only when it matches some requirement and no restriction."""

    requirements: list[TagRules] = msgspec.field(default_factory=list)
    restrictions: list[TagRules] = msgspec.field(default_factory=list)


@final
class Constraints(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataplane_proxy: DataplaneProxyConstraints | None = None


@final
class MeshSpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mtls: Mtls | None = None
    networking: MeshNetworking | None = None
    routing: Routing | None = None
    constraints: Constraints | None = None
    skip_creating_initial_policies: list[str] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        if self.routing is not None and self.routing.zone_egress and not self.mtls_backend:
            yield "routing.zoneEgress", "needs mTLS: set mtls.enabledBackend"

    @property
    def mtls_backend(self) -> CertificateAuthorityBackend | None:
        """The enabled mTLS backend, or None when the mesh runs without mTLS."""
        return self.mtls.enabled if self.mtls is not None else None

    @property
    def locality_aware(self) -> bool:
        return self.routing is not None and self.routing.locality_aware_load_balancing

    @property
    def zone_egress(self) -> bool:
        return self.routing is not None and self.routing.zone_egress


register(
    ResourceDescriptor(
        name="Mesh",
        spec_type=MeshSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.GLOBAL_TO_ZONES,
        path="meshes",
        singular="mesh",
        plural="meshes",
        flat=True,
    )
)
