"""Rotation: when a proxy renews its certificate, how long one lives, and which CAs a proxy trusts.

Rules (DESIGN.md, "Cross-zone routing"; Kuma's ``dpCert.rotation`` and backend switching):
- A workload certificate lives ``dpCert.rotation.expiration`` of the enabled backend, 24 hours by default,
  and the proxy renews it at 4/5 of its lifetime, so a zone CP that is down for up to a fifth of it (and
  then some) costs nothing.
- The enabled backend (``mtls.enabledBackend``) signs new certificates. A proxy trusts the CA of *every*
  backend of the mesh: when an operator adds a backend and then switches ``enabledBackend`` to it, proxies
  holding certificates of the old one and proxies already renewed under the new one still accept each
  other. Removing a backend from the mesh ends the trust in its CA.
- The trust bundle is PEM: the enabled backend's certificates first, then the others in the mesh's order,
  each certificate once. A backend whose CA is not known yet is left out, except the enabled one, which
  must be there: without it no new certificate can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kmesh.model import parse_duration
from kmesh.model.types.mesh import MeshSpec
from kmesh.pki._ca import CaBundle, find_backend
from kmesh.pki._errors import CaUnavailable, InvalidCa

__all__ = [
    "DEFAULT_DP_CERT_LIFETIME_S",
    "RENEW_FRACTION",
    "dp_cert_lifetime_s",
    "renew_at",
    "signing_backend",
    "trusted_cas",
]

DEFAULT_DP_CERT_LIFETIME_S: Final = 24 * 3600.0
RENEW_FRACTION: Final = (4, 5)


def renew_at(not_before: datetime, not_after: datetime) -> datetime:
    """When a certificate valid from ``not_before`` to ``not_after`` is renewed: at 4/5 of its lifetime.

    Raises ValueError when ``not_after`` is not after ``not_before``.
    """
    if not_after <= not_before:
        raise ValueError(
            f"not_after {not_after.isoformat()} is not after not_before {not_before.isoformat()}"
        )
    numerator, denominator = RENEW_FRACTION
    # Integer timedelta arithmetic, rounded down to the microsecond: never at or past the end.
    return not_before + (not_after - not_before) * numerator // denominator


def signing_backend(mesh_spec: MeshSpec) -> str | None:
    """The name of the backend whose CA signs new certificates, None when the mesh runs without mTLS."""
    backend = mesh_spec.mtls_backend
    return backend.name if backend is not None else None


def dp_cert_lifetime_s(mesh_spec: MeshSpec, backend_name: str | None = None) -> float:
    """How long a workload certificate of ``backend_name`` (the enabled backend by default) lives.

    Raises ValueError when the mesh has no mTLS (and no backend was named), names no such backend, or
    ``dpCert.rotation.expiration`` is not a duration.
    """
    if backend_name is None:
        backend_name = signing_backend(mesh_spec)
        if backend_name is None:
            raise ValueError("the mesh runs without mTLS: its proxies get no certificates")
    backend = find_backend(mesh_spec, backend_name)
    rotation = backend.dp_cert.rotation if backend.dp_cert is not None else None
    if rotation is None or rotation.expiration is None:
        return DEFAULT_DP_CERT_LIFETIME_S
    try:
        return parse_duration(rotation.expiration)
    except ValueError as exc:
        raise ValueError(f"mTLS backend {backend_name!r}: dpCert.rotation.expiration: {exc}") from None


def _certificates(backend: str, bundle: CaBundle) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(bundle.cert_pem)
    except ValueError as exc:
        raise InvalidCa(f"mTLS backend {backend!r}: the CA certificate is not PEM X.509 ({exc})") from None


def trusted_cas(mesh_spec: MeshSpec, bundles_by_backend: Mapping[str, CaBundle]) -> bytes:
    """The PEM bundle a proxy of the mesh trusts (see the module rules).

    Bundles of backends the mesh no longer has are ignored. Raises ValueError when the mesh runs without
    mTLS, CaUnavailable when the enabled backend has no bundle, InvalidCa for a bundle that holds no PEM
    certificate.
    """
    enabled = signing_backend(mesh_spec)
    if enabled is None or mesh_spec.mtls is None:
        raise ValueError("the mesh runs without mTLS: there is no CA to trust")
    if enabled not in bundles_by_backend:
        raise CaUnavailable(f"the CA of the enabled mTLS backend {enabled!r} is not known yet")
    order = [enabled] + [b.name for b in mesh_spec.mtls.backends if b.name != enabled]
    seen: set[bytes] = set()
    out: list[bytes] = []
    for name in order:
        bundle = bundles_by_backend.get(name)
        if bundle is None:
            continue
        for cert in _certificates(name, bundle):
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:
                seen.add(der)
                out.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(out)
