"""TLS context factories, exercised by complete TLS handshakes over in-memory BIOs (no sockets)."""

from __future__ import annotations

import datetime
import os
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmesh.pki import generate_self_signed_server_cert
from kmesh.wire.tls import client_context, server_context


@pytest.fixture(scope="module")
def server_pair() -> tuple[bytes, bytes]:
    return generate_self_signed_server_cert(["localhost", "kds.example.test"], ["127.0.0.1", "::1"])


@pytest.fixture(scope="module")
def other_pair() -> tuple[bytes, bytes]:
    return generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])


def client_cert_pair(uri: str) -> tuple[bytes, bytes]:
    """A self-signed client certificate (EKU clientAuth) naming its holder by a URI SAN, as mesh peers do."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def peer_sans(side: ssl.SSLObject) -> tuple[object, ...]:
    cert = side.getpeercert()
    assert cert is not None, "no peer certificate"
    sans = cert["subjectAltName"]
    assert isinstance(sans, tuple)
    return sans


def handshake(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_hostname: str | None = "localhost"
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake between two contexts through memory BIOs; raises what either side raises."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3 finishes the client first; a server-side refusal (no client certificate) reaches
            # the client only with the next record, so exchange one application byte each way.
            client.write(b"c")
            s_in.write(c_out.read())
            assert server.read(1) == b"c"
            server.write(b"s")
            c_in.write(s_out.read())
            assert client.read(1) == b"s"
            return client, server
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("hostname", ["localhost", "kds.example.test", "127.0.0.1", "::1"])
def test_client_verifies_self_signed_server_by_name_and_ip(
    server_pair: tuple[bytes, bytes], hostname: str
) -> None:
    cert, key = server_pair
    client, server = handshake(client_context(ca_pem=cert), server_context(cert, key), hostname)
    assert client.version() == "TLSv1.3"
    assert server.version() == "TLSv1.3"


def test_self_signed_cert_passes_strict_x509_checks(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    ctx = client_context(ca_pem=cert)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    client, _ = handshake(ctx, server_context(cert, key))
    assert client.version() == "TLSv1.3"


def test_hostname_not_in_san_fails_verification(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(client_context(ca_pem=cert), server_context(cert, key), "global.example.test")


def test_certificate_from_another_ca_fails_verification(
    server_pair: tuple[bytes, bytes], other_pair: tuple[bytes, bytes]
) -> None:
    cert, key = server_pair
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client_context(ca_pem=other_pair[0]), server_context(cert, key))


def test_name_check_off_still_verifies_the_chain(
    server_pair: tuple[bytes, bytes], other_pair: tuple[bytes, bytes]
) -> None:
    cert, key = server_pair
    client, _ = handshake(
        client_context(ca_pem=cert, server_hostname_check=False), server_context(cert, key), None
    )
    assert ("DNS", "kds.example.test") in peer_sans(client)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(
            client_context(ca_pem=other_pair[0], server_hostname_check=False), server_context(cert, key)
        )


def test_skip_verify_connects_to_an_unknown_certificate(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    ctx = client_context(skip_verify=True)
    assert ctx.verify_mode == ssl.CERT_NONE
    client, _ = handshake(ctx, server_context(cert, key), "anything.invalid")
    assert client.version() == "TLSv1.3"


def test_ca_file_is_loaded(server_pair: tuple[bytes, bytes], tmp_path: Path) -> None:
    cert, key = server_pair
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(cert)
    client, _ = handshake(client_context(ca_file=str(ca_file)), server_context(cert, key))
    assert client.version() == "TLSv1.3"


def test_tls_1_2_peers_are_refused(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    old_client = client_context(ca_pem=cert)
    old_client.minimum_version = ssl.TLSVersion.TLSv1_2
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(old_client, server_context(cert, key))
    assert server_context(cert, key).minimum_version == ssl.TLSVersion.TLSv1_3
    assert client_context(skip_verify=True).minimum_version == ssl.TLSVersion.TLSv1_3


def test_server_issues_no_session_tickets(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    ctx = server_context(cert, key)
    assert ctx.num_tickets == 0
    client, _ = handshake(client_context(ca_pem=cert), ctx)
    assert client.session is not None
    assert not client.session.has_ticket


def test_mutual_tls_presents_and_checks_the_client_certificate(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    client_cert, client_key = client_cert_pair("spiffe://default/web")
    server_ctx = server_context(cert, key, client_ca_pem=client_cert, require_client_cert=True)
    assert server_ctx.verify_mode == ssl.CERT_REQUIRED
    client_ctx = client_context(ca_pem=cert, client_cert_pem=client_cert, client_key_pem=client_key)
    _, server = handshake(client_ctx, server_ctx)
    assert peer_sans(server) == (("URI", "spiffe://default/web"),)
    with pytest.raises(ssl.SSLError, match="PEER_DID_NOT_RETURN_A_CERTIFICATE"):
        handshake(client_context(ca_pem=cert), server_ctx)
    other_cert, other_key = client_cert_pair("spiffe://default/intruder")
    stranger = client_context(ca_pem=cert, client_cert_pem=other_cert, client_key_pem=other_key)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        handshake(stranger, server_ctx)


def test_optional_client_certificate(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    client_cert, client_key = client_cert_pair("spiffe://default/backend")
    server_ctx = server_context(cert, key, client_ca_pem=client_cert)
    assert server_ctx.verify_mode == ssl.CERT_OPTIONAL
    _, anonymous = handshake(client_context(ca_pem=cert), server_ctx)
    assert anonymous.getpeercert() is None
    with_cert = client_context(ca_pem=cert, client_cert_pem=client_cert, client_key_pem=client_key)
    _, known = handshake(with_cert, server_ctx)
    assert peer_sans(known) == (("URI", "spiffe://default/backend"),)


def test_key_file_is_private_and_removed_at_once(
    server_pair: tuple[bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = server_pair
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    seen: list[tuple[int, int, bytes]] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: str | None = None, password: object = None) -> None:
        path = Path(certfile)
        seen.append(
            (stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode), path.read_bytes())
        )
        original(self, certfile, keyfile, password)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    server_context(cert, key)
    client_context(skip_verify=True, client_cert_pem=cert, client_key_pem=key)
    with pytest.raises(ValueError, match="does not match"):
        server_context(cert, generate_self_signed_server_cert(["x"], [])[1])
    assert len(seen) == 3
    for file_mode, dir_mode, content in seen:
        assert file_mode == 0o600
        assert dir_mode == 0o700
        assert b"-----BEGIN PRIVATE KEY-----" in content
        assert b"-----BEGIN CERTIFICATE-----" in content
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_raise_value_errors_naming_the_problem(
    server_pair: tuple[bytes, bytes], other_pair: tuple[bytes, bytes], tmp_path: Path
) -> None:
    cert, key = server_pair
    encrypted = serialization.load_pem_private_key(key, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    cases: list[tuple[Callable[[], ssl.SSLContext], str]] = [
        (lambda: server_context(cert, other_pair[1]), "does not match"),
        (lambda: server_context(b"not a cert", key), "PEM"),
        (lambda: server_context(cert, b""), "must both be given"),
        (lambda: server_context(cert, encrypted), "encrypted"),
        (lambda: server_context(cert, key, require_client_cert=True), "client_ca_pem"),
        (lambda: server_context(cert, key, client_ca_pem=b"junk"), "client_ca_pem"),
        (lambda: client_context(ca_pem=b"junk"), "ca_pem"),
        (lambda: client_context(ca_pem="é".encode()), "ca_pem"),
        (lambda: client_context(ca_pem=cert, skip_verify=True), "skip_verify"),
        (lambda: client_context(ca_pem=cert, client_cert_pem=cert), "together"),
    ]
    for build, message in cases:
        with pytest.raises(ValueError, match=message):
            build()
    not_pem = tmp_path / "ca.pem"
    not_pem.write_bytes(b"junk")
    with pytest.raises(ValueError, match="ca_file"):
        client_context(ca_file=str(not_pem))
    with pytest.raises(OSError):
        client_context(ca_file=os.fspath(tmp_path / "missing.pem"))
