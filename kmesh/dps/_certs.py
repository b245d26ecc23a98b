"""Certificates for proxies: the mesh's signing CA and trust bundle, and the workload certificate of a CSR.

Pure (``now`` and provided-CA files are passed in): the server computes a :class:`MeshTrust` per mesh once
per store change, and signs each proxy's CSR with it.

Rules (DESIGN.md, "Cross-zone routing"; :mod:`kmesh.pki`):
- The enabled mTLS backend signs (``signing_backend``); its CA comes from the mesh's Secrets (builtin: the
  global makes it, KDS brings it; in standalone mode the control plane makes it) or the backend's data
  sources (provided). This server never makes a CA: a missing one is ``ca_unavailable``, a broken one
  ``ca_invalid``, both retried by the server when the store changes. A mesh without mTLS answers
  ``mtls_disabled`` (also retried: enabling mTLS later signs the waiting CSR).
- The trust bundle is ``trusted_cas``: the enabled backend's CA first, then every other backend of the
  mesh whose CA is known, so proxies keep trusting each other across a backend switch. ``fingerprint``
  changes whenever the signing CA or the bundle does: the server then re-signs every proxy's last CSR.
- Names: a sidecar's certificate carries ``spiffe://<mesh>/<service>`` for each service of its inbounds
  (or its gateway) and ``kuma://<tag>/<value>`` for each effective inbound tag (``kuma.io/zone`` added);
  a zone egress's carries ``spiffe://<mesh>/zone-egress`` of the mesh it asked for. A zone ingress gets
  none: it never terminates TLS (``no_certificate_needed``).
- Lifetime: ``dp_cert_lifetime_s`` of the enabled backend (``dpCert.rotation.expiration``, 24 h by
  default); renewal at 4/5 (``renew_at``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import final

from cryptography import x509

from kmesh.dps.messages import CloseCode
from kmesh.model import Resource
from kmesh.model.types import DataplaneSpec, MeshSpec, ZoneEgressSpec
from kmesh.pki import (
    CaBundle,
    PkiError,
    backend_ca,
    dp_cert_lifetime_s,
    renew_at,
    sign_workload_csr,
    signing_backend,
    trusted_cas,
)
from kmesh.proxyconfig import EGRESS_SERVICE, effective_tags

__all__ = ["CertProblem", "Identity", "Issued", "MeshTrust", "identity_for", "issue", "mesh_trust"]


@final
@dataclass(frozen=True, slots=True)
class CertProblem:
    """Why no certificate can be signed; ``retry``: the server keeps the CSR and tries again on changes."""

    code: str
    reason: str
    retry: bool


@final
@dataclass(frozen=True, slots=True)
class MeshTrust:
    """What signs a mesh's certificates now and what its proxies trust."""

    mesh: str
    backend: str
    ca: CaBundle = field(repr=False)
    bundle_pem: bytes
    lifetime_s: float
    backends: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the signing backend, its CA, or the trust bundle does."""
        digest = hashlib.sha256(self.backend.encode() + b"\0" + self.ca.cert_pem + b"\0" + self.bundle_pem)
        return digest.hexdigest()


@final
@dataclass(frozen=True, slots=True)
class Identity:
    """The names a proxy's certificate carries in one mesh."""

    mesh: str
    services: tuple[str, ...]
    tags: Mapping[str, frozenset[str]]


@final
@dataclass(frozen=True, slots=True)
class Issued:
    """A signed certificate and what the proxy is told with it."""

    cert_pem: bytes
    bundle_pem: bytes
    backend: str
    not_before: datetime
    not_after: datetime
    renew_at: datetime


def mesh_trust(
    mesh_name: str, mesh: Resource | None, secrets: Sequence[Resource], files: Mapping[str, bytes]
) -> MeshTrust | CertProblem:
    """The signing CA and trust bundle of ``mesh`` (``secrets``: the mesh's Secrets; ``files``: contents
    of a provided backend's file data sources, by path)."""
    if mesh is None or not isinstance(mesh.spec, MeshSpec):
        return CertProblem(CloseCode.MESH_NOT_FOUND, f"mesh {mesh_name!r} does not exist in this zone", True)
    spec = mesh.spec
    enabled = signing_backend(spec)
    if enabled is None or spec.mtls is None:
        return CertProblem(
            CloseCode.MTLS_DISABLED,
            f"mesh {mesh_name!r} runs without mTLS, so its proxies need no certificate; one is sent as soon "
            "as an mTLS backend is enabled",
            True,
        )
    bundles: dict[str, CaBundle] = {}
    for backend in spec.mtls.backends:
        try:
            bundle = backend_ca(backend, secrets, mesh=mesh_name, files=files)
        except PkiError as exc:
            if backend.name == enabled:
                return CertProblem(exc.code, exc.reason, True)
            continue  # another backend's CA only widens the trust bundle; without it, it is left out
        if bundle is not None:
            bundles[backend.name] = bundle
    if enabled not in bundles:
        return CertProblem(
            "ca_unavailable",
            f"the CA of mTLS backend {enabled!r} of mesh {mesh_name!r} is not in this zone yet: it is made "
            "on the global control plane with the mesh and reaches zones over KDS (standalone: the control "
            "plane makes it)",
            True,
        )
    try:
        lifetime = dp_cert_lifetime_s(spec)
        bundle_pem = trusted_cas(spec, bundles)
    except PkiError as exc:
        return CertProblem(exc.code, exc.reason, True)
    except ValueError as exc:
        return CertProblem("ca_invalid", f"mesh {mesh_name!r}: {exc}", True)
    return MeshTrust(
        mesh=mesh_name,
        backend=enabled,
        ca=bundles[enabled],
        bundle_pem=bundle_pem,
        lifetime_s=lifetime,
        backends=tuple(bundles),
    )


def identity_for(resource: Resource, zone: str, requested_mesh: str) -> Identity | CertProblem:
    """The certificate names of the registered ``resource`` (see the module rules)."""
    spec = resource.spec
    if isinstance(spec, DataplaneSpec):
        mesh = resource.meta.mesh
        if requested_mesh not in ("", mesh):
            return CertProblem(
                CloseCode.BAD_MESSAGE,
                f"dataplane {resource.meta.name!r} is in mesh {mesh!r}; it gets no certificate of mesh "
                f"{requested_mesh!r}",
                False,
            )
        tag_sets = [effective_tags(inbound, zone) for inbound in spec.networking.inbound]
        if spec.networking.gateway is not None:
            tag_sets.append({**spec.networking.gateway.tags, "kuma.io/zone": zone})
        values: dict[str, set[str]] = {}
        for tags in tag_sets:
            for tag, value in tags.items():
                values.setdefault(tag, set()).add(value)
        services = tuple(sorted(values.get("kuma.io/service", set())))
        return Identity(mesh, services, {tag: frozenset(v) for tag, v in sorted(values.items())})
    if isinstance(spec, ZoneEgressSpec):
        if not requested_mesh:
            return CertProblem(
                CloseCode.BAD_MESSAGE,
                "a zone egress serves every mesh: name the mesh its certificate is for",
                False,
            )
        return Identity(requested_mesh, (EGRESS_SERVICE,), {})
    return CertProblem(
        CloseCode.NO_CERTIFICATE_NEEDED,
        f"{resource.meta.type} {resource.meta.name!r} never terminates TLS (it forwards by SNI), so it "
        "gets no certificate",
        False,
    )


def issue(trust: MeshTrust, identity: Identity, csr_pem: bytes, *, now: datetime) -> Issued | CertProblem:
    """Sign ``csr_pem`` for ``identity`` with ``trust``'s CA."""
    try:
        cert_pem = sign_workload_csr(
            csr_pem,
            trust.ca,
            mesh=identity.mesh,
            services=identity.services,
            tags=identity.tags,
            now=now,
            valid_for_s=trust.lifetime_s,
        )
    except PkiError as exc:
        return CertProblem(exc.code, exc.reason, exc.code != "csr_invalid")
    except ValueError as exc:
        return CertProblem("identity_invalid", f"cannot name this proxy in a certificate: {exc}", False)
    cert = x509.load_pem_x509_certificate(cert_pem)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    return Issued(
        cert_pem=cert_pem,
        bundle_pem=trust.bundle_pem,
        backend=trust.backend,
        not_before=not_before,
        not_after=not_after,
        renew_at=renew_at(not_before, not_after),
    )
