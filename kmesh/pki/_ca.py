"""The mesh CA: generating a builtin backend's root, and checking that CA material can sign.

Each mTLS backend of a mesh has its own CA (DESIGN.md, "Cross-zone routing"): the global makes a builtin
backend's CA when the mesh is created, and it reaches zones as two mesh Secrets (see ``_storage``). A
provided backend's CA comes from the operator (see ``_provided``). Either way it is a :class:`CaBundle`.

Rules:
- A builtin CA's key is ECDSA P-256, unless the backend sets ``conf.caCert.RSAbits``: then RSA of that size
  (Kuma's builtin CA is always RSA; kmesh keeps RSA for meshes that ask for it). Its certificate is a root:
  ``CA:TRUE, pathlen:0`` (it signs workload certificates only), ``keyCertSign`` and ``cRLSign``, Subject
  and Authority Key Identifiers, and the URI SAN ``spiffe://<mesh>`` (the SPIFFE trust domain), as Kuma's
  ``pkg/plugins/ca/builtin/ca.go``. It lives ``conf.caCert.expiration``, ten years by default.
- Every start of validity is back-dated a little (a minute, or a tenth of the lifetime if that is less), so
  a peer whose clock lags ours does not see a "not yet valid" certificate.
- CA material is accepted when every certificate in it is a CA with ``keyCertSign`` (X509-SVID 4.1, 4.3)
  and the key is the first certificate's (Kuma's ``provided/ca_cert_validator.go``). Further certificates
  after the first are its chain, handed to proxies as trust anchors too.
- ``now`` is always passed in and must be timezone-aware. Keys are unencrypted PKCS#8 PEM; ``repr`` of a
  :class:`CaBundle` leaves the key out, and no message quotes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kmesh.model import parse_duration
from kmesh.model.types.mesh import CertificateAuthorityBackend, MeshSpec
from kmesh.pki._errors import InvalidCa
from kmesh.pki._identity import SPIFFE_SCHEME, check_mesh_name

__all__ = [
    "DEFAULT_CA_LIFETIME_S",
    "CaBundle",
    "LoadedCa",
    "PrivateKey",
    "backdate",
    "ca_from_backend",
    "check_ca",
    "check_now",
    "find_backend",
    "generate_ca",
    "hash_for",
    "key_to_pem",
    "load_ca",
]

DEFAULT_CA_LIFETIME_S: Final = 10 * 365 * 86_400.0
_MAX_BACKDATE_S: Final = 60.0
# X.520 caps these attributes at 64 characters; the full mesh name is in the SPIFFE URI SAN.
_MAX_ATTRIBUTE: Final = 64
_MIN_RSA_BITS: Final = 2048

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@final
@dataclass(frozen=True, slots=True)
class CaBundle:
    """A CA as stored: its certificate (then any chain) and its key, both PEM. ``repr`` omits the key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


@final
@dataclass(frozen=True, slots=True)
class LoadedCa:
    """A checked CA, parsed: the signing certificate, all certificates of the bundle, and the key."""

    cert: x509.Certificate
    certs: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)


def check_now(now: datetime) -> datetime:
    """``now``, refused (ValueError) when naive: a naive time would silently be read as UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime, such as datetime.now(UTC)")
    return now


def backdate(valid_for_s: float) -> timedelta:
    """How far before ``now`` a certificate living ``valid_for_s`` starts (see the module rules)."""
    return timedelta(seconds=min(_MAX_BACKDATE_S, valid_for_s / 10))


def hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The digest that matches ``key``'s strength: SHA-384 for P-384, SHA-512 for P-521, else SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size >= 521:
            return hashes.SHA512()
        if key.curve.key_size >= 384:
            return hashes.SHA384()
    return hashes.SHA256()


def key_to_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_ca(
    mesh: str,
    backend: str,
    *,
    now: datetime,
    rsa_bits: int | None = None,
    valid_for_s: float = DEFAULT_CA_LIFETIME_S,
) -> CaBundle:
    """A new root CA for ``backend`` of ``mesh`` (see the module rules for its contents).

    Raises ValueError for a mesh name that cannot be a trust domain, an empty backend name, ``rsa_bits``
    below 2048, a lifetime that is not positive, or a naive ``now``.
    """
    check_mesh_name(mesh)
    check_now(now)
    if not backend:
        raise ValueError("the backend name must not be empty")
    if valid_for_s <= 0:
        raise ValueError(f"a CA lifetime must be positive, got {valid_for_s} s")
    key: PrivateKey
    if rsa_bits is None:
        key = ec.generate_private_key(ec.SECP256R1())
    elif rsa_bits < _MIN_RSA_BITS:
        raise ValueError(f"RSAbits must be at least {_MIN_RSA_BITS}, got {rsa_bits}")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmesh"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, backend[:_MAX_ATTRIBUTE]),
            x509.NameAttribute(NameOID.COMMON_NAME, mesh[:_MAX_ATTRIBUTE]),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate(valid_for_s))
        .not_valid_after(now + timedelta(seconds=valid_for_s))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"{SPIFFE_SCHEME}{mesh}")]),
            critical=False,
        )
        .sign(key, hash_for(key))
    )
    return CaBundle(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=key_to_pem(key))


def find_backend(mesh_spec: MeshSpec, backend_name: str) -> CertificateAuthorityBackend:
    """The mTLS backend called ``backend_name``. Raises ValueError naming the backends there are."""
    backends = mesh_spec.mtls.backends if mesh_spec.mtls is not None else []
    for backend in backends:
        if backend.name == backend_name:
            return backend
    known = ", ".join(repr(b.name) for b in backends) or "none"
    raise ValueError(f"the mesh has no mTLS backend {backend_name!r} (backends: {known})")


def ca_from_backend(mesh_spec: MeshSpec, backend_name: str, *, mesh: str, now: datetime) -> CaBundle:
    """A new CA for the builtin backend ``backend_name`` of ``mesh``, as its ``conf.caCert`` asks.

    Raises ValueError when there is no such backend, it is ``provided`` (the operator brings that CA), or
    ``conf.caCert.expiration`` is not a duration; and as :func:`generate_ca` does.
    """
    backend = find_backend(mesh_spec, backend_name)
    if backend.type != "builtin":
        raise ValueError(
            f"mTLS backend {backend_name!r} of mesh {mesh!r} is {backend.type}: its CA is read from its "
            "conf.cert and conf.key, not generated"
        )
    ca_cert = backend.conf.ca_cert if backend.conf is not None else None
    valid_for_s = DEFAULT_CA_LIFETIME_S
    if ca_cert is not None and ca_cert.expiration is not None:
        try:
            valid_for_s = parse_duration(ca_cert.expiration)
        except ValueError as exc:
            raise ValueError(f"mTLS backend {backend_name!r}: conf.caCert.expiration: {exc}") from None
    rsa_bits = ca_cert.rsa_bits if ca_cert is not None else None
    return generate_ca(mesh, backend_name, now=now, rsa_bits=rsa_bits, valid_for_s=valid_for_s)


def _is_signing_ca(cert: x509.Certificate) -> str | None:
    """Why ``cert`` cannot sign certificates, or None when it can."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "has no basicConstraints extension, so it is not a CA (X509-SVID 4.1)"
    if not constraints.ca:
        return "has basicConstraints CA:FALSE: it is not a CA (X509-SVID 4.1)"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "has no keyUsage extension; a CA needs keyCertSign (X509-SVID 4.3)"
    if not usage.key_cert_sign:
        return "lacks the keyCertSign key usage (X509-SVID 4.3)"
    return None


def _spki(key: PrivateKey | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_ca(bundle: CaBundle, *, where: str = "CA") -> LoadedCa:
    """``bundle`` parsed and checked (see the module rules). ``where`` starts every message, for example
    ``"mesh 'default', mTLS backend 'ca-1'"``.

    Raises InvalidCa saying what is wrong: no PEM certificate, a certificate that is not a signing CA, a
    key that is not an unencrypted PEM ECDSA or RSA key, or a key that is not the certificate's.
    """
    try:
        certs = tuple(x509.load_pem_x509_certificates(bundle.cert_pem))
    except ValueError as exc:
        raise InvalidCa(f"{where}: the certificate is not PEM X.509 ({exc})") from None
    for i, cert in enumerate(certs):
        problem = _is_signing_ca(cert)
        if problem is not None:
            which = "the certificate" if len(certs) == 1 else f"certificate {i} of the chain"
            raise InvalidCa(f"{where}: {which} {problem}")
    try:
        key = serialization.load_pem_private_key(bundle.key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The parser's message is left out on purpose: it could quote the key's bytes.
        raise InvalidCa(f"{where}: the key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidCa(f"{where}: the key is {type(key).__name__}; a CA key must be ECDSA or RSA")
    if _spki(key) != _spki(certs[0]):
        raise InvalidCa(f"{where}: the key does not belong to the certificate (their public keys differ)")
    return LoadedCa(cert=certs[0], certs=certs, key=key)


def check_ca(bundle: CaBundle, *, where: str = "CA") -> CaBundle:
    """``bundle`` itself, once :func:`load_ca` accepts it. Raises InvalidCa as that does."""
    load_ca(bundle, where=where)
    return bundle
