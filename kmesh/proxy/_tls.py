"""The proxy's mesh TLS: its workload certificates, the SSL contexts built from them, and peer identities.

Rules (DESIGN.md, "Cross-zone routing"):
- Python's ``ssl`` checks DNS names only, so every mesh context verifies the peer's chain against the
  mesh's trust bundle (``CERT_REQUIRED``) with ``check_hostname`` off, and the caller checks the SPIFFE
  URI SAN itself with :func:`peer_identity` (the verified ``getpeercert()`` names, read by
  ``kmesh.pki.spiffe_ids_from_peercert``). A peer whose certificate names no SPIFFE id has none.
- Rotation without drops: a new certificate builds new contexts. Client connections made after it use
  the new one; established connections keep theirs. Listeners keep one *front* server context for their
  life (an asyncio server cannot change its context); its ``sni_callback`` switches every new handshake to
  the newest context before the certificate is chosen, so a renewed certificate (or a changed trust
  bundle) applies to the next connection without rebinding the port.
- Keys stay in memory: contexts are built by ``kmesh.wire.tls`` (which loads the chain through a 0600 file
  on a tmpfs, removed at once); ``summary()`` for ``/config_dump`` never includes a key.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, final

from kmesh.dps import Certificate
from kmesh.errors import KmeshError
from kmesh.pki import InvalidIdentity, identity_of, spiffe_ids_from_peercert
from kmesh.wire.tls import client_context, server_context

__all__ = ["MeshTls", "NoCertificate", "peer_identity"]


class NoCertificate(KmeshError):
    """The proxy holds no certificate of the mesh yet (retry once the control plane has signed one)."""


@final
@dataclass(frozen=True, slots=True)
class _Contexts:
    certificate: Certificate
    client: ssl.SSLContext
    server: ssl.SSLContext


def peer_identity(ssl_object: Any) -> list[str]:
    """The SPIFFE ids of the verified peer behind ``ssl_object`` (an ``SSLObject`` or ``SSLSocket``), or
    an empty list when it presented no certificate or one without SPIFFE ids.

    Read from ``getpeercert()``, the names OpenSSL already parsed during the handshake: no DER parse per
    connection. That dict is empty unless the chain was verified, and every mesh context verifies it.
    """
    if ssl_object is None:
        return []
    return spiffe_ids_from_peercert(ssl_object.getpeercert())


@final
class MeshTls:
    """Certificates by mesh and their contexts; see the module docstring."""

    def __init__(self) -> None:
        self._contexts: dict[str, _Contexts] = {}
        self._fronts: dict[str, ssl.SSLContext] = {}

    def update(self, cert: Certificate) -> None:
        """Take ``cert`` as the mesh's current certificate. Raises ValueError for unusable PEM."""
        client = client_context(
            ca_pem=cert.ca_bundle_pem,
            server_hostname_check=False,
            client_cert_pem=cert.cert_pem,
            client_key_pem=cert.key_pem,
        )
        server = server_context(
            cert.cert_pem, cert.key_pem, client_ca_pem=cert.ca_bundle_pem, require_client_cert=True
        )
        self._contexts[cert.mesh] = _Contexts(cert, client, server)

    def has(self, mesh: str) -> bool:
        return mesh in self._contexts

    @property
    def meshes(self) -> list[str]:
        return sorted(self._contexts)

    def certificate(self, mesh: str) -> Certificate | None:
        held = self._contexts.get(mesh)
        return held.certificate if held is not None else None

    def client_context(self, mesh: str) -> ssl.SSLContext:
        """The context for new mTLS connections to peers of ``mesh``. Raises NoCertificate."""
        return self._held(mesh).client

    def server_context(self, mesh: str) -> ssl.SSLContext:
        """The front context a listener of ``mesh`` keeps for its life; each handshake on it uses the newest
        certificate. Raises NoCertificate before the first certificate."""
        front = self._fronts.get(mesh)
        if front is None:
            held = self._held(mesh)
            cert = held.certificate
            front = server_context(
                cert.cert_pem, cert.key_pem, client_ca_pem=cert.ca_bundle_pem, require_client_cert=True
            )

            def switch(ssl_object: Any, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
                current = self._contexts.get(mesh)
                if current is not None:
                    ssl_object.context = current.server

            front.sni_callback = switch
            self._fronts[mesh] = front
        return front

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per mesh: validity, renewal time, backend and identities; never the key."""
        out: dict[str, dict[str, Any]] = {}
        for mesh, held in sorted(self._contexts.items()):
            cert = held.certificate
            try:
                ids = list(identity_of(cert.cert_pem).spiffe_ids)
            except InvalidIdentity:
                ids = []
            out[mesh] = {
                "not_after": cert.not_after,
                "renew_at": cert.renew_at,
                "backend": cert.backend,
                "spiffe_ids": ids,
            }
        return out

    def _held(self, mesh: str) -> _Contexts:
        held = self._contexts.get(mesh)
        if held is None:
            raise NoCertificate(f"no certificate of mesh {mesh!r} yet")
        return held
