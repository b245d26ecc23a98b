"""Self-signed server certificates for the global's KDS endpoint, and their fingerprints."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kmesh.pki import cert_fingerprint_sha256, generate_self_signed_server_cert


def test_certificate_names_every_host_and_ip_and_uses_p256() -> None:
    cert_pem, key_pem = generate_self_signed_server_cert(
        ["localhost", "global.kmesh.test"], ["127.0.0.1", "::1"]
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "global.kmesh.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    assert cert.issuer == cert.subject
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_validity_spans_the_requested_days_from_now() -> None:
    before = datetime.datetime.now(datetime.UTC)
    cert = x509.load_pem_x509_certificate(
        generate_self_signed_server_cert(["localhost"], [], valid_days=30)[0]
    )
    assert cert.not_valid_before_utc <= before
    lifetime = cert.not_valid_after_utc - before
    assert datetime.timedelta(days=29, hours=23) < lifetime <= datetime.timedelta(days=30, seconds=5)


def test_each_call_makes_a_new_key_and_serial() -> None:
    first = x509.load_pem_x509_certificate(generate_self_signed_server_cert(["a.test"], [])[0])
    second = x509.load_pem_x509_certificate(generate_self_signed_server_cert(["a.test"], [])[0])
    assert first.serial_number != second.serial_number
    assert first.public_key() != second.public_key()


def test_ip_only_and_long_names() -> None:
    long_name = ".".join(["x" * 60] * 3)
    cert = x509.load_pem_x509_certificate(generate_self_signed_server_cert([long_name], ["10.0.0.7"])[0])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [long_name]
    # commonName is capped at 64 characters, so the IP names the subject instead.
    assert "CN=10.0.0.7" in cert.subject.rfc4514_string().split(",")


@pytest.mark.parametrize(
    ("hostnames", "ips", "valid_days", "message"),
    [
        ([], [], 10, "at least one"),
        (["ok.test"], ["300.1.1.1"], 10, "not an IP address"),
        (["bad host/"], [], 10, "not a DNS name"),
        ([""], [], 10, "not a DNS name"),
        (["ok.test"], [], 0, "valid_days"),
    ],
)
def test_bad_arguments(hostnames: list[str], ips: list[str], valid_days: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_self_signed_server_cert(hostnames, ips, valid_days=valid_days)


def test_fingerprint_is_sha256_of_der_in_openssl_format() -> None:
    cert_pem, _ = generate_self_signed_server_cert(["localhost"], [])
    fingerprint = cert_fingerprint_sha256(cert_pem)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    assert fingerprint.replace(":", "").lower() == hashlib.sha256(der).hexdigest()


def test_fingerprint_of_a_bundle_is_that_of_its_first_certificate() -> None:
    first, _ = generate_self_signed_server_cert(["one.test"], [])
    second, _ = generate_self_signed_server_cert(["two.test"], [])
    assert cert_fingerprint_sha256(first + second) == cert_fingerprint_sha256(first)
    assert cert_fingerprint_sha256(first) != cert_fingerprint_sha256(second)


def test_fingerprint_of_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        cert_fingerprint_sha256(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
