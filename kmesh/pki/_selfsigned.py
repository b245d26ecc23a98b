"""Self-signed server certificates, and certificate fingerprints.

The global control plane serves KDS over TLS with the certificate an operator gives it; when none is
given it makes one here at start-up (as Kuma does for its KDS server), and zones either trust that
certificate as their CA or connect with verification off. The fingerprint lets an operator compare the
certificate a zone sees with the one the global made.

Rules: pure functions over the ``cryptography`` package, no I/O. Keys are ECDSA P-256. The certificate is
a leaf (``CA:FALSE``, ``digitalSignature``, ``serverAuth``) that verifies as its own trust anchor, also
under OpenSSL's strict X.509 checks: it carries Subject and Authority Key Identifiers, and names the
server only through Subject Alternative Names, which is what TLS clients check.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["cert_fingerprint_sha256", "generate_self_signed_server_cert"]

# Back-date the start so a peer whose clock runs a little behind ours does not see a "not yet valid" cert.
_CLOCK_SKEW: Final = datetime.timedelta(minutes=5)
# X.520 caps commonName at 64 characters; longer DNS names appear only in the SAN.
_MAX_COMMON_NAME: Final = 64


def _common_name(hostnames: Sequence[str], ips: Sequence[str]) -> str:
    for name in (*hostnames, *ips):
        if len(name) <= _MAX_COMMON_NAME:
            return name
    return "kmesh"


def _alt_names(hostnames: Sequence[str], ips: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        if not host or host != host.strip() or "/" in host:
            raise ValueError(f"not a DNS name: {host!r}")
        # IDNA-encode up front: DNSName must be ASCII, and this is what a client compares against.
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"not a DNS name: {host!r} ({exc})") from exc
        names.append(x509.DNSName(ascii_host))
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as exc:
            raise ValueError(f"not an IP address: {ip!r}") from exc
    return names


def generate_self_signed_server_cert(
    hostnames: Sequence[str], ips: Sequence[str], *, valid_days: int = 3650
) -> tuple[bytes, bytes]:
    """Make a self-signed server certificate for ``hostnames`` and ``ips``.

    Returns ``(cert_pem, key_pem)``; the key is unencrypted PKCS#8 PEM. Raises ``ValueError`` when there
    is no name at all, a name is not a DNS name or IP address, or ``valid_days`` is not positive.
    """
    if not hostnames and not ips:
        raise ValueError("a server certificate needs at least one hostname or IP address")
    if valid_days <= 0:
        raise ValueError(f"valid_days must be positive, got {valid_days}")
    alt_names = _alt_names(hostnames, ips)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, _common_name(hostnames, ips)),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem


def cert_fingerprint_sha256(cert_pem: bytes) -> str:
    """SHA-256 of the DER form of the first certificate in ``cert_pem``, as ``AB:CD:...``.

    The format is the one ``openssl x509 -noout -fingerprint -sha256`` prints, so an operator can compare
    the two by eye. Raises ``ValueError`` if ``cert_pem`` holds no PEM certificate.
    """
    cert = x509.load_pem_x509_certificate(cert_pem)
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
