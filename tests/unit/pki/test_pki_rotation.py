"""Rotation: renewal at 4/5 of a certificate's life, lifetimes from the Mesh, and the trust bundle that
keeps proxies of two backends talking while ``enabledBackend`` switches.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from hypothesis import given
from hypothesis import strategies as st

from kmesh.pki import (
    DEFAULT_DP_CERT_LIFETIME_S,
    CaBundle,
    CaUnavailable,
    InvalidCa,
    dp_cert_lifetime_s,
    generate_ca,
    identity_of,
    renew_at,
    signing_backend,
    trusted_cas,
)

from .helpers import DAY_S, NOW, handshake, issue, mesh_spec, tls_context

TWO_BACKENDS = {
    "enabledBackend": "ca-2",
    "backends": [
        {"name": "ca-1", "type": "builtin", "dpCert": {"rotation": {"expiration": "1h"}}},
        {"name": "ca-2", "type": "builtin", "dpCert": {"rotation": {"expiration": "2d"}}},
    ],
}


def test_renew_at_four_fifths_of_the_lifetime() -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC)
    assert renew_at(start, start + timedelta(hours=10)) == start + timedelta(hours=8)
    assert renew_at(start, start + timedelta(seconds=5)) == start + timedelta(seconds=4)


@given(
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    lifetime_us=st.integers(min_value=1, max_value=10 * 365 * 86_400 * 10**6),
)
def test_renew_at_lies_inside_the_validity(start: datetime, lifetime_us: int) -> None:
    end = start + timedelta(microseconds=lifetime_us)
    at = renew_at(start, end)
    assert start <= at < end
    # 4/5, rounded down to the microsecond.
    assert timedelta(0) <= (end - start) * 4 - (at - start) * 5 < timedelta(microseconds=5)


def test_renew_at_refuses_an_empty_validity() -> None:
    with pytest.raises(ValueError, match="is not after"):
        renew_at(NOW, NOW)


@pytest.mark.parametrize("valid_for_s", [60.0, 3600.0, DAY_S])
def test_a_fresh_certificate_is_renewed_later_not_at_once(mesh_ca: CaBundle, valid_for_s: float) -> None:
    identity = identity_of(issue(mesh_ca, valid_for_s=valid_for_s)[0])
    at = renew_at(identity.not_before, identity.not_after)
    # The back-dated start must not pull renewal to "now", which would renew in a loop.
    assert NOW + timedelta(seconds=valid_for_s * 0.7) < at < identity.not_after


def test_dp_cert_lifetime_follows_the_enabled_backend() -> None:
    spec = mesh_spec(**TWO_BACKENDS)
    assert dp_cert_lifetime_s(spec) == 2 * DAY_S
    assert dp_cert_lifetime_s(spec, "ca-1") == 3600.0


def test_dp_cert_lifetime_defaults_to_a_day() -> None:
    spec = mesh_spec(enabledBackend="ca-1", backends=[{"name": "ca-1", "type": "builtin"}])
    assert dp_cert_lifetime_s(spec) == DEFAULT_DP_CERT_LIFETIME_S == DAY_S


def test_dp_cert_lifetime_needs_mtls() -> None:
    with pytest.raises(ValueError, match="without mTLS"):
        dp_cert_lifetime_s(mesh_spec(backends=[{"name": "ca-1", "type": "builtin"}]))
    with pytest.raises(ValueError, match="no mTLS backend 'ca-9'"):
        dp_cert_lifetime_s(mesh_spec(**TWO_BACKENDS), "ca-9")


def test_signing_backend_is_the_enabled_one() -> None:
    assert signing_backend(mesh_spec(**TWO_BACKENDS)) == "ca-2"
    assert signing_backend(mesh_spec(backends=[{"name": "ca-1", "type": "builtin"}])) is None


@pytest.fixture(scope="module")
def rotation_cas() -> dict[str, CaBundle]:
    # Valid on the real clock: the handshake test below runs under OpenSSL's own time.
    made = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    return {name: generate_ca("default", name, now=made) for name in ("ca-1", "ca-2")}


def subjects(bundle: bytes) -> list[x509.Name]:
    return [cert.subject for cert in x509.load_pem_x509_certificates(bundle)]


def test_the_bundle_trusts_every_backend_enabled_first(rotation_cas: dict[str, CaBundle]) -> None:
    bundle = trusted_cas(mesh_spec(**TWO_BACKENDS), rotation_cas)
    expected = [x509.load_pem_x509_certificate(rotation_cas[n].cert_pem).subject for n in ("ca-2", "ca-1")]
    assert subjects(bundle) == expected


def issued_by(leaf: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_a_certificate_of_either_ca_verifies_against_the_bundle(rotation_cas: dict[str, CaBundle]) -> None:
    roots = x509.load_pem_x509_certificates(trusted_cas(mesh_spec(**TWO_BACKENDS), rotation_cas))
    for name, ca in rotation_cas.items():
        leaf = x509.load_pem_x509_certificate(issue(ca, now=datetime.now(UTC))[0])
        issuers = [root for root in roots if issued_by(leaf, root)]
        assert issuers == [x509.load_pem_x509_certificate(ca.cert_pem)], name


def test_proxies_on_either_side_of_a_switch_still_talk(
    tmp_path: Path, rotation_cas: dict[str, CaBundle]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    bundle = trusted_cas(mesh_spec(**TWO_BACKENDS), rotation_cas)
    old = issue(rotation_cas["ca-1"], service="web", now=now)  # not renewed since the switch
    new = issue(rotation_cas["ca-2"], service="backend", now=now)  # renewed under ca-2
    for client, server in ((old, new), (new, old)):
        client_ctx = tls_context(
            tmp_path, server=False, cert_pem=client[0], key_pem=client[1], trusted=bundle
        )
        server_ctx = tls_context(tmp_path, server=True, cert_pem=server[0], key_pem=server[1], trusted=bundle)
        handshake(client_ctx, server_ctx)
    # Once ca-1 is removed from the mesh, its certificates are no longer trusted.
    only_new = trusted_cas(
        mesh_spec(enabledBackend="ca-2", backends=[TWO_BACKENDS["backends"][1]]), rotation_cas
    )
    client_ctx = tls_context(tmp_path, server=False, cert_pem=old[0], key_pem=old[1], trusted=only_new)
    server_ctx = tls_context(tmp_path, server=True, cert_pem=new[0], key_pem=new[1], trusted=only_new)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client_ctx, server_ctx)


def test_backends_without_a_ca_yet_are_left_out(rotation_cas: dict[str, CaBundle]) -> None:
    bundle = trusted_cas(mesh_spec(**TWO_BACKENDS), {"ca-2": rotation_cas["ca-2"]})
    assert subjects(bundle) == subjects(rotation_cas["ca-2"].cert_pem)


def test_the_enabled_backend_must_have_its_ca(rotation_cas: dict[str, CaBundle]) -> None:
    with pytest.raises(CaUnavailable, match="'ca-2' is not known yet"):
        trusted_cas(mesh_spec(**TWO_BACKENDS), {"ca-1": rotation_cas["ca-1"]})


def test_the_same_ca_is_listed_once(rotation_cas: dict[str, CaBundle]) -> None:
    same = {"ca-1": rotation_cas["ca-2"], "ca-2": rotation_cas["ca-2"]}
    assert len(x509.load_pem_x509_certificates(trusted_cas(mesh_spec(**TWO_BACKENDS), same))) == 1


def test_no_bundle_without_mtls_and_none_from_garbage(rotation_cas: dict[str, CaBundle]) -> None:
    with pytest.raises(ValueError, match="without mTLS"):
        trusted_cas(mesh_spec(backends=[{"name": "ca-1", "type": "builtin"}]), rotation_cas)
    broken = {**rotation_cas, "ca-1": CaBundle(cert_pem=b"junk", key_pem=b"")}
    with pytest.raises(InvalidCa, match="'ca-1': the CA certificate is not PEM"):
        trusted_cas(mesh_spec(**TWO_BACKENDS), broken)
