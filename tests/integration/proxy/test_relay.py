"""The Protocol-pair relay (``kmesh.proxy._relay.RelayHalf``) over real loopback connections.

Topology: client -> [listener RelayHalf <-> upstream RelayHalf] -> upstream server, with TLS on either
side. Each test runs on stdlib asyncio and on uvloop (tests/integration/conftest.py). No assertion is on
time: waits poll a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kmesh.pki import generate_self_signed_server_cert
from kmesh.proxy._relay import RelayHalf
from kmesh.wire import client_context, server_context

NAME = "up.kmesh"
MIB = 1 << 20


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, bytes]:
    return generate_self_signed_server_cert([NAME, "localhost"], ["127.0.0.1"])


@pytest.fixture
def server_ctx(cert: tuple[bytes, bytes]) -> ssl.SSLContext:
    return server_context(*cert)


@pytest.fixture
def client_ctx(cert: tuple[bytes, bytes]) -> ssl.SSLContext:
    return client_context(ca_pem=cert[0])


async def until(cond: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait until ``cond()`` holds; the deadline only turns a hang into a failure."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():  # the conditions are counters, not events we could wait on
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached in {timeout_s:g}s")
        await asyncio.sleep(0.005)


class Upstream(asyncio.Protocol):
    """An upstream server: echoes (with flow control) unless ``echo`` is off; records what it got."""

    def __init__(self, owner: UpstreamServer) -> None:
        self.owner = owner
        self.received = bytearray()
        self.eof = asyncio.get_running_loop().create_future()
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.owner.conns.append(self)
        if self.owner.paused:
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        if self.owner.echo:
            self.transport.write(data)
        else:
            self.received += data

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return self.owner.keep_open_on_eof

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class UpstreamServer:
    def __init__(self, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.ssl = ssl_ctx
        self.conns: list[Upstream] = []
        self.echo = True
        self.paused = False
        self.keep_open_on_eof = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Upstream(self), "127.0.0.1", 0, ssl=self.ssl)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        for c in self.conns:
            if c.transport is not None:
                c.transport.abort()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Proxy:
    """A listener of RelayHalfs that connects each to the upstream and links the pair."""

    def __init__(
        self,
        up_port: int,
        *,
        up_ssl: ssl.SSLContext | None = None,
        down_ssl: ssl.SSLContext | None = None,
        gate: asyncio.Event | None = None,
        prefix: bytes = b"",
        **half_kwargs: Any,
    ) -> None:
        self.up_port = up_port
        self.up_ssl = up_ssl
        self.down_ssl = down_ssl
        self.gate = gate
        self.prefix = prefix
        self.half_kwargs = half_kwargs
        self.downs: list[RelayHalf] = []
        self.ups: list[RelayHalf] = []
        self.lost: list[RelayHalf] = []
        self.linked = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    def half(self, **extra: Any) -> RelayHalf:
        return RelayHalf(on_lost=self.lost.append, **self.half_kwargs, **extra)

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: self.half(on_made=self._on_made), "127.0.0.1", 0, ssl=self.down_ssl
        )
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def _on_made(self, down: RelayHalf) -> None:
        self.downs.append(down)
        task = asyncio.get_running_loop().create_task(self._connect(down))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, down: RelayHalf) -> None:
        loop = asyncio.get_running_loop()
        _, up = await loop.create_connection(
            self.half,
            "127.0.0.1",
            self.up_port,
            ssl=self.up_ssl,
            server_hostname=NAME if self.up_ssl is not None else None,
        )
        self.ups.append(up)
        if self.gate is not None:
            await self.gate.wait()
        up.write_first(self.prefix)
        down.link(up)
        self.linked.set()

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        for h in self.downs + self.ups:
            h.abort()
        for h in self.downs + self.ups:
            await h.closed
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Awaitable[tuple[UpstreamServer, Proxy, int]]]]:
    """``await make(up_tls=..., down_tls=..., **proxy_kwargs)`` -> (upstream, proxy, proxy port)."""
    made: list[tuple[UpstreamServer, Proxy]] = []

    async def _make(
        *, up_server_ctx: ssl.SSLContext | None = None, **kwargs: Any
    ) -> tuple[UpstreamServer, Proxy, int]:
        upstream = UpstreamServer(up_server_ctx)
        up_port = await upstream.start()
        proxy = Proxy(up_port, **kwargs)
        made.append((upstream, proxy))
        return upstream, proxy, await proxy.start()

    try:
        yield _make
    finally:
        for upstream, proxy in made:
            await proxy.close()
            await upstream.close()


@contextlib.asynccontextmanager
async def client(
    port: int, ssl_ctx: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl_ctx, server_hostname=NAME if ssl_ctx is not None else None
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> str:
    """Send ``data`` while reading as many bytes back; returns the SHA-256 of what came back."""

    async def send() -> None:
        view = memoryview(data)
        for off in range(0, len(data), MIB):
            writer.write(view[off : off + MIB])
            await writer.drain()

    async def receive() -> str:
        digest = hashlib.sha256()
        got = 0
        while got < len(data):
            chunk = await reader.read(MIB)
            assert chunk, f"EOF after {got} of {len(data)} bytes"
            digest.update(chunk)
            got += len(chunk)
        return digest.hexdigest()

    _, digest = await asyncio.gather(send(), receive())
    return digest


async def test_plaintext_32_mib_both_ways(make: Any) -> None:
    _, proxy, port = await make()
    data = random.Random(3).randbytes(32 * MIB)
    async with client(port) as (reader, writer):
        assert await exchange(reader, writer, data) == hashlib.sha256(data).hexdigest()
        down, up = proxy.downs[0], proxy.ups[0]
        assert (down.bytes_received, up.bytes_sent) == (32 * MIB, 32 * MIB)
        assert (up.bytes_received, down.bytes_sent) == (32 * MIB, 32 * MIB)
        assert down.peer is up
        assert up.peer is down


@pytest.mark.parametrize("side", ["tls-upstream", "tls-downstream", "tls-both"])
async def test_tls_on_either_side(
    make: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, side: str
) -> None:
    tls_up = side in ("tls-upstream", "tls-both")
    tls_down = side in ("tls-downstream", "tls-both")
    _, proxy, port = await make(
        up_server_ctx=server_ctx if tls_up else None,
        up_ssl=client_ctx if tls_up else None,
        down_ssl=server_ctx if tls_down else None,
    )
    data = random.Random(4).randbytes(8 * MIB + 1)
    async with client(port, client_ctx if tls_down else None) as (reader, writer):
        assert await exchange(reader, writer, data) == hashlib.sha256(data).hexdigest()
        down, up = proxy.downs[0], proxy.ups[0]
        assert down.bytes_received == up.bytes_sent == len(data)
        assert up.bytes_received == down.bytes_sent == len(data)


async def test_back_pressure_pauses_the_other_side(make: Any) -> None:
    upstream, proxy, port = await make(high_water=64 * 1024, low_water=16 * 1024)
    upstream.echo = False
    upstream.paused = True  # a reader that does not read
    # More than every socket buffer on the way can hold (loopback autotuning lets the four of them grow to
    # ~20 MiB together), so the relay must end up holding the rest back.
    data = random.Random(5).randbytes(64 * MIB)
    async with client(port) as (_, writer):
        writer.write(data)
        await proxy.linked.wait()
        down, up = proxy.downs[0], proxy.ups[0]
        await until(lambda: up.write_pauses > 0)
        # While the kernel's socket buffers still grow, the upstream's write buffer may drain and refill;
        # once they are full the steady state is: reading paused.
        await until(lambda: down.reading_paused)
        assert down.transport is not None
        assert not down.transport.is_reading()
        # The upstream starts reading: everything arrives, so reading resumed.
        await until(lambda: len(upstream.conns) == 1)
        upstream.conns[0].transport.resume_reading()
        await writer.drain()
        await until(lambda: len(upstream.conns[0].received) == len(data))
        assert bytes(upstream.conns[0].received) == data
        assert not down.reading_paused
        assert down.transport.is_reading()


async def test_data_before_link_is_buffered_then_flushed(make: Any) -> None:
    gate = asyncio.Event()
    _, proxy, port = await make(gate=gate, prefix=b"PREFIX:", max_pending_bytes=64 * 1024)
    data = random.Random(6).randbytes(1 * MIB)
    async with client(port) as (reader, writer):
        writer.write(data)
        await until(lambda: len(proxy.downs) == 1 and proxy.downs[0].bytes_received > 64 * 1024)
        down = proxy.downs[0]
        assert down.reading_paused  # too much pending: stopped reading before link
        assert down.transport is not None
        assert not down.transport.is_reading()
        gate.set()
        await writer.drain()
        echoed = await reader.readexactly(7 + len(data))
        assert echoed == b"PREFIX:" + data
        assert proxy.ups[0].bytes_sent == 7 + len(data)


async def test_eof_is_forwarded_and_half_open_works(make: Any) -> None:
    upstream, proxy, port = await make()
    upstream.echo = False
    upstream.keep_open_on_eof = True
    async with client(port) as (reader, writer):
        writer.write(b"request")
        writer.write_eof()
        await until(lambda: len(upstream.conns) == 1)
        conn = upstream.conns[0]
        await conn.eof  # the client's EOF reached the upstream...
        assert bytes(conn.received) == b"request"
        assert not proxy.lost  # ...and the pair is still open for the other direction
        conn.transport.write(b"response after EOF")
        conn.transport.write_eof()
        assert await reader.read() == b"response after EOF"
        await until(lambda: len(proxy.lost) == 2)  # both directions ended: the pair closed
        down, up = proxy.downs[0], proxy.ups[0]
        assert (down.bytes_received, up.bytes_sent, up.bytes_received, down.bytes_sent) == (7, 7, 18, 18)
        assert down.closed.done()
        assert up.closed.done()


async def test_eof_towards_tls_closes_after_flush(
    make: Any, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    upstream, proxy, port = await make(up_server_ctx=server_ctx, up_ssl=client_ctx)
    upstream.echo = False
    data = random.Random(8).randbytes(4 * MIB)
    async with client(port) as (reader, writer):
        writer.write(data)
        writer.write_eof()  # TLS cannot half-close: the relay flushes, then closes both
        assert await reader.read() == b""
        await until(lambda: len(proxy.lost) == 2)
        await until(lambda: len(upstream.conns) == 1)
        await upstream.conns[0].eof
        assert bytes(upstream.conns[0].received) == data


async def test_closing_one_side_closes_the_other(make: Any) -> None:
    upstream, proxy, port = await make()
    async with client(port) as (reader, writer):
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        upstream.conns[0].transport.close()  # the upstream hangs up
        assert await reader.read() == b""  # forwarded as an EOF: plain TCP stays half-open...
        assert not proxy.lost
    await until(lambda: len(proxy.lost) == 2)  # ...until the client's side ends too
    lost = set(map(id, proxy.lost))
    assert lost == {id(proxy.downs[0]), id(proxy.ups[0])}


async def test_close_from_the_proxy_closes_both(make: Any) -> None:
    _, proxy, port = await make()
    async with client(port) as (reader, writer):
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        proxy.ups[0].close()
        assert await reader.read() == b""
        await proxy.downs[0].closed
        await proxy.ups[0].closed


async def test_upstream_reset_resets_the_client(make: Any) -> None:
    upstream, proxy, port = await make()
    async with client(port) as (reader, writer):
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        conn = upstream.conns[0]
        sock = conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.transport.abort()  # RST
        with pytest.raises(ConnectionResetError):
            await reader.read()
        await until(lambda: len(proxy.lost) == 2)


async def test_idle_timeout_closes_an_idle_pair(make: Any) -> None:
    _, proxy, port = await make(idle_timeout_s=0.05)
    async with client(port) as (reader, writer):
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert await reader.read() == b""  # nothing moves: the relay closes the pair
        await until(lambda: len(proxy.lost) == 2)
        assert proxy.downs[0].timed_out
        assert proxy.ups[0].timed_out


async def test_link_rules() -> None:
    a, b = RelayHalf(), RelayHalf()
    with pytest.raises(RuntimeError, match="connected"):
        a.link(b)
    with pytest.raises(RuntimeError, match="itself"):
        a.link(a)
    with pytest.raises(ValueError, match="idle_timeout_s"):
        RelayHalf(idle_timeout_s=0)
