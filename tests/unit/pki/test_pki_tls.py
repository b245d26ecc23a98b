"""Real TLS 1.3 handshakes between two in-memory endpoints, as two kmesh proxies make them: both present a
workload certificate, both verify against the mesh CA with ``CERT_REQUIRED`` and no hostname check (and
OpenSSL's strict X.509 mode), then read the peer's SPIFFE id from ``getpeercert()``.

OpenSSL checks validity against the real clock, so these CAs and certificates are made relative to it
(kmesh.pki itself never reads a clock: the test passes the time in).
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kmesh.pki import CaBundle, generate_ca, identity_of, spiffe_ids_from_peercert

from .helpers import handshake, issue, tls_context

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code carries them.
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
CERT_HAS_EXPIRED = 10


@pytest.fixture(scope="module")
def wall_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def live_ca(wall_now: datetime) -> CaBundle:
    return generate_ca("default", "ca-1", now=wall_now - timedelta(days=3))


@pytest.fixture(scope="module")
def other_live_ca(wall_now: datetime) -> CaBundle:
    return generate_ca("other", "ca-1", now=wall_now - timedelta(days=3))


def contexts(
    tmp_path: Path,
    client: tuple[bytes, bytes],
    server: tuple[bytes, bytes],
    *,
    client_trusts: bytes,
    server_trusts: bytes,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    client_ctx = tls_context(
        tmp_path, server=False, cert_pem=client[0], key_pem=client[1], trusted=client_trusts
    )
    server_ctx = tls_context(
        tmp_path, server=True, cert_pem=server[0], key_pem=server[1], trusted=server_trusts
    )
    return client_ctx, server_ctx


def test_two_workloads_of_one_mesh_complete_mutual_tls(
    tmp_path: Path, live_ca: CaBundle, wall_now: datetime
) -> None:
    web = issue(
        live_ca, service="web", tags={"kuma.io/service": ["web"], "kuma.io/zone": ["east"]}, now=wall_now
    )
    backend = issue(live_ca, service="backend", tags={"version": ["v2"]}, now=wall_now)
    trusted = live_ca.cert_pem
    client, server = handshake(
        *contexts(tmp_path, web, backend, client_trusts=trusted, server_trusts=trusted)
    )
    assert client.version() == "TLSv1.3"
    assert spiffe_ids_from_peercert(client.getpeercert()) == ["spiffe://default/backend"]
    assert spiffe_ids_from_peercert(server.getpeercert()) == ["spiffe://default/web"]
    peer_der = server.getpeercert(binary_form=True)
    assert peer_der is not None
    identity = identity_of(peer_der)
    assert (identity.mesh, identity.services) == ("default", ("web",))
    assert identity.tags == {"kuma.io/service": frozenset({"web"}), "kuma.io/zone": frozenset({"east"})}


def test_a_client_of_another_mesh_is_refused_by_the_server(
    tmp_path: Path, live_ca: CaBundle, other_live_ca: CaBundle, wall_now: datetime
) -> None:
    intruder = issue(other_live_ca, mesh="other", service="web", now=wall_now)
    server = issue(live_ca, service="backend", now=wall_now)
    # The intruder even trusts our CA: it is the server that must refuse it.
    client_ctx, server_ctx = contexts(
        tmp_path, intruder, server, client_trusts=live_ca.cert_pem, server_trusts=live_ca.cert_pem
    )
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(client_ctx, server_ctx)
    assert info.value.verify_code == UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_a_server_of_another_mesh_is_refused_by_the_client(
    tmp_path: Path, live_ca: CaBundle, other_live_ca: CaBundle, wall_now: datetime
) -> None:
    client = issue(live_ca, service="web", now=wall_now)
    impostor = issue(other_live_ca, mesh="other", service="backend", now=wall_now)
    client_ctx, server_ctx = contexts(
        tmp_path, client, impostor, client_trusts=live_ca.cert_pem, server_trusts=live_ca.cert_pem
    )
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(client_ctx, server_ctx)
    assert info.value.verify_code == UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_an_expired_workload_certificate_is_refused(
    tmp_path: Path, live_ca: CaBundle, wall_now: datetime
) -> None:
    stale = issue(live_ca, service="web", now=wall_now - timedelta(days=2), valid_for_s=3600)
    server = issue(live_ca, service="backend", now=wall_now)
    client_ctx, server_ctx = contexts(
        tmp_path, stale, server, client_trusts=live_ca.cert_pem, server_trusts=live_ca.cert_pem
    )
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(client_ctx, server_ctx)
    assert info.value.verify_code == CERT_HAS_EXPIRED


def test_an_rsa_ca_signs_workloads_that_pass_strict_checks(tmp_path: Path, wall_now: datetime) -> None:
    rsa_ca = generate_ca("default", "ca-rsa", now=wall_now - timedelta(days=1), rsa_bits=2048)
    web, backend = issue(rsa_ca, service="web", now=wall_now), issue(rsa_ca, service="backend", now=wall_now)
    trusted = rsa_ca.cert_pem
    client, _ = handshake(*contexts(tmp_path, web, backend, client_trusts=trusted, server_trusts=trusted))
    assert spiffe_ids_from_peercert(client.getpeercert()) == ["spiffe://default/backend"]
