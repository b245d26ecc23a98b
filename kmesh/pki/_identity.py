"""Workload identities: the URI SANs a workload certificate carries, built and read back.

A proxy's certificate names it with URI SANs only (DESIGN.md, "Cross-zone routing"; Kuma's
``pkg/core/ca/issuer``)::

    spiffe://<mesh>/<service>     one per service of the proxy's inbounds (``kuma.io/service``)
    kuma://<tag>/<value>          one per value of each inbound tag

Rules:
- The lists are sorted and free of duplicates: ``spiffe://`` first by service, then ``kuma://`` by tag, then
  value. The same inputs always give the same certificate contents.
- Names follow the model's rules, so every URI parses back unambiguously: a mesh is a resource name
  (``[A-Za-z0-9]``, then ``[A-Za-z0-9._-]``, at most 253 characters); services and tag values are tag values
  (``[A-Za-z0-9.-_:]+``, no ``/``); tag names may hold ``/`` (``kuma.io/zone``), so ``kuma://`` URIs split at
  their last ``/``.
- Python's ``ssl`` checks DNS names only: a peer is verified against the mesh CA with ``check_hostname``
  off, and then by its SPIFFE ids, read here from ``getpeercert()`` or from the DER of
  ``getpeercert(binary_form=True)`` with :func:`identity_of`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, final

from cryptography import x509

from kmesh.pki._errors import InvalidIdentity

__all__ = [
    "WorkloadIdentity",
    "check_mesh_name",
    "identity_of",
    "parse_spiffe_id",
    "spiffe_id",
    "spiffe_ids_from_peercert",
    "workload_uris",
]

SPIFFE_SCHEME: Final = "spiffe://"
KUMA_SCHEME: Final = "kuma://"
_MESH: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?"
_VALUE: Final = r"[A-Za-z0-9.\-_:]+"
_MESH_RE: Final = re.compile(_MESH)
_VALUE_RE: Final = re.compile(_VALUE)
_TAG_RE: Final = re.compile(r"[A-Za-z0-9.\-_:/]+")
_SPIFFE_RE: Final = re.compile(rf"spiffe://({_MESH})/({_VALUE})")


def check_mesh_name(mesh: str) -> str:
    """``mesh`` itself; raises ValueError when it cannot be a SPIFFE trust domain here."""
    if not _MESH_RE.fullmatch(mesh):
        raise ValueError(f"{mesh!r} is not a mesh name (letters, digits, '.', '-', '_'; at most 253)")
    return mesh


def _check_value(what: str, value: str) -> str:
    if not _VALUE_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be letters, digits, '.', '-', '_' or ':' (and not empty)")
    return value


def spiffe_id(mesh: str, service: str) -> str:
    """``spiffe://<mesh>/<service>``. Raises ValueError for a name that would not parse back."""
    return f"{SPIFFE_SCHEME}{check_mesh_name(mesh)}/{_check_value('service', service)}"


def parse_spiffe_id(uri: str) -> tuple[str, str]:
    """``(mesh, service)`` of a workload SPIFFE id. Raises InvalidIdentity for anything else."""
    match = _SPIFFE_RE.fullmatch(uri)
    if match is None:
        raise InvalidIdentity(f"{uri!r} is not a workload SPIFFE id (spiffe://<mesh>/<service>)")
    return match[1], match[2]


def workload_uris(mesh: str, services: Sequence[str], tags: Mapping[str, Collection[str]]) -> list[str]:
    """The URI SANs of a workload certificate, in certificate order (see the module rules).

    Raises ValueError when there is no service, a name breaks the rules, or ``services`` or a tag's values
    is a single string (which would otherwise be read as its characters).
    """
    if isinstance(services, str):
        raise ValueError(f"services must be a list of names, not the string {services!r}")
    if not services:
        raise ValueError("a workload certificate needs at least one service")
    uris = [spiffe_id(mesh, service) for service in sorted(set(services))]
    for tag in sorted(tags):
        if not _TAG_RE.fullmatch(tag):
            raise ValueError(f"tag name {tag!r} must be letters, digits, '.', '-', '_', ':' or '/'")
        values = tags[tag]
        if isinstance(values, str):
            raise ValueError(f"the values of tag {tag!r} must be a collection, not the string {values!r}")
        uris.extend(
            f"{KUMA_SCHEME}{tag}/{_check_value(f'tag {tag!r} value', v)}" for v in sorted(set(values))
        )
    return uris


@final
@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """What a workload certificate says about its holder: its mesh, services, tags and validity (UTC)."""

    mesh: str
    services: tuple[str, ...]
    tags: Mapping[str, frozenset[str]]
    not_before: datetime
    not_after: datetime

    @property
    def spiffe_ids(self) -> tuple[str, ...]:
        return tuple(f"{SPIFFE_SCHEME}{self.mesh}/{service}" for service in self.services)


def _parse_uris(uris: Iterable[str]) -> tuple[str, tuple[str, ...], dict[str, frozenset[str]]]:
    meshes: set[str] = set()
    services: set[str] = set()
    tags: dict[str, set[str]] = {}
    for uri in uris:
        if uri.startswith(SPIFFE_SCHEME):
            mesh, service = parse_spiffe_id(uri)
            meshes.add(mesh)
            services.add(service)
        elif uri.startswith(KUMA_SCHEME):
            tag, sep, value = uri[len(KUMA_SCHEME) :].rpartition("/")
            if not sep or not _TAG_RE.fullmatch(tag) or not _VALUE_RE.fullmatch(value):
                raise InvalidIdentity(f"{uri!r} is not a tag URI (kuma://<tag>/<value>)")
            tags.setdefault(tag, set()).add(value)
        # Other URIs (a provided CA's operator may add some) say nothing about the mesh identity.
    if not meshes:
        raise InvalidIdentity("the certificate carries no spiffe://<mesh>/<service> URI SAN")
    if len(meshes) > 1:
        raise InvalidIdentity(f"the certificate names several meshes: {', '.join(sorted(meshes))}")
    return meshes.pop(), tuple(sorted(services)), {tag: frozenset(v) for tag, v in sorted(tags.items())}


def _load_certificate(cert: bytes | x509.Certificate) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    try:
        if cert.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise InvalidIdentity(f"not an X.509 certificate in PEM or DER: {exc}") from None


def identity_of(cert: bytes | x509.Certificate) -> WorkloadIdentity:
    """The identity in a workload certificate: PEM (the first certificate), DER (as
    ``SSLObject.getpeercert(binary_form=True)`` gives it) or a parsed certificate.

    It does not verify the certificate: do that first (the TLS handshake against the mesh CA does).
    Raises InvalidIdentity when the bytes are no certificate, or its URI SANs do not name exactly one mesh
    and at least one service, or a ``spiffe://``/``kuma://`` URI is malformed.
    """
    parsed = _load_certificate(cert)
    try:
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidIdentity("the certificate has no Subject Alternative Name extension") from None
    mesh, services, tags = _parse_uris(san.get_values_for_type(x509.UniformResourceIdentifier))
    return WorkloadIdentity(
        mesh=mesh,
        services=services,
        tags=tags,
        not_before=parsed.not_valid_before_utc,
        not_after=parsed.not_valid_after_utc,
    )


def spiffe_ids_from_peercert(peercert: Mapping[str, object] | None) -> list[str]:
    """The ``spiffe://`` URI SANs in a dict from ``SSLObject.getpeercert()``, in certificate order.

    That dict holds ``subjectAltName`` as ``(("URI", "spiffe://..."), ("DNS", "..."), ...)``. It is empty
    (or None) when the peer sent no certificate or it was not verified: then there is no id at all.
    Entries of any other shape are skipped, never trusted.
    """
    if not peercert:
        return []
    alt_names = peercert.get("subjectAltName", ())
    if not isinstance(alt_names, tuple | list):
        return []
    ids: list[str] = []
    for entry in alt_names:
        if isinstance(entry, tuple | list) and len(entry) == 2:
            kind, value = entry
            if kind == "URI" and isinstance(value, str) and value.startswith(SPIFFE_SCHEME):
                ids.append(value)
    return ids
