"""The proxy's side of certificates: its private keys, its CSRs, the certificates it holds, renewal times.

Rules (DESIGN.md, "Wire" and "Cross-zone routing"):
- Each request makes a fresh ECDSA P-256 key (``kmesh.pki.generate_workload_key``) and a CSR for it; the
  key stays here, named by the request id the CSR travels with. A certificate is matched to its key by
  that id; one for an id not held here (a key already dropped) is ignored.
- A certificate is held per mesh (a sidecar has one, of its mesh; a zone egress one per mesh it serves).
  When a new one arrives, keys of older requests of that mesh are dropped; a key of a request still
  pending stays, so a renewal in flight is never orphaned.
- Renewal: a certificate is renewed at its ``renew_at`` (4/5 of its life, set by the control plane). A
  request that got no answer, or a final refusal, is followed by another after ``retry_s``: a lost answer
  (the connection dropped) delays a renewal but never stops it, and a refusal never becomes a tight loop.
- Sans-IO: times are passed in (Unix seconds), nothing here does I/O.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Final, final

from kmesh.dps.messages import CertificateIssued
from kmesh.pki import generate_workload_key, key_to_pem, make_csr

__all__ = ["Certificate", "KeyBook"]

_SERVICE: Final = re.compile(r"[A-Za-z0-9.\-_:]+")


@final
@dataclass(frozen=True, slots=True)
class Certificate:
    """A workload certificate the proxy holds, with its key and the CAs it trusts (all PEM). Times are
    Unix seconds. ``repr`` leaves the key out."""

    mesh: str
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_bundle_pem: bytes
    not_after: float
    renew_at: float
    backend: str
    request_id: str


@dataclass(slots=True)
class _Request:
    mesh: str
    key_pem: bytes = field(repr=False)
    sent_at: float
    answered: bool = False
    failed: bool = False


@final
class KeyBook:
    """See the module docstring. ``service`` names the CSRs' informational SAN (the signer sets the real
    names); it falls back to ``proxy`` when it is not a valid service name."""

    def __init__(self, *, service: str, retry_s: float = 30.0) -> None:
        if retry_s <= 0:
            raise ValueError(f"retry_s must be positive, got {retry_s}")
        self._service = service if _SERVICE.fullmatch(service) else "proxy"
        self._retry_s = retry_s
        self._requests: dict[str, _Request] = {}
        self._certs: dict[str, Certificate] = {}

    @property
    def certificates(self) -> dict[str, Certificate]:
        """The certificate held for each mesh."""
        return dict(self._certs)

    def certificate(self, mesh: str) -> Certificate | None:
        return self._certs.get(mesh)

    def new_request(self, mesh: str, *, now: float) -> tuple[str, bytes]:
        """A fresh key for ``mesh``: returns ``(request_id, csr_pem)``; the key stays here."""
        key = generate_workload_key()
        csr = make_csr(key, mesh=mesh, service=self._service)
        request_id = uuid.uuid4().hex
        self._requests[request_id] = _Request(mesh=mesh, key_pem=key_to_pem(key), sent_at=now)
        return request_id, csr

    def receive(self, issued: CertificateIssued, *, mesh: str) -> Certificate | None:
        """The certificate ``issued`` for ``mesh`` with its key, now held; None when its key is unknown."""
        request = self._requests.get(issued.request_id)
        if request is None or request.mesh != mesh or request.failed:
            return None
        request.answered = True
        cert = Certificate(
            mesh=mesh,
            cert_pem=issued.cert_pem,
            key_pem=request.key_pem,
            ca_bundle_pem=issued.ca_bundle_pem,
            not_after=issued.not_after,
            renew_at=issued.renew_at,
            backend=issued.backend,
            request_id=issued.request_id,
        )
        self._certs[mesh] = cert
        # Older requests of this mesh are done with; a newer one still pending keeps its key.
        for rid, other in list(self._requests.items()):
            if (
                other.mesh == mesh
                and rid != issued.request_id
                and (other.answered or other.sent_at <= request.sent_at)
            ):
                del self._requests[rid]
        return cert

    def refused(self, request_id: str, *, retry: bool) -> None:
        """The request was refused. Without ``retry`` the server will not sign it: its key is dropped, and
        the next request for its mesh waits ``retry_s`` as for an unanswered one (never a tight loop)."""
        request = self._requests.get(request_id)
        if request is not None and not retry:
            request.key_pem = b""
            request.failed = True

    def pending(self, mesh: str) -> bool:
        """Whether a request for ``mesh`` awaits its answer."""
        return any(r.mesh == mesh and not r.answered and not r.failed for r in self._requests.values())

    def due(self, meshes: set[str], now: float) -> list[str]:
        """The meshes of ``meshes`` to send a request for now: no certificate and no fresh pending request,
        or a certificate past its renewal time and no fresh pending request."""
        return [mesh for mesh in sorted(meshes) if self._next_for(mesh) <= now]

    def next_due(self, meshes: set[str]) -> float | None:
        """When the next request for one of ``meshes`` falls due (Unix seconds), None when never."""
        times = [self._next_for(mesh) for mesh in meshes]
        return min(times) if times else None

    def _next_for(self, mesh: str) -> float:
        pending = [r.sent_at for r in self._requests.values() if r.mesh == mesh and not r.answered]
        retry = max(pending) + self._retry_s if pending else None
        cert = self._certs.get(mesh)
        if cert is None:
            return retry if retry is not None else 0.0
        if retry is not None:
            return max(cert.renew_at, retry)
        return cert.renew_at
