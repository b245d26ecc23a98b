"""Loopback servers and small waits for the FaultProxy tests.

``serving()`` runs a server whose accepted connections are handed to the test (``await served.accept()``),
so each test decides when the server side reads and writes; ``echo=True`` echoes instead. ``until()``
polls a condition of the proxy's state; its timeout only turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

TIMEOUT_S = 20.0

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Served:
    port: int = 0
    conns: asyncio.Queue[Conn] = field(default_factory=asyncio.Queue)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def accept(self) -> Conn:
        return await asyncio.wait_for(self.conns.get(), TIMEOUT_S)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()


@contextlib.asynccontextmanager
async def serving(*, echo: bool = False) -> AsyncIterator[Served]:
    served = Served()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.writers.append(writer)
        if echo:
            task = asyncio.current_task()
            assert task is not None
            served.tasks.add(task)
            await _echo(reader, writer)
        else:
            served.conns.put_nowait((reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        await close_all(served.writers)
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in served.tasks if t is not current), return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def client(port: int) -> AsyncIterator[Conn]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
    try:
        yield reader, writer
    finally:
        await close_all([writer])


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything until EOF; a reset ends the stream too (what came before it is kept)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT_S):
            chunks.append(chunk)
    return b"".join(chunks)


async def ending(reader: asyncio.StreamReader) -> str:
    """How the stream ends when no more data comes: ``"eof"`` or ``"reset"``."""
    try:
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT_S)
    except ConnectionResetError:
        return "reset"
    assert data == b"", f"expected the end of the stream, got {data[:40]!r}"
    return "eof"


async def nothing_arrives(reader: asyncio.StreamReader, window_s: float = 0.2) -> None:
    """Assert that no byte arrives within ``window_s``: a check that cannot pass by accident when bytes
    do arrive, and never fails because a machine is slow."""
    try:
        data = await asyncio.wait_for(reader.read(1), window_s)
    except TimeoutError:
        return
    raise AssertionError(f"expected nothing, got {data!r}")


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
