"""The passthrough relay (``kmesh._fastpath.splice``) over real loopback sockets, on both of its paths.

Each test runs with splice(2) and with the copying fallback (``use_splice``), on stdlib asyncio and on
uvloop (tests/integration/conftest.py). Topology: client <-> [a  relay_sockets  b] <-> server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from kmesh._fastpath import _splice_py, splice
from kmesh._fastpath._splice_py import relay_sockets as relay_sockets_py

MIB = 1 << 20


@pytest.fixture(params=["splice", "copy"])
def use_splice(request: pytest.FixtureRequest) -> bool:
    # kmesh's supported platform is Linux, where os.splice exists: its absence there is a failure, not a skip.
    if request.param == "splice" and sys.platform.startswith("linux"):
        assert splice.SPLICE, (
            "os.splice is missing on Linux: the passthrough relay would fall back to copying"
        )
    elif request.param == "splice":
        pytest.fail("splice(2) is Linux-only; run this suite on Linux")
    return bool(request.param == "splice")


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection, non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        client = socket.create_connection(srv.getsockname())
        server, _ = srv.accept()
    for s in (client, server):
        s.setblocking(False)
    return client, server


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket, socket.socket, socket.socket]]:
    """``(client, a, b, server)``: client<->a and b<->server are connections; a and b go to the relay."""
    client, a = tcp_pair()
    b, server = tcp_pair()
    try:
        yield client, a, b, server
    finally:
        for s in (client, a, b, server):
            s.close()


async def send_all(sock: socket.socket, data: bytes, *, shut: bool = True) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    for off in range(0, len(data), MIB):
        await loop.sock_sendall(sock, view[off : off + MIB])
    if shut:
        sock.shutdown(socket.SHUT_WR)


async def read_to_eof(sock: socket.socket) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    buf = bytearray(256 * 1024)
    digest = hashlib.sha256()
    total = 0
    while True:
        n = await loop.sock_recv_into(sock, buf)
        if n == 0:
            return total, digest.hexdigest()
        digest.update(memoryview(buf)[:n])
        total += n


def test_selector_uses_the_reference() -> None:
    assert splice.COMPILED is False
    assert splice.relay_sockets is relay_sockets_py
    assert splice.SPLICE is hasattr(__import__("os"), "splice")


async def test_moves_64_mib_both_ways_unchanged(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    client, a, b, server = sockets
    rng = random.Random(7)
    up = rng.randbytes(64 * MIB)
    down = rng.randbytes(64 * MIB)
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice))
    _, _, (n_up, h_up), (n_down, h_down) = await asyncio.gather(
        send_all(client, up), send_all(server, down), read_to_eof(server), read_to_eof(client)
    )
    assert (n_up, h_up) == (len(up), hashlib.sha256(up).hexdigest())
    assert (n_down, h_down) == (len(down), hashlib.sha256(down).hexdigest())
    assert await relay == (64 * MIB, 64 * MIB)
    assert a.fileno() == -1
    assert b.fileno() == -1


async def test_small_chunks_and_default_pipe(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    """A chunk smaller than what is queued: several rounds per wakeup path, back-pressure included."""
    client, a, b, server = sockets
    data = random.Random(1).randbytes(3 * MIB + 17)
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice, chunk_bytes=4096))
    _, (n, h) = await asyncio.gather(send_all(client, data), read_to_eof(server))
    assert (n, h) == (len(data), hashlib.sha256(data).hexdigest())
    server.shutdown(socket.SHUT_WR)
    assert await read_to_eof(client) == (0, hashlib.sha256().hexdigest())
    assert await relay == (len(data), 0)


async def test_half_close_propagates(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    client, a, b, server = sockets
    loop = asyncio.get_running_loop()
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice))
    await loop.sock_sendall(client, b"request")
    client.shutdown(socket.SHUT_WR)
    # The server sees the request, then EOF, while its own direction stays open.
    assert await read_to_eof(server) == (7, hashlib.sha256(b"request").hexdigest())
    assert not relay.done()
    await loop.sock_sendall(server, b"response after the client's EOF")
    server.shutdown(socket.SHUT_WR)
    n, h = await read_to_eof(client)
    assert h == hashlib.sha256(b"response after the client's EOF").hexdigest()
    assert await relay == (7, n)


async def test_peer_reset_ends_the_relay_and_resets_the_other_side(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    client, a, b, server = sockets
    loop = asyncio.get_running_loop()
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice))
    await loop.sock_sendall(client, b"x" * 1000)
    got = 0
    while got < 1000:
        got += len(await loop.sock_recv(server, 4096))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # RST
    assert await relay == (1000, 0)
    assert a.fileno() == -1
    assert b.fileno() == -1

    async def drain() -> None:
        while await loop.sock_recv(server, 4096):
            pass

    with pytest.raises(ConnectionResetError):
        await drain()


async def test_idle_timeout_closes_both(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    client, a, b, server = sockets
    loop = asyncio.get_running_loop()
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice, idle_timeout_s=0.05))
    await loop.sock_sendall(client, b"ping")
    assert await loop.sock_recv(server, 16) == b"ping"
    assert await relay == (4, 0)
    assert await loop.sock_recv(server, 16) == b""
    assert await loop.sock_recv(client, 16) == b""


async def test_cancel_closes_everything(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], use_splice: bool
) -> None:
    client, a, b, server = sockets
    loop = asyncio.get_running_loop()
    relay = asyncio.create_task(splice.relay_sockets(a, b, use_splice=use_splice))
    await loop.sock_sendall(client, b"ping")
    assert await loop.sock_recv(server, 16) == b"ping"
    relay.cancel()
    with pytest.raises(asyncio.CancelledError):
        await relay
    assert a.fileno() == -1
    assert b.fileno() == -1
    assert await loop.sock_recv(server, 16) == b""


async def test_bad_arguments_close_the_sockets(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket],
) -> None:
    _, a, b, _ = sockets
    with pytest.raises(ValueError, match="chunk_bytes"):
        await splice.relay_sockets(a, b, chunk_bytes=0)
    assert a.fileno() == -1
    assert b.fileno() == -1


@pytest.fixture
def empty_pipe_pool() -> Iterator[None]:
    """Start and end with no pooled pipes, so that the pool tests see only their own relays' pipes."""
    _splice_py._close_pooled_pipes()
    try:
        yield
    finally:
        _splice_py._close_pooled_pipes()


def pooled(chunk: int = 1 << 20) -> list[tuple[int, int]]:
    return list(_splice_py._pipe_pool.get(chunk, []))


async def exchange(
    sockets: tuple[socket.socket, socket.socket, socket.socket, socket.socket], payload: bytes
) -> tuple[int, int]:
    """One request and one response through a relay, both sides ending cleanly; the relay's counts."""
    client, a, b, server = sockets
    loop = asyncio.get_running_loop()
    relay = asyncio.create_task(relay_sockets_py(a, b, use_splice=True))
    await send_all(client, payload)
    assert await read_to_eof(server) == (len(payload), hashlib.sha256(payload).hexdigest())
    await send_all(server, payload[::-1])
    assert await read_to_eof(client) == (len(payload), hashlib.sha256(payload[::-1]).hexdigest())
    assert await loop.sock_recv(client, 1) == b""
    return await relay


@pytest.mark.skipif(not splice.SPLICE, reason="os.splice is not available here")
@pytest.mark.usefixtures("empty_pipe_pool")
async def test_clean_end_pools_the_empty_pipes_and_the_next_relay_reuses_them() -> None:
    data = random.Random(3).randbytes(3 * MIB + 5)
    for round_ in range(3):
        client, a = tcp_pair()
        b, server = tcp_pair()
        try:
            before = pooled()
            assert await exchange((client, a, b, server), data) == (len(data), len(data))
            after = pooled()
            # Two pipes per relay, taken from the pool when it has them: the pool never grows past two.
            assert len(after) == 2
            if round_:
                assert sorted(after) == sorted(before)
            for r, w in after:
                assert os.get_blocking(r) is False
                assert os.get_blocking(w) is False
                with pytest.raises(BlockingIOError):
                    os.read(r, 1)  # empty: nothing of the previous connection is left in it
        finally:
            for s in (client, a, b, server):
                s.close()


@pytest.mark.skipif(not splice.SPLICE, reason="os.splice is not available here")
@pytest.mark.usefixtures("empty_pipe_pool")
async def test_a_reset_or_a_cancel_closes_the_pipes_instead_of_pooling_them() -> None:
    loop = asyncio.get_running_loop()
    client, a = tcp_pair()
    b, server = tcp_pair()
    try:
        relay = asyncio.create_task(relay_sockets_py(a, b, use_splice=True))
        await loop.sock_sendall(client, b"x" * 100)
        assert len(await loop.sock_recv(server, 4096)) == 100
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST
        assert await relay == (100, 0)
        assert pooled() == []
    finally:
        for s in (client, a, b, server):
            s.close()
    client, a = tcp_pair()
    b, server = tcp_pair()
    try:
        relay = asyncio.create_task(relay_sockets_py(a, b, use_splice=True))
        await loop.sock_sendall(client, b"ping")
        assert await loop.sock_recv(server, 16) == b"ping"
        relay.cancel()
        with pytest.raises(asyncio.CancelledError):
            await relay
        assert pooled() == []
    finally:
        for s in (client, a, b, server):
            s.close()


@pytest.mark.skipif(not splice.SPLICE, reason="os.splice is not available here")
@pytest.mark.usefixtures("empty_pipe_pool")
async def test_the_pool_is_bounded_and_keyed_by_chunk_size() -> None:
    pipes = [_splice_py._take_pipe(4096) for _ in range(_splice_py.PIPE_POOL_MAX + 3)]
    kept = pipes[: _splice_py.PIPE_POOL_MAX]
    for r, w in pipes:
        _splice_py._give_pipe(4096, r, w)
    assert pooled(4096) == kept
    assert pooled() == []
    for r, w in pipes[_splice_py.PIPE_POOL_MAX :]:  # closed, not leaked
        with pytest.raises(OSError):
            os.fstat(r)
        with pytest.raises(OSError):
            os.fstat(w)
    assert _splice_py._take_pipe(4096) == kept[-1]
    _splice_py._give_pipe(4096, *kept[-1])


@pytest.mark.skipif(not splice.SPLICE, reason="os.splice is not available here")
@pytest.mark.usefixtures("empty_pipe_pool")
def test_a_forked_child_does_not_share_the_pooled_pipes() -> None:
    r, w = _splice_py._take_pipe(1 << 20)
    _splice_py._give_pipe(1 << 20, r, w)
    pid = os.fork()
    if pid == 0:  # the child: its copies are closed and its pool is empty
        ok = not _splice_py._pipe_pool and all(_closed(fd) for fd in (r, w))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pooled() == [(r, w)]  # the parent keeps its own


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False
