"""FaultProxy as a plain proxy: bytes pass unchanged, half-closes pass, back-pressure bounds its memory,
delays and bandwidth limits keep order. Every test runs on asyncio and on uvloop.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from kmesh.testing.faultproxy import FaultProxy

from .support import TIMEOUT_S, client, read_to_end, serving, until

MIB = 1024 * 1024
# Per direction the proxy holds at most two high-water marks (64 KiB) plus two reads (256 KiB): 640 KiB.
BUFFER_BOUND = 1 * MIB
# Far more than the proxy may hold, and more than loopback socket buffers absorb along the way.
FLOOD = 48 * MIB


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


async def test_bytes_pass_unchanged_both_ways() -> None:
    data = payload(8 * MIB)
    async with serving(echo=True) as served, FaultProxy("127.0.0.1", served.port) as proxy:
        async with client(proxy.port) as (reader, writer):

            async def send() -> None:
                writer.write(data)
                await writer.drain()
                writer.write_eof()

            sender = asyncio.create_task(send())
            echoed = await read_to_end(reader)
            await sender
        assert echoed == data
        await until(lambda: proxy.stats().connections_live == 0, "the connection to close")
        stats = proxy.stats()
        assert stats.connections_accepted == 1
        assert stats.bytes_upstream == len(data)
        assert stats.bytes_downstream == len(data)
        assert stats.peak_buffered_bytes <= BUFFER_BOUND
        assert stats.cuts == stats.drops == stats.failed_dials == 0


async def test_a_half_close_passes_through() -> None:
    async with (
        serving() as served,
        FaultProxy("127.0.0.1", served.port) as proxy,
        client(proxy.port) as (reader, writer),
    ):
        s_reader, s_writer = await served.accept()
        writer.write(b"request")
        writer.write_eof()
        assert await read_to_end(s_reader) == b"request"
        # The other direction is still open after the client's EOF.
        s_writer.write(b"answer")
        s_writer.write_eof()
        assert await read_to_end(reader) == b"answer"


@pytest.mark.parametrize("slow_side", ["server", "client"])
async def test_a_slow_reader_does_not_make_the_proxy_buffer(slow_side: str) -> None:
    data = payload(FLOOD)
    async with (
        serving() as served,
        FaultProxy("127.0.0.1", served.port) as proxy,
        client(proxy.port) as (c_reader, c_writer),
    ):
        s_reader, s_writer = await served.accept()
        if slow_side == "server":
            sender, receiver = c_writer, s_reader
        else:
            sender, receiver = s_writer, c_reader
        # Write it all at once and read nothing: the sender's own transport keeps what cannot go.
        sender.write(data)

        def stalled_or_overfull() -> bool:
            stats = proxy.stats()
            if stats.buffered_bytes > BUFFER_BOUND:
                return True  # fails just below: the proxy kept reading what it could not pass on
            return stats.paused_reads > 0 and sender.transport.get_write_buffer_size() > 0

        await until(stalled_or_overfull, "the proxy to stop reading from the sender")
        stats = proxy.stats()
        assert stats.buffered_bytes <= BUFFER_BOUND
        forwarded = stats.bytes_upstream if slow_side == "server" else stats.bytes_downstream
        assert forwarded < len(data)
        # Now the reader catches up, and everything arrives intact.
        received = await asyncio.wait_for(receiver.readexactly(len(data)), TIMEOUT_S)
        assert received == data
        assert proxy.stats().peak_buffered_bytes <= BUFFER_BOUND


async def test_delayed_chunks_keep_their_order_when_the_delay_changes() -> None:
    async with (
        serving() as served,
        FaultProxy("127.0.0.1", served.port) as proxy,
        client(proxy.port) as (reader, writer),
    ):
        s_reader, s_writer = await served.accept()
        proxy.set_delay(0.3)
        first = b"".join(b"early-%02d\n" % i for i in range(10))
        writer.write(first)
        # Once the proxy holds the first batch, a shorter delay must not let the second overtake it.
        await until(lambda: proxy.stats().buffered_bytes == len(first), "the first batch to be held")
        proxy.set_delay(0)
        second = b"".join(b"late-%02d\n" % i for i in range(10))
        writer.write(second)
        assert await asyncio.wait_for(s_reader.readexactly(len(first) + len(second)), TIMEOUT_S) == (
            first + second
        )
        proxy.set_delay(0.05)
        lines = [b"reply-%02d\n" % i for i in range(20)]
        for line in lines:
            s_writer.write(line)
        assert await asyncio.wait_for(reader.readexactly(sum(map(len, lines))), TIMEOUT_S) == b"".join(lines)


async def test_a_bandwidth_limit_delivers_everything_in_order() -> None:
    data = payload(96 * 1024, seed=3)
    async with serving(echo=True) as served, FaultProxy("127.0.0.1", served.port) as proxy:
        proxy.set_bandwidth(2 * MIB)
        async with client(proxy.port) as (reader, writer):
            writer.write(data)
            writer.write_eof()
            assert await read_to_end(reader) == data
        proxy.set_bandwidth(None)
        async with client(proxy.port) as (reader, writer):
            writer.write(b"unthrottled")
            writer.write_eof()
            assert await read_to_end(reader) == b"unthrottled"


@pytest.mark.parametrize(
    ("control", "value"),
    [("set_delay", -1.0), ("set_delay", float("nan")), ("set_bandwidth", 0), ("drop_after", -1)],
)
async def test_controls_refuse_nonsense(control: str, value: float) -> None:
    proxy = FaultProxy("127.0.0.1", 9)
    with pytest.raises(ValueError):
        getattr(proxy, control)(value)


async def test_start_and_stop_are_checked() -> None:
    async with serving() as served:
        proxy = FaultProxy("127.0.0.1", served.port)
        with pytest.raises(RuntimeError, match="not started"):
            _ = proxy.port
        await proxy.start()
        try:
            with pytest.raises(RuntimeError, match="already started"):
                await proxy.start()
        finally:
            await proxy.stop()
        await proxy.stop()  # idempotent
        with pytest.raises(RuntimeError, match="not started"):
            _ = proxy.port
