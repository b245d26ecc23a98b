"""The builtin CA: key types, the contents of its certificate, settings read from the Mesh, and the checks
CA material passes before it may sign.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kmesh.errors import KmeshError
from kmesh.pki import (
    CaBundle,
    InvalidCa,
    PkiError,
    ca_from_backend,
    check_ca,
    generate_ca,
    generate_self_signed_server_cert,
    key_to_pem,
    load_ca,
)

from .helpers import NOW, issue, make_ca_cert, mesh_spec, pem


def cert_of(bundle: CaBundle) -> x509.Certificate:
    return x509.load_pem_x509_certificate(bundle.cert_pem)


def test_default_ca_is_ecdsa_p256_root_of_the_mesh(mesh_ca: CaBundle) -> None:
    cert = cert_of(mesh_ca)
    key = load_ca(mesh_ca).key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://default"]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)


def test_subject_names_mesh_and_backend() -> None:
    cert = cert_of(generate_ca("payments", "ca-2024", now=NOW))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "payments"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "ca-2024"


def test_long_mesh_names_are_cut_in_the_subject_but_whole_in_the_san() -> None:
    mesh = "m" * 200
    cert = cert_of(generate_ca(mesh, "b" * 100, now=NOW))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "m" * 64
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://{mesh}"]


def test_rsa_ca_when_rsa_bits_is_set() -> None:
    bundle = generate_ca("default", "ca-rsa", now=NOW, rsa_bits=2048)
    key = load_ca(bundle).key
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    cert_of(bundle).verify_directly_issued_by(cert_of(bundle))


def test_validity_is_backdated_and_lasts_as_asked() -> None:
    cert = cert_of(generate_ca("default", "ca-1", now=NOW, valid_for_s=3600))
    assert cert.not_valid_before_utc == NOW - timedelta(seconds=60)
    assert cert.not_valid_after_utc == NOW + timedelta(hours=1)


def test_default_lifetime_is_ten_years(mesh_ca: CaBundle) -> None:
    assert cert_of(mesh_ca).not_valid_after_utc == NOW + timedelta(days=3650)


def test_every_ca_gets_its_own_key() -> None:
    first, second = generate_ca("default", "ca-1", now=NOW), generate_ca("default", "ca-1", now=NOW)
    assert first.key_pem != second.key_pem
    assert cert_of(first).serial_number != cert_of(second).serial_number


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mesh": "not a mesh"}, "not a mesh name"),
        ({"mesh": ""}, "not a mesh name"),
        ({"backend": ""}, "backend name must not be empty"),
        ({"rsa_bits": 1024}, "RSAbits must be at least 2048"),
        ({"valid_for_s": 0}, "must be positive"),
        ({"now": NOW.replace(tzinfo=None)}, "timezone-aware"),
    ],
)
def test_generate_ca_refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"mesh": "default", "backend": "ca-1", "now": NOW, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_ca(**args)  # type: ignore[arg-type]


def test_ca_from_backend_reads_ca_cert_settings() -> None:
    spec = mesh_spec(
        enabledBackend="ca-1",
        backends=[
            {"name": "ca-1", "type": "builtin", "conf": {"caCert": {"RSAbits": 2048, "expiration": "1y"}}}
        ],
    )
    bundle = ca_from_backend(spec, "ca-1", mesh="default", now=NOW)
    cert = cert_of(bundle)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "ca-1"


def test_ca_from_backend_defaults_to_ecdsa_for_ten_years() -> None:
    spec = mesh_spec(enabledBackend="ca-1", backends=[{"name": "ca-1", "type": "builtin"}])
    cert = cert_of(ca_from_backend(spec, "ca-1", mesh="default", now=NOW))
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc == NOW + timedelta(days=3650)


def test_ca_from_backend_refuses_provided_and_unknown_backends() -> None:
    spec = mesh_spec(
        backends=[
            {"name": "ours", "type": "builtin"},
            {"name": "theirs", "type": "provided", "conf": {"cert": {"secret": "c"}, "key": {"secret": "k"}}},
        ]
    )
    with pytest.raises(ValueError, match="'theirs' of mesh 'default' is provided"):
        ca_from_backend(spec, "theirs", mesh="default", now=NOW)
    with pytest.raises(ValueError, match=r"no mTLS backend 'missing' \(backends: 'ours', 'theirs'\)"):
        ca_from_backend(spec, "missing", mesh="default", now=NOW)


def test_load_ca_accepts_a_generated_ca(mesh_ca: CaBundle) -> None:
    loaded = load_ca(mesh_ca)
    assert loaded.cert == cert_of(mesh_ca)
    assert loaded.certs == (loaded.cert,)
    assert check_ca(mesh_ca) is mesh_ca


def test_a_leaf_certificate_is_not_a_ca(mesh_ca: CaBundle) -> None:
    cert, key = issue(mesh_ca)
    with pytest.raises(InvalidCa, match="CA:FALSE: it is not a CA"):
        load_ca(CaBundle(cert_pem=cert, key_pem=key))
    server_cert, server_key = generate_self_signed_server_cert(["cp.example"], [])
    with pytest.raises(InvalidCa, match="not a CA"):
        load_ca(CaBundle(cert_pem=server_cert, key_pem=server_key))


def test_a_ca_without_key_cert_sign_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_ca_cert(key, name="no-sign", key_cert_sign=False)
    with pytest.raises(InvalidCa, match="lacks the keyCertSign key usage"):
        load_ca(CaBundle(cert_pem=pem(cert), key_pem=key_to_pem(key)))


def test_a_key_of_another_ca_is_refused_without_quoting_it(
    mesh_ca: CaBundle, other_mesh_ca: CaBundle
) -> None:
    with pytest.raises(InvalidCa, match="the key does not belong to the certificate") as info:
        load_ca(CaBundle(cert_pem=mesh_ca.cert_pem, key_pem=other_mesh_ca.key_pem), where="mesh 'default'")
    assert str(info.value).startswith("mesh 'default': ")
    body = other_mesh_ca.key_pem.decode().splitlines()[1]
    assert body not in str(info.value)
    assert body not in repr(CaBundle(cert_pem=mesh_ca.cert_pem, key_pem=other_mesh_ca.key_pem))


@pytest.mark.parametrize(
    ("cert_pem", "key_pem", "message"),
    [
        (b"not pem", None, "the certificate is not PEM X.509"),
        (None, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not an unencrypted PEM"),
        (None, b"", "not an unencrypted PEM private key"),
    ],
)
def test_unparsable_material_is_refused(
    mesh_ca: CaBundle, cert_pem: bytes | None, key_pem: bytes | None, message: str
) -> None:
    bundle = CaBundle(
        cert_pem=cert_pem or mesh_ca.cert_pem, key_pem=mesh_ca.key_pem if key_pem is None else key_pem
    )
    with pytest.raises(InvalidCa, match=message) as info:
        load_ca(bundle)
    assert isinstance(info.value, PkiError)
    assert isinstance(info.value, KmeshError)
    assert info.value.code == "ca_invalid"
