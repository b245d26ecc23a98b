"""FaultProxy's faults: cut, block and unblock, drop after n bytes, an unreachable target, and stop().

Every test runs on asyncio and on uvloop. Absence of data is checked over a short window, which can only
pass wrongly if the proxy is broken and slow at once; nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kmesh.testing import free_port
from kmesh.testing.faultproxy import FaultProxy

from .support import TIMEOUT_S, Conn, client, ending, nothing_arrives, read_to_end, serving, until

REQUEST = b"hello\n"
RESPONSE = b"world\n"


async def roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    writer.write(data)
    return await asyncio.wait_for(reader.readexactly(len(data)), TIMEOUT_S)


async def test_cut_resets_every_live_connection() -> None:
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        async with client(proxy.port) as (r1, _w1), client(proxy.port) as (r2, _w2):
            s1, s2 = await served.accept(), await served.accept()
            s1[1].write(b"one")
            assert await r1.readexactly(3) == b"one"
            assert proxy.cut() == 2
            # SO_LINGER 0: both ends of both connections see a reset, not a clean EOF.
            assert [await ending(r) for r in (r1, r2, s1[0], s2[0])] == ["reset"] * 4
            await until(lambda: proxy.stats().connections_live == 0, "the cut connections to close")
            assert proxy.stats().cuts == 2
        # The proxy itself keeps working.
        async with client(proxy.port) as (_reader, writer):
            s_reader, s_writer = await served.accept()
            assert await roundtrip(s_reader, writer, b"again") == b"again"
            s_writer.close()
        # Closed from both ends: nothing is left to cut.
        await until(lambda: proxy.stats().connections_live == 0, "the closed connection to go")
        assert proxy.cut() == 0


async def test_block_holds_data_both_ways_until_unblock() -> None:
    async with (
        serving() as served,
        FaultProxy("127.0.0.1", served.port) as proxy,
        client(proxy.port) as (reader, writer),
    ):
        s_reader, s_writer = await served.accept()
        assert await roundtrip(s_reader, writer, b"before") == b"before"
        proxy.block()
        writer.write(b"during-up")
        s_writer.write(b"during-down")
        await nothing_arrives(s_reader)
        await nothing_arrives(reader)
        before = proxy.stats()
        assert (before.bytes_upstream, before.bytes_downstream) == (len(b"before"), 0)
        proxy.unblock()
        assert await asyncio.wait_for(s_reader.readexactly(9), TIMEOUT_S) == b"during-up"
        assert await asyncio.wait_for(reader.readexactly(11), TIMEOUT_S) == b"during-down"
        # Same connection as before the partition: it was never closed.
        assert await roundtrip(s_reader, writer, b"after") == b"after"
        assert proxy.stats().connections_accepted == 1


async def test_block_holds_bytes_already_in_flight() -> None:
    async with (
        serving() as served,
        FaultProxy("127.0.0.1", served.port) as proxy,
        client(proxy.port) as (_reader, writer),
    ):
        s_reader, _ = await served.accept()
        proxy.set_delay(0.2)
        writer.write(b"queued")
        await until(lambda: proxy.stats().buffered_bytes == 6, "the proxy to hold the bytes")
        proxy.block()
        proxy.set_delay(0)
        await nothing_arrives(s_reader, window_s=0.4)
        proxy.unblock()
        assert await asyncio.wait_for(s_reader.readexactly(6), TIMEOUT_S) == b"queued"


async def test_new_connections_wait_out_a_block() -> None:
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        proxy.block()
        async with client(proxy.port) as (reader, writer):
            writer.write(b"held")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(served.conns.get(), 0.2)
            proxy.unblock()
            s_reader, s_writer = await served.accept()
            assert await asyncio.wait_for(s_reader.readexactly(4), TIMEOUT_S) == b"held"
            assert await roundtrip(reader, s_writer, b"through") == b"through"


async def test_a_refusing_block_resets_new_connections_only() -> None:
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        async with client(proxy.port) as (_live_reader, live_writer):
            s_reader, _s_writer = await served.accept()
            proxy.block("refuse")
            async with client(proxy.port) as (reader, _):
                assert await ending(reader) == "reset"
            assert served.conns.empty()
            proxy.unblock()
            # The connection that was live before the block survived it.
            assert await roundtrip(s_reader, live_writer, b"still here") == b"still here"
        async with client(proxy.port) as (reader, writer):
            s_reader, _ = await served.accept()
            assert await roundtrip(s_reader, writer, b"new") == b"new"
        assert proxy.stats().connections_accepted == 3


async def exchange_with_drop(proxy: FaultProxy, served_conns: asyncio.Queue[Conn]) -> tuple[bytes, bytes]:
    """One request/response exchange through the proxy; what the server and the client each received."""
    async with client(proxy.port) as (reader, writer):
        s_reader, s_writer = await asyncio.wait_for(served_conns.get(), TIMEOUT_S)
        writer.write(REQUEST)
        try:
            request = await asyncio.wait_for(s_reader.readexactly(len(REQUEST)), TIMEOUT_S)
        except asyncio.IncompleteReadError as exc:
            request = exc.partial
        else:
            with contextlib.suppress(ConnectionError):
                s_writer.write(RESPONSE)
                await s_writer.drain()
        response = await read_to_end(reader)
        with contextlib.suppress(ConnectionError):
            assert await read_to_end(s_reader) == b""
        return request, response


async def test_drop_after_cuts_at_exactly_n_bytes_at_every_step() -> None:
    total = len(REQUEST) + len(RESPONSE)
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        for n in range(total + 1):
            proxy.drop_after(n)
            request, response = await exchange_with_drop(proxy, served.conns)
            assert request == REQUEST[:n], n
            assert response == RESPONSE[: max(0, n - len(REQUEST))], n
            assert proxy.stats().drops == n + 1
        forwarded = sum(min(n, total) for n in range(total + 1))
        stats = proxy.stats()
        assert stats.bytes_upstream + stats.bytes_downstream == forwarded


@pytest.mark.parametrize(("direction", "n"), [("upstream", 4), ("downstream", 3)])
async def test_drop_after_counts_one_direction(direction: str, n: int) -> None:
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        proxy.drop_after(n, direction)  # type: ignore[arg-type]
        request, response = await exchange_with_drop(proxy, served.conns)
        if direction == "upstream":
            assert (request, response) == (REQUEST[:n], b"")
        else:
            assert (request, response) == (REQUEST, RESPONSE[:n])


async def test_drop_after_applies_to_live_connections() -> None:
    async with serving() as served, FaultProxy("127.0.0.1", served.port) as proxy:
        async with client(proxy.port) as (reader, writer):
            s_reader, _ = await served.accept()
            assert await roundtrip(s_reader, writer, b"0123456789") == b"0123456789"
            proxy.drop_after(5)  # already past it: the connection closes now
            assert await ending(reader) == "eof"
            assert await ending(s_reader) == "eof"
        proxy.drop_after(None)
        async with client(proxy.port) as (reader, writer):
            s_reader, _ = await served.accept()
            assert await roundtrip(s_reader, writer, b"0123456789") == b"0123456789"


async def test_an_unreachable_target_resets_the_client() -> None:
    async with FaultProxy("127.0.0.1", free_port()) as proxy, client(proxy.port) as (reader, _):
        assert await ending(reader) == "reset"
        await until(lambda: proxy.stats().failed_dials == 1, "the failed dial to be counted")
        assert proxy.stats().connections_live == 0


async def test_stop_closes_everything_and_leaves_no_task_behind() -> None:
    async with serving() as served:
        proxy = FaultProxy("127.0.0.1", served.port)
        await proxy.start()
        port = proxy.port
        async with client(port) as (r_delayed, w_delayed), client(port) as (r_idle, _):
            s_delayed, s_idle = await served.accept(), await served.accept()
            assert await roundtrip(s_delayed[0], w_delayed, b"x") == b"x"
            proxy.set_delay(30)
            w_delayed.write(b"pending")  # held in the proxy's queue, on a timer, when stop() comes
            await until(lambda: proxy.stats().buffered_bytes == 7, "the delayed bytes to be held")
            proxy.block()
            async with client(port) as (r_held, _):
                await until(lambda: proxy.stats().connections_live == 3, "the held connection")
                await proxy.stop()
                assert proxy.stats().connections_live == 0
                assert [await ending(r) for r in (r_delayed, r_idle, r_held)] == ["reset"] * 3
            # The proxy's sockets towards the server are gone too.
            assert [await ending(s[0]) for s in (s_delayed, s_idle)] == ["reset"] * 2
        assert asyncio.all_tasks() == {asyncio.current_task()}
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        # The held connection never reached the server.
        assert served.conns.empty()


async def test_stop_right_after_unblock_does_not_wait_for_dials_that_never_ran() -> None:
    async with serving() as served:
        proxy = FaultProxy("127.0.0.1", served.port)
        await proxy.start()
        proxy.block()
        async with client(proxy.port) as (reader, _):
            await until(lambda: proxy.stats().connections_live == 1, "the held connection")
            proxy.unblock()  # creates the dial task; stop() cancels it before its first step
            await asyncio.wait_for(proxy.stop(), TIMEOUT_S)
            assert await ending(reader) == "reset"
        assert proxy.stats().connections_live == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}
