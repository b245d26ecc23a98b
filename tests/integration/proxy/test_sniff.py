"""RawAcceptor and peek_client_hello against real TLS clients on loopback, on stdlib asyncio and uvloop.

The proof that the ClientHello is not consumed: after the peek, the same socket completes a TLS handshake
through ``loop.connect_accepted_socket(..., ssl=..., server_side=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator

import pytest

from kmesh._fastpath.sni import SniResult, SniStatus, parse_client_hello
from kmesh.pki import generate_self_signed_server_cert
from kmesh.proxy import _sniff
from kmesh.proxy._sniff import RawAcceptor, SniffTimeout, peek_client_hello
from kmesh.wire import client_context, server_context

NAME = "x.y.kmesh"


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, bytes]:
    return generate_self_signed_server_cert([NAME, "localhost"], ["127.0.0.1"])


@pytest.fixture
def server_ctx(cert: tuple[bytes, bytes]) -> ssl.SSLContext:
    return server_context(*cert)


@pytest.fixture
def client_ctx(cert: tuple[bytes, bytes]) -> ssl.SSLContext:
    return client_context(ca_pem=cert[0])


class Accepted:
    """A RawAcceptor whose accepted sockets land in a queue; every one is closed at the end."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[socket.socket] = asyncio.Queue()
        self.socks: list[socket.socket] = []
        self.acceptor = RawAcceptor("127.0.0.1", 0, self._on_accept)

    def _on_accept(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        assert addr[0] == "127.0.0.1"
        self.socks.append(sock)
        self.queue.put_nowait(sock)

    async def next(self) -> socket.socket:
        return await self.queue.get()


@pytest.fixture
async def accepted() -> AsyncIterator[Accepted]:
    acc = Accepted()
    await acc.acceptor.start()
    try:
        yield acc
    finally:
        acc.acceptor.close()
        for s in acc.socks:
            s.close()


@contextlib.contextmanager
def raw_client(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def client_hello(client_ctx: ssl.SSLContext, name: str = NAME) -> bytes:
    """The bytes of the first flight of a real TLS client: one ClientHello record."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def split_records(hello: bytes, size: int) -> bytes:
    """Re-frame a one-record ClientHello into records of at most ``size`` bytes of handshake data."""
    header, body = hello[:5], hello[5:]
    assert len(body) == int.from_bytes(header[3:5], "big")
    out = bytearray()
    for off in range(0, len(body), size):
        frag = body[off : off + size]
        out += header[:3] + len(frag).to_bytes(2, "big") + frag
    return bytes(out)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def test_tls_client_found_then_handshake_on_the_same_socket(
    accepted: Accepted, client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext
) -> None:
    loop = asyncio.get_running_loop()
    connecting = asyncio.create_task(
        asyncio.open_connection("127.0.0.1", accepted.acceptor.port, ssl=client_ctx, server_hostname=NAME)
    )
    sock = await accepted.next()
    result = await peek_client_hello(sock)
    assert result.status is SniStatus.FOUND
    assert result.server_name == NAME
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
    transport, _ = await loop.connect_accepted_socket(Echo, sock, ssl=server_ctx)
    accepted.socks.remove(sock)  # the transport owns it now
    reader, writer = await connecting
    try:
        writer.write(b"hello through TLS")
        assert await reader.readexactly(17) == b"hello through TLS"
    finally:
        writer.close()
        transport.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_plain_text_is_not_tls(accepted: Accepted) -> None:
    loop = asyncio.get_running_loop()
    with raw_client(accepted.acceptor.port) as client:
        await loop.sock_sendall(client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock = await accepted.next()
        result = await peek_client_hello(sock)
        assert result.status is SniStatus.NOT_TLS
        # Nothing was consumed.
        assert sock.recv(100) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_silent_client_times_out(accepted: Accepted) -> None:
    with raw_client(accepted.acceptor.port):
        sock = await accepted.next()
        with pytest.raises(SniffTimeout) as info:
            await peek_client_hello(sock, timeout_s=0.05)
        assert isinstance(info.value, TimeoutError)


async def test_partial_header_then_timeout_resets_lowat(
    accepted: Accepted, client_ctx: ssl.SSLContext
) -> None:
    loop = asyncio.get_running_loop()
    with raw_client(accepted.acceptor.port) as client:
        await loop.sock_sendall(client, client_hello(client_ctx)[:40])
        sock = await accepted.next()
        with pytest.raises(SniffTimeout):
            await peek_client_hello(sock, timeout_s=0.05)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
        assert len(sock.recv(100)) == 40


@pytest.mark.parametrize("rcvlowat", [True, False], ids=["rcvlowat", "backoff"])
@pytest.mark.parametrize("record_size", [None, 100], ids=["one-record", "many-records"])
async def test_hello_in_three_pieces(
    accepted: Accepted,
    client_ctx: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
    rcvlowat: bool,
    record_size: int | None,
) -> None:
    monkeypatch.setattr(_sniff, "USE_RCVLOWAT", rcvlowat)
    parses: list[int] = []

    def counting_parse(data: bytes, max_bytes: int) -> SniResult:
        parses.append(len(data))
        return parse_client_hello(data, max_bytes=max_bytes)

    monkeypatch.setattr(_sniff, "parse_client_hello", counting_parse)
    loop = asyncio.get_running_loop()
    hello = client_hello(client_ctx)
    if record_size is not None:
        hello = split_records(hello, record_size)
    cuts = [3, len(hello) // 2, len(hello)]
    with raw_client(accepted.acceptor.port) as client:
        sock = await accepted.next()
        peek = asyncio.create_task(peek_client_hello(sock))
        start = 0
        for cut in cuts:
            await asyncio.sleep(0.02)
            assert not peek.done()
            await loop.sock_sendall(client, hello[start:cut])
            start = cut
        result = await peek
        assert result.status is SniStatus.FOUND
        assert result.server_name == NAME
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
        assert sock.recv(len(hello) + 10) == hello
    if rcvlowat:
        # Woken only when a new piece completed what was asked for: no spinning on unread bytes.
        assert len(parses) <= len(cuts)
        assert parses == sorted(set(parses))


async def test_hello_larger_than_max_bytes(accepted: Accepted, client_ctx: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    hello = client_hello(client_ctx)
    with raw_client(accepted.acceptor.port) as client:
        await loop.sock_sendall(client, hello)
        sock = await accepted.next()
        result = await peek_client_hello(sock, max_bytes=len(hello) - 1)
        assert result.status is SniStatus.TOO_LARGE


async def test_hello_split_into_records_too_large_before_all_arrived(
    accepted: Accepted, client_ctx: ssl.SSLContext
) -> None:
    """The record and handshake headers already show the hello cannot fit: no waiting for the rest."""
    loop = asyncio.get_running_loop()
    hello = split_records(client_hello(client_ctx), 50)
    assert len(hello) > 250
    with raw_client(accepted.acceptor.port) as client:
        await loop.sock_sendall(client, hello[:100])
        sock = await accepted.next()
        assert (await peek_client_hello(sock, max_bytes=250)).status is SniStatus.TOO_LARGE


async def test_peer_closes_mid_hello(accepted: Accepted, client_ctx: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    with raw_client(accepted.acceptor.port) as client:
        sock = await accepted.next()
        peek = asyncio.create_task(peek_client_hello(sock))
        await loop.sock_sendall(client, client_hello(client_ctx)[:100])
        await asyncio.sleep(0.02)
        client.shutdown(socket.SHUT_WR)
        assert (await peek).status is SniStatus.NOT_TLS


async def test_peer_closes_without_sending(accepted: Accepted) -> None:
    with raw_client(accepted.acceptor.port) as client:
        client.shutdown(socket.SHUT_WR)
        sock = await accepted.next()
        assert (await peek_client_hello(sock)).status is SniStatus.NOT_TLS


async def test_no_sni(accepted: Accepted, client_ctx: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx.wrap_bio(incoming, outgoing, server_hostname=None)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    with raw_client(accepted.acceptor.port) as client:
        await loop.sock_sendall(client, outgoing.read())
        sock = await accepted.next()
        assert (await peek_client_hello(sock)).status is SniStatus.NO_SNI


async def test_accepts_many_connections(accepted: Accepted) -> None:
    clients = [socket.create_connection(("127.0.0.1", accepted.acceptor.port)) for _ in range(20)]
    try:
        got = [await accepted.next() for _ in clients]
        assert len({s.getpeername() for s in got}) == 20
        assert all(s.getblocking() is False for s in got)
    finally:
        for c in clients:
            c.close()


async def test_bind_failure_is_a_clear_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        acceptor = RawAcceptor("127.0.0.1", port, lambda s, a: s.close())
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await acceptor.start()
        acceptor.close()


async def test_close_stops_accepting() -> None:
    acceptor = RawAcceptor("127.0.0.1", 0, lambda s, a: s.close())
    await acceptor.start()
    port = acceptor.port
    acceptor.close()
    acceptor.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()
