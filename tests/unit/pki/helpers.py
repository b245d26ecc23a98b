"""Helpers for the PKI tests: a fixed clock, mesh documents, workload certificates, and a TLS handshake
between two ``ssl.SSLObject`` over ``MemoryBIO`` pairs (no sockets).
"""

from __future__ import annotations

import ssl
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kmesh.model import parse_resource
from kmesh.model.types import MeshSpec
from kmesh.pki import CaBundle, generate_workload_key, key_to_pem, make_csr, sign_workload_csr

NOW = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)
DAY_S = 86_400.0


def mesh_spec(**mtls: Any) -> MeshSpec:
    """The spec of a Mesh document whose ``mtls`` is ``mtls`` (wire names), parsed as a user's file is."""
    resource = parse_resource({"type": "Mesh", "name": "default", "mtls": mtls})
    assert isinstance(resource.spec, MeshSpec)
    return resource.spec


def issue(
    ca: CaBundle,
    *,
    mesh: str = "default",
    service: str = "web",
    tags: Mapping[str, Collection[str]] | None = None,
    now: datetime = NOW,
    valid_for_s: float = DAY_S,
) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` of a workload of ``service``, as proxy and zone CP make it between them."""
    key = generate_workload_key()
    csr = make_csr(key, mesh=mesh, service=service)
    cert = sign_workload_csr(
        csr,
        ca,
        mesh=mesh,
        services=[service],
        tags=tags if tags is not None else {"kuma.io/service": [service]},
        now=now,
        valid_for_s=valid_for_s,
    )
    return cert, key_to_pem(key)


def make_ca_cert(
    key: ec.EllipticCurvePrivateKey,
    *,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    path_length: int | None = None,
    key_cert_sign: bool = True,
) -> x509.Certificate:
    """A CA certificate built by hand (for provided CAs): self-signed, or signed by ``issuer``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer is not None else (None, key)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki_from = issuer_cert.public_key() if issuer_cert is not None else key.public_key()
    assert isinstance(aki_from, ec.EllipticCurvePublicKey)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not key_cert_sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=key_cert_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_from), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def tls_context(
    tmp_path: Path, *, server: bool, cert_pem: bytes, key_pem: bytes, trusted: bytes
) -> ssl.SSLContext:
    """A TLS 1.3 context as a kmesh proxy makes one: mutual verification against the mesh CAs, no hostname
    check (peers are checked by SPIFFE id instead), OpenSSL's strict X.509 checks on.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    side = "server" if server else "client"
    cert_file, key_file = tmp_path / f"{side}.crt", tmp_path / f"{side}.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=trusted.decode("ascii"))
    return ctx


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake between two in-memory endpoints and send one message each way.

    Returns ``(client, server)`` once both finished; raises whatever ``ssl`` error either side raised.
    """
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname="web.default.kmesh")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}

    def pump() -> None:
        s_in.write(c_out.read())
        c_in.write(s_out.read())

    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        pump()
        if all(done.values()):
            break
    assert all(done.values()), f"handshake did not finish: {done}"
    # In TLS 1.3 the server checks the client's certificate after the client has finished: exchanging
    # data makes a refusal on either side surface here.
    client.write(b"ping")
    pump()
    assert server.read(4) == b"ping"
    server.write(b"pong")
    pump()
    assert client.read(4) == b"pong"
    return client, server
