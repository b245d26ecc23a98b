"""The asyncio adapter over real TLS: an owner that falls behind stops the reading (bounded event queue)
and everything arrives once it catches up; a peer that never says hello is closed at the handshake
deadline with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from kmesh.kds import (
    Close,
    ConnectionClosed,
    Heartbeat,
    HeartbeatReceived,
    Hello,
    HelloReceived,
    KdsConnection,
    KdsMessage,
    Role,
    Welcome,
)
from kmesh.wire import MessageCodec

from .support import Tls, until

MAX_EVENTS = 8


@dataclass
class Accepting:
    """A listener whose accepted KdsConnections (global side) are handed to the test, which plays owner."""

    port: int
    conns: asyncio.Queue[KdsConnection]

    async def dial(self, tls: Tls) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, KdsConnection]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=tls.client, server_hostname="localhost"
        )
        return reader, writer, await asyncio.wait_for(self.conns.get(), 60)


@pytest.fixture
async def accepting(tls: Tls) -> AsyncIterator[Accepting]:
    conns: asyncio.Queue[KdsConnection] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: KdsConnection(
            Role.GLOBAL, max_queued_events=MAX_EVENTS, handshake_timeout_s=0.2, on_made=conns.put_nowait
        ),
        "127.0.0.1",
        0,
        ssl=tls.server,
    )
    try:
        yield Accepting(server.sockets[0].getsockname()[1], conns)
    finally:
        server.close()
        await server.wait_closed()


async def test_an_owner_that_falls_behind_pauses_reading_and_loses_nothing(
    tls: Tls, accepting: Accepting
) -> None:
    reader, writer, conn = await accepting.dial(tls)
    codec = MessageCodec[KdsMessage](KdsMessage)
    writer.write(codec.encode(Hello(zone="zone-a")))
    assert isinstance(await conn.next_event(), HelloReceived)
    conn.session.accept(Welcome())
    conn.flush()
    beats = 20_000
    # Many small frames in one burst: far more events than the queue may hold.
    writer.write(b"".join(codec.encode(Heartbeat(sent_at=float(i))) for i in range(beats)))
    writer.write(codec.encode(Close(reason="done")))
    await until(lambda: conn.reading_paused, "reading paused while the owner does not take events")
    # What was queued is what the reads before the pause produced, not the whole burst.
    assert conn.queued_events < beats // 4
    received = 0
    while True:
        event = await asyncio.wait_for(conn.next_event(), 60)
        if isinstance(event, HeartbeatReceived):
            assert event.sent_at == received
            received += 1
        elif isinstance(event, ConnectionClosed):
            break
    assert received == beats
    assert (event.code, event.reason, event.by_peer) == ("normal", "done", True)
    writer.close()
    await reader.read()


async def test_a_peer_that_never_says_hello_is_closed_with_the_reason(tls: Tls, accepting: Accepting) -> None:
    reader, writer, conn = await accepting.dial(tls)
    closed = await asyncio.wait_for(conn.next_event(), 60)
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "handshake_timeout"
    codec = MessageCodec[KdsMessage](KdsMessage)
    messages = codec.feed(await asyncio.wait_for(reader.read(), 60))
    assert messages == [Close(code="handshake_timeout", reason=closed.reason)]
    await conn.wait_closed()
    writer.close()
