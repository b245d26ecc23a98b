"""Framed messages over real TLS 1.3 loopback connections, built with the wire layer's context factories.

Each test runs on stdlib asyncio and on uvloop (tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmesh.errors import RemoteProtocolError
from kmesh.pki import cert_fingerprint_sha256, generate_self_signed_server_cert
from kmesh.wire import MessageCodec, WireMessage, client_context, server_context


class Ping(WireMessage, frozen=True, kw_only=True):
    seq: int
    payload: bytes = b""


class Pong(WireMessage, frozen=True, kw_only=True):
    seq: int
    size: int
    digest: str


Msg = Ping | Pong
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def server_pair() -> tuple[bytes, bytes]:
    return generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])


@pytest.fixture(scope="module")
def client_pair() -> tuple[bytes, bytes]:
    """A self-signed client certificate (EKU clientAuth) naming its holder by a SPIFFE URI SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
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
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://default/web")]), False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextlib.asynccontextmanager
async def serving(ctx: ssl.SSLContext, handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


class PongServer:
    """Answers every Ping with a Pong describing its payload; records what it saw."""

    def __init__(self) -> None:
        self.received: list[Msg] = []
        self.errors: list[RemoteProtocolError] = []
        self.peer_certs: list[dict[str, object] | None] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        codec = MessageCodec[Msg](Msg)
        self.peer_certs.append(writer.get_extra_info("peercert"))
        try:
            while data := await reader.read(65536):
                for msg in codec.feed(data):
                    self.received.append(msg)
                    assert isinstance(msg, Ping)
                    digest = hashlib.sha256(msg.payload).hexdigest()
                    writer.write(codec.encode(Pong(seq=msg.seq, size=len(msg.payload), digest=digest)))
                await writer.drain()
            codec.receive_eof()
        except RemoteProtocolError as exc:
            # A real protocol would send its close reason first; here the record is what matters.
            self.errors.append(exc)
        finally:
            await close(writer)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pings: list[Ping]
) -> list[Msg]:
    codec = MessageCodec[Msg](Msg)
    for ping in pings:
        writer.write(codec.encode(ping))
    await writer.drain()
    replies: list[Msg] = []
    while len(replies) < len(pings):
        data = await reader.read(65536)
        assert data, "server closed early"
        replies.extend(codec.feed(data))
    return replies


def pings() -> list[Ping]:
    # The 3 MiB payload spans hundreds of TLS records, so frames arrive split at arbitrary points.
    return [Ping(seq=1), Ping(seq=2, payload=b"k" * 100), Ping(seq=3, payload=bytes(range(256)) * 12_288)]


@pytest.mark.parametrize(
    ("connect_host", "server_hostname"), [("127.0.0.1", "localhost"), ("127.0.0.1", "127.0.0.1")]
)
async def test_verified_tls13_connection_carries_frames_both_ways(
    server_pair: tuple[bytes, bytes], connect_host: str, server_hostname: str
) -> None:
    cert, key = server_pair
    handler = PongServer()
    async with serving(server_context(cert, key), handler) as port:
        reader, writer = await asyncio.open_connection(
            connect_host, port, ssl=client_context(ca_pem=cert), server_hostname=server_hostname
        )
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            assert ssl_object.version() == "TLSv1.3"
            peer_der = ssl_object.getpeercert(binary_form=True)
            assert (
                hashlib.sha256(peer_der).hexdigest() == cert_fingerprint_sha256(cert).replace(":", "").lower()
            )
            sent = pings()
            replies = await exchange(reader, writer, sent)
        finally:
            await close(writer)
    assert replies == [
        Pong(seq=p.seq, size=len(p.payload), digest=hashlib.sha256(p.payload).hexdigest()) for p in sent
    ]
    assert handler.received == sent
    assert handler.errors == []


async def test_skip_verify_connects_to_an_unknown_certificate(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    async with serving(server_context(cert, key), PongServer()) as port:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(skip_verify=True), server_hostname="not-the-name.invalid"
        )
        try:
            assert await exchange(reader, writer, [Ping(seq=9, payload=b"x")]) == [
                Pong(seq=9, size=1, digest=hashlib.sha256(b"x").hexdigest())
            ]
        finally:
            await close(writer)


async def test_certificate_of_another_ca_is_refused(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    other_cert, _ = generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])
    handler = PongServer()
    async with serving(server_context(cert, key), handler) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(ca_pem=other_cert), server_hostname="localhost"
            )
    assert handler.received == []


async def test_wrong_hostname_is_refused(server_pair: tuple[bytes, bytes]) -> None:
    cert, key = server_pair
    async with serving(server_context(cert, key), PongServer()) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(ca_pem=cert), server_hostname="global.example.test"
            )


async def test_mutual_tls_server_sees_the_client_certificate(
    server_pair: tuple[bytes, bytes], client_pair: tuple[bytes, bytes]
) -> None:
    cert, key = server_pair
    client_cert, client_key = client_pair
    handler = PongServer()
    server_ctx = server_context(cert, key, client_ca_pem=client_cert, require_client_cert=True)
    async with serving(server_ctx, handler) as port:
        client_ctx = client_context(ca_pem=cert, client_cert_pem=client_cert, client_key_pem=client_key)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        try:
            assert len(await exchange(reader, writer, [Ping(seq=1)])) == 1
        finally:
            await close(writer)
    [peer] = handler.peer_certs
    assert peer is not None
    assert peer["subjectAltName"] == (("URI", "spiffe://default/web"),)


async def test_mutual_tls_client_without_a_certificate_is_never_served(
    server_pair: tuple[bytes, bytes], client_pair: tuple[bytes, bytes]
) -> None:
    cert, key = server_pair
    handler = PongServer()
    server_ctx = server_context(cert, key, client_ca_pem=client_pair[0], require_client_cert=True)
    async with serving(server_ctx, handler) as port:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca_pem=cert), server_hostname="localhost"
        )
        try:
            # TLS 1.3: the client's handshake ends before the server has checked for a client certificate,
            # so the refusal shows up on the first read, as an alert or as the connection closing.
            writer.write(MessageCodec[Msg](Msg).encode(Ping(seq=1)))
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                assert await reader.read() == b""
        finally:
            await close(writer)
    assert handler.peer_certs == []
    assert handler.received == []


async def test_oversized_frame_from_a_client_fails_the_server_side_decoder(
    server_pair: tuple[bytes, bytes],
) -> None:
    cert, key = server_pair
    handler = PongServer()
    async with serving(server_context(cert, key), handler) as port:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca_pem=cert), server_hostname="localhost"
        )
        try:
            # A declared 1 GiB frame: the server must refuse it on the prefix, not wait for the body.
            writer.write((1 << 30).to_bytes(4, "big"))
            await writer.drain()
            assert await reader.read() == b""
        finally:
            await close(writer)
    [error] = handler.errors
    assert error.code == "frame_too_large"
