"""Workload certificates signed from a proxy's CSR: what they contain whatever the CSR asks, which CSRs are
refused, and how long they live.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmesh.pki import (
    CaBundle,
    InvalidCa,
    InvalidCsr,
    generate_ca,
    generate_workload_key,
    identity_of,
    key_to_pem,
    make_csr,
    sign_workload_csr,
)

from .helpers import DAY_S, NOW, issue

TAGS = {"kuma.io/service": ["web"], "kuma.io/zone": ["east"], "version": ["v2", "v1", "v2"]}


def sign(csr: bytes, ca: CaBundle, **overrides: object) -> x509.Certificate:
    args: dict[str, object] = {
        "mesh": "default",
        "services": ["web"],
        "tags": TAGS,
        "now": NOW,
        "valid_for_s": DAY_S,
        **overrides,
    }
    return x509.load_pem_x509_certificate(sign_workload_csr(csr, ca, **args))  # type: ignore[arg-type]


def uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def test_signed_certificate_verifies_against_the_mesh_ca(mesh_ca: CaBundle) -> None:
    key = generate_workload_key()
    cert = sign(make_csr(key, mesh="default", service="web"), mesh_ca)
    ca_cert = x509.load_pem_x509_certificate(mesh_ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.public_key() == key.public_key()
    assert cert.issuer == ca_cert.subject


def test_another_mesh_ca_did_not_issue_it(mesh_ca: CaBundle, other_mesh_ca: CaBundle) -> None:
    cert = sign(make_csr(generate_workload_key(), mesh="default", service="web"), mesh_ca)
    with pytest.raises((ValueError, TypeError)):
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(other_mesh_ca.cert_pem))


def test_extensions_of_a_workload_certificate(mesh_ca: CaBundle) -> None:
    cert = sign(make_csr(generate_workload_key(), mesh="default", service="web"), mesh_ca)
    assert uris(cert) == [
        "spiffe://default/web",
        "kuma://kuma.io/service/web",
        "kuma://kuma.io/zone/east",
        "kuma://version/v1",
        "kuma://version/v2",
    ]
    assert cert.subject == x509.Name([])
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) == (True, True, False)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ca_ski = (
        x509.load_pem_x509_certificate(mesh_ca.cert_pem)
        .extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        .value
    )
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_sans_come_from_the_signer_not_from_the_csr(mesh_ca: CaBundle) -> None:
    key = generate_workload_key()
    greedy = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("spiffe://default/admin"),
                    x509.UniformResourceIdentifier("spiffe://other/db"),
                    x509.UniformResourceIdentifier("kuma://kuma.io/service/admin"),
                    x509.DNSName("db.mesh"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    cert = sign(greedy, mesh_ca, services=["web", "api"], tags={"team": ["shop"]})
    assert uris(cert) == ["spiffe://default/api", "spiffe://default/web", "kuma://team/shop"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.subject == x509.Name([])


def test_a_csr_signed_by_another_key_is_refused(mesh_ca: CaBundle) -> None:
    csr = make_csr(generate_workload_key(), mesh="default", service="web")
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    ours = (
        x509.load_pem_x509_csr(csr)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    theirs = (
        generate_workload_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert len(ours) == len(theirs)
    assert der.count(ours) == 1
    forged = x509.load_der_x509_csr(der.replace(ours, theirs)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidCsr, match="signature does not verify") as info:
        sign(forged, mesh_ca)
    assert info.value.code == "csr_invalid"


def test_a_csr_with_a_corrupted_signature_is_refused(mesh_ca: CaBundle) -> None:
    der = bytearray(
        x509.load_pem_x509_csr(make_csr(generate_workload_key(), mesh="default", service="web")).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-1] ^= 0x01  # the last byte of the signature's s
    corrupted = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidCsr, match="signature does not verify"):
        sign(corrupted, mesh_ca)


@pytest.mark.parametrize("garbage", [b"", b"hello", b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n"])
def test_garbage_is_not_a_csr(mesh_ca: CaBundle, garbage: bytes) -> None:
    with pytest.raises(InvalidCsr, match="not a PEM certificate signing request"):
        sign(garbage, mesh_ca)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA of 1024 bits"),
        (ec.generate_private_key(ec.SECP521R1()), "curve secp521r1"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519PublicKey"),
    ],
    ids=["rsa1024", "p521", "ed25519"],
)
def test_weak_or_unexpected_keys_are_refused(mesh_ca: CaBundle, key: object, message: str) -> None:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]
    with pytest.raises(InvalidCsr, match=message):
        sign(csr, mesh_ca)


def test_rsa_workload_keys_and_rsa_cas_work_together() -> None:
    rsa_ca = generate_ca("default", "ca-rsa", now=NOW, rsa_bits=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = sign(make_csr(key_to_pem(key), mesh="default", service="web"), rsa_ca)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(rsa_ca.cert_pem))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)


def test_lifetime_is_honoured(mesh_ca: CaBundle) -> None:
    cert_pem, _ = issue(mesh_ca, valid_for_s=6 * 3600)
    identity = identity_of(cert_pem)
    assert identity.not_after == NOW + timedelta(hours=6)
    assert identity.not_before == NOW - timedelta(minutes=1)


def test_short_lifetimes_backdate_less(mesh_ca: CaBundle) -> None:
    identity = identity_of(issue(mesh_ca, valid_for_s=120)[0])
    assert identity.not_before == NOW - timedelta(seconds=12)
    assert identity.not_after == NOW + timedelta(seconds=120)


def test_a_certificate_does_not_outlive_its_ca() -> None:
    short_ca = generate_ca("default", "short", now=NOW, valid_for_s=3600)
    identity = identity_of(issue(short_ca, valid_for_s=DAY_S)[0])
    assert identity.not_after == NOW + timedelta(hours=1)


def test_an_expired_or_future_ca_does_not_sign(mesh_ca: CaBundle) -> None:
    csr = make_csr(generate_workload_key(), mesh="default", service="web")
    ca_end = NOW + timedelta(days=3650)
    with pytest.raises(InvalidCa, match=f"expired at {re.escape(ca_end.isoformat())}; rotate"):
        sign(csr, mesh_ca, now=ca_end)
    with pytest.raises(InvalidCa, match="not valid before"):
        sign(csr, mesh_ca, now=NOW - timedelta(hours=1))


def test_serials_are_random(mesh_ca: CaBundle) -> None:
    csr = make_csr(generate_workload_key(), mesh="default", service="web")
    serials = {sign(csr, mesh_ca).serial_number for _ in range(5)}
    assert len(serials) == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"services": []}, "at least one service"),
        ({"services": "web"}, "not the string 'web'"),
        ({"services": ["we/b"]}, "service 'we/b'"),
        ({"tags": {"zone": "east"}}, "must be a collection, not the string"),
        ({"tags": {"bad tag": ["x"]}}, "tag name 'bad tag'"),
        ({"tags": {"zone": ["ea/st"]}}, "value 'ea/st'"),
        ({"mesh": "no/mesh"}, "not a mesh name"),
        ({"valid_for_s": -1}, "must be positive"),
        ({"now": NOW.replace(tzinfo=None)}, "timezone-aware"),
    ],
)
def test_bad_arguments_are_refused(mesh_ca: CaBundle, overrides: dict[str, object], message: str) -> None:
    csr = make_csr(generate_workload_key(), mesh="default", service="web")
    with pytest.raises(ValueError, match=message):
        sign(csr, mesh_ca, **overrides)


def test_make_csr_takes_a_pem_key_and_asks_for_its_spiffe_id() -> None:
    key = generate_workload_key()
    csr = x509.load_pem_x509_csr(make_csr(key_to_pem(key), mesh="default", service="web"))
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://default/web"]


def test_make_csr_refuses_what_is_not_a_key() -> None:
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as info:
        make_csr(b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n", mesh="m", service="s")
    assert "secret" not in str(info.value)
