"""``ProxyCertificates``: the certificate side of one proxy connection on the zone control plane.

Rules (DESIGN.md, "Wire" and "Cross-zone routing"):
- Each CSR is signed at once with the mesh's enabled CA (:mod:`kmesh.dps._certs`) and answered with a
  ``CertificateIssued``, or with a ``CertificateRefused`` saying why. The names come from the resource the
  proxy registered with, never from the CSR.
- The last CSR of each mesh is kept while it may still be signed: after a refusal that may resolve itself
  (no CA yet, mTLS off: ``retry``), and after a success, so that :meth:`ProxyCertificates.recheck` can sign
  it again, unasked, when the mesh's signing CA or trust bundle changes (a new CA arrived, the enabled
  backend switched). A refusal that cannot resolve itself (a bad CSR) forgets it.
- A dataplane's ``DataplaneInsight.mTLS`` follows every certificate issued: expiry, backend, the backends
  it trusts, and the count of certificates issued (kept across connections).
"""

from __future__ import annotations

import logging
from typing import final

from kmesh.dps._certs import CertProblem, Identity, identity_for, issue
from kmesh.dps._shared import Shared
from kmesh.dps.events import CertificateRequested
from kmesh.dps.messages import CertificateIssued
from kmesh.dps.session import DpSession
from kmesh.model import Resource
from kmesh.model.types.dataplane import DataplaneMtlsInsight

__all__ = ["ProxyCertificates"]

log = logging.getLogger("kmesh.dps")


@final
class ProxyCertificates:
    """See the module docstring. ``mtls`` is the insight record to write (None for zone proxies, which
    have no such record, and for a dataplane that never had a certificate)."""

    def __init__(
        self, shared: Shared, session: DpSession, resource: Resource, mtls: DataplaneMtlsInsight | None
    ) -> None:
        self._shared = shared
        self._session = session
        self._resource = resource
        self.mtls = mtls
        # Per mesh: the last CSR as (request_id, csr, identity, the mesh field it was asked with), and the
        # trust fingerprint its last certificate was issued under.
        self._csrs: dict[str, tuple[str, bytes, Identity, str]] = {}
        self._issued_under: dict[str, str] = {}

    @property
    def meshes(self) -> set[str]:
        """Meshes this proxy holds, or waits for, a certificate of."""
        return set(self._csrs)

    def on_request(self, event: CertificateRequested) -> bool:
        """Answer a CSR; return whether a certificate was issued (the insight's mTLS record changed)."""
        identity = identity_for(self._resource, self._shared.settings.zone, event.mesh)
        if isinstance(identity, CertProblem):
            self._session.refuse_certificate(
                identity.code, identity.reason, request_id=event.request_id, mesh=event.mesh
            )
            return False
        self._csrs[identity.mesh] = (event.request_id, event.csr_pem, identity, event.mesh)
        return self._sign(identity.mesh, answer=True)

    def recheck(self) -> bool:
        """Sign again, unasked, every kept CSR whose mesh's CA or bundle changed (or became available);
        return whether any certificate was issued."""
        issued = False
        for mesh in list(self._csrs):
            trust = self._shared.mesh_trust(mesh)
            if not isinstance(trust, CertProblem) and self._issued_under.get(mesh) != trust.fingerprint:
                issued |= self._sign(mesh, answer=False)
        return issued

    def _sign(self, mesh: str, *, answer: bool) -> bool:
        request_id, csr_pem, identity, requested = self._csrs[mesh]
        trust = self._shared.mesh_trust(mesh)
        now = self._shared.records.now()
        result = trust if isinstance(trust, CertProblem) else issue(trust, identity, csr_pem, now=now)
        if isinstance(result, CertProblem):
            if answer:
                self._session.refuse_certificate(
                    result.code, result.reason, request_id=request_id, mesh=requested, retry=result.retry
                )
                log.warning(
                    "cannot sign a proxy's certificate",
                    extra={"proxy": str(self._resource.key), "code": result.code, "reason": result.reason},
                )
            if not result.retry:
                del self._csrs[mesh]
            return False
        assert not isinstance(trust, CertProblem)
        self._session.issue_certificate(
            CertificateIssued(
                cert_pem=result.cert_pem,
                ca_bundle_pem=result.bundle_pem,
                not_after=result.not_after.timestamp(),
                renew_at=result.renew_at.timestamp(),
                request_id=request_id,
                mesh=requested,
                backend=result.backend,
            )
        )
        self._issued_under[mesh] = trust.fingerprint
        if self._resource.meta.type == "Dataplane":
            previous = self.mtls.certificate_regenerations if self.mtls is not None else 0
            self.mtls = DataplaneMtlsInsight(
                certificate_expiration_time=result.not_after,
                last_certificate_regeneration=now,
                certificate_regenerations=previous + 1,
                issued_backend=result.backend,
                supported_backends=list(trust.backends),
            )
        return True
