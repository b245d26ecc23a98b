"""Workload certificates: the proxy makes its key and a CSR; the zone CP signs it with the mesh CA.

The private key never leaves the proxy (DESIGN.md, "Wire": DP protocol): :func:`generate_workload_key` and
:func:`make_csr` run in the proxy, :func:`sign_workload_csr` in the zone control plane.

Rules for the signed certificate (Kuma's ``pkg/core/ca/issuer/issuer.go``, X509-SVID):
- The CSR proves possession of its key (its signature must verify) and gives the public key. Nothing else
  in it is used: the identity comes from the control plane's view of the dataplane, so a CSR asking for
  other names, or a CA, gets the URI SANs of :func:`kmesh.pki.workload_uris` and ``CA:FALSE`` regardless.
- Only keys a mesh proxy should hold are signed: ECDSA P-256 or P-384, RSA of 2048 to 8192 bits.
- The subject is empty and so the SAN extension is critical (RFC 5280 4.2.1.6); ``CA:FALSE``;
  ``digitalSignature`` and ``keyEncipherment``; ``serverAuth`` and ``clientAuth``, since a proxy is the TLS
  server of its inbounds and the client of its outbounds. Subject and Authority Key Identifiers let
  OpenSSL pick the right CA among a mesh's several (backend rotation), and satisfy its strict X.509 mode.
- Validity is ``now - backdate`` (see ``_ca``) to ``now + valid_for_s``, cut at the CA's own end (a
  certificate cannot outlive its issuer). The serial is random (159 bits).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kmesh.pki._ca import CaBundle, PrivateKey, backdate, check_now, hash_for, load_ca
from kmesh.pki._errors import InvalidCa, InvalidCsr
from kmesh.pki._identity import spiffe_id, workload_uris

__all__ = ["generate_workload_key", "make_csr", "sign_workload_csr"]

_CURVES: Final = frozenset({"secp256r1", "secp384r1"})
_RSA_BITS: Final = range(2048, 8193)


def generate_workload_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 key for a proxy; :func:`kmesh.pki.key_to_pem` gives its PKCS#8 PEM."""
    return ec.generate_private_key(ec.SECP256R1())


def _private_key(private_key: PrivateKey | bytes) -> PrivateKey:
    if not isinstance(private_key, bytes):
        return private_key
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("the workload key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"the workload key is {type(key).__name__}; it must be ECDSA or RSA")
    return key


def make_csr(private_key: PrivateKey | bytes, *, mesh: str, service: str) -> bytes:
    """A PEM CSR signed with ``private_key`` (a key object or its PEM) asking for ``spiffe://<mesh>/<service>``.

    The SAN is informational: the signer sets the names itself. Raises ValueError for a key that is not an
    unencrypted PEM ECDSA or RSA key, or for names :func:`kmesh.pki.spiffe_id` refuses.
    """
    key = _private_key(private_key)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(mesh, service))]),
            critical=True,
        )
        .sign(key, hash_for(key))
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidCsr(f"not a PEM certificate signing request ({exc})") from None
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidCsr(f"the CSR's public key cannot be read ({exc})") from None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _CURVES:
            raise InvalidCsr(f"the CSR's key is on curve {public_key.curve.name}; use P-256 or P-384")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size not in _RSA_BITS:
            raise InvalidCsr(f"the CSR's key is RSA of {public_key.key_size} bits; use 2048 to 8192")
    else:
        raise InvalidCsr(f"the CSR's key is {type(public_key).__name__}; use ECDSA P-256 or RSA")
    # After the key type check: is_signature_valid raises for algorithms it does not know.
    if not csr.is_signature_valid:
        raise InvalidCsr("the CSR's signature does not verify with the key it carries")
    return public_key


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        # A provided CA without SKI: derive the id from its key, as the CA's SKI would have been.
        public_key = ca_cert.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise InvalidCa(f"the CA's key is {type(public_key).__name__}; it must be ECDSA or RSA") from None
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def sign_workload_csr(
    csr_pem: bytes,
    ca: CaBundle,
    *,
    mesh: str,
    services: Sequence[str],
    tags: Mapping[str, Collection[str]],
    now: datetime,
    valid_for_s: float,
) -> bytes:
    """The PEM workload certificate for the key in ``csr_pem``, naming ``services`` and ``tags`` in ``mesh``.

    Raises InvalidCsr when the CSR does not parse, its signature fails or its key type is refused;
    InvalidCa when ``ca`` cannot sign or is outside its validity at ``now``; ValueError for names that
    :func:`kmesh.pki.workload_uris` refuses, a lifetime that is not positive, or a naive ``now``.
    """
    check_now(now)
    if valid_for_s <= 0:
        raise ValueError(f"a certificate lifetime must be positive, got {valid_for_s} s")
    uris = workload_uris(mesh, services, tags)
    loaded = load_ca(ca, where=f"mesh {mesh!r} CA")
    ca_start, ca_end = loaded.cert.not_valid_before_utc, loaded.cert.not_valid_after_utc
    if now < ca_start:
        raise InvalidCa(f"mesh {mesh!r} CA is not valid before {ca_start.isoformat()}; check the clock")
    if now >= ca_end:
        raise InvalidCa(f"mesh {mesh!r} CA expired at {ca_end.isoformat()}; rotate to a new mTLS backend")
    public_key = _csr_public_key(csr_pem)
    not_after = min(now + timedelta(seconds=valid_for_s), ca_end)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(loaded.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate(valid_for_s))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(loaded.cert), critical=False)
        .sign(loaded.key, hash_for(loaded.key))
    )
    return cert.public_bytes(serialization.Encoding.PEM)
