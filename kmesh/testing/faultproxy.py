"""A fault-injecting TCP proxy for partition and slow-link tests (after asyncpg's ``_testbase/fuzzer.py``).

It sits between a client and a server on loopback and can cut, block, delay, throttle or drop the
connections that pass through it::

    async with FaultProxy("127.0.0.1", server_port) as proxy:
        ...                      # the client dials proxy.port instead of server_port
        proxy.block()            # a partition: nothing passes, connections stay open
        proxy.unblock()          # held bytes and held connections go through, in order
        proxy.cut()              # reset every live connection, both ways
        proxy.set_delay(0.05)    # latency added to every chunk, both directions, order kept
        proxy.set_bandwidth(100_000)
        proxy.drop_after(12)     # every connection closes once 12 bytes have been forwarded

Rules:
- asyncio Protocols throughout. Each direction of a connection is a ``_Pipe`` with back-pressure: its
  source stops reading while the destination's write buffer is above ``high_water_bytes``, while the
  bytes it holds (for a delay, a bandwidth limit or a block) reach ``high_water_bytes``, and while blocked.
  A direction therefore holds at most about two high-water marks plus two reads (256 KiB each on asyncio
  and uvloop), however slow the reader; ``stats().peak_buffered_bytes`` shows it.
- ``block()`` holds: live connections keep their sockets, bytes stay unread in the kernel, and new
  connections are accepted (the listener is local) but not dialled until ``unblock()``;
  ``block("refuse")`` resets new connections instead.
- ``cut()`` resets (SO_LINGER 0: the peers get RST). ``drop_after(n)`` closes with FIN once the n-th byte
  is written, after flushing, so the peer reads exactly n bytes and then EOF: what a test that drops a
  connection at every step of an exchange needs to rely on. (A socket holding bytes the proxy has not
  read yet is reset by the kernel instead of closed.)
- A half-close passes through: EOF from one side becomes ``write_eof`` on the other once the bytes before it
  are delivered. A reset from one side resets the other.
- Time only decides when bytes go out; nothing here measures it.
- ``stop()`` closes the listener, resets every connection, cancels its timers and dial tasks, and returns
  once the sockets it opened have reported closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, cast, final

__all__ = ["FaultProxy", "FaultProxyStats"]

Direction = Literal["both", "upstream", "downstream"]
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
# Timers may fire up to a clock tick early (uvloop ticks in milliseconds); due within this counts as due.
_TIMER_SLACK_S: Final = 0.002


@final
@dataclass(frozen=True, slots=True)
class FaultProxyStats:
    """Counters over the proxy's life; the last three are gauges of the moment."""

    connections_accepted: int
    failed_dials: int
    bytes_upstream: int  # forwarded client -> server
    bytes_downstream: int  # forwarded server -> client
    cuts: int  # connections reset by cut()
    drops: int  # connections closed by drop_after()
    peak_buffered_bytes: int
    connections_live: int
    paused_reads: int  # sockets whose reading is paused right now (back-pressure or block)
    buffered_bytes: int  # held in the proxy: its queues and its transports' write buffers


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's (accepted) or the server's (dialled)."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.outgoing: _Pipe | None = None  # the pipe this side feeds
        self.incoming: _Pipe | None = None  # the pipe that writes to this side
        # Bytes and EOF read before the pipes exist: uvloop starts reading once connection_made returns,
        # even when it paused the transport, so a client can be read before its server is dialled.
        self.early: list[bytes] = []
        self.early_eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        high = self.link.proxy.high_water_bytes
        self.transport.set_write_buffer_limits(high=high, low=high // 4)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.link.side_made(self)

    def data_received(self, data: bytes) -> None:
        if self.outgoing is not None:
            self.outgoing.feed(data)
        else:
            self.early.append(data)
            self.set_reading(False)

    def eof_received(self) -> bool:
        if self.outgoing is not None:
            self.outgoing.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket open: the other direction may still be sending

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.link.side_lost(self, exc)

    def pause_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.dst_paused = True
            self.incoming.update_reading()

    def resume_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.dst_paused = False
            self.incoming.flush()

    @property
    def reading(self) -> bool:
        return self.transport is not None and self.transport.is_reading()

    def set_reading(self, want: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or transport.is_reading() == want:
            return
        if want:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def write_buffer_size(self) -> int:
        return 0 if self.transport is None or self.lost else self.transport.get_write_buffer_size()

    def reset(self) -> None:
        """Close abruptly: SO_LINGER 0 makes the kernel send RST and drop unsent bytes."""
        if self.transport is None or self.lost:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # Fails only when the socket is already dead; abort() below is then all there is to do.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()

    def close(self) -> None:
        """Close after flushing what was written: the peer reads it all, then EOF."""
        if self.transport is not None and not self.lost:
            self.transport.close()


class _Pipe:
    """One direction of a connection: bytes from ``src`` wait here until due, then go to ``dst``."""

    def __init__(self, link: _Link, src: _Side, dst: _Side, *, upstream: bool) -> None:
        self.link = link
        self.src = src
        self.dst = dst
        self.upstream = upstream
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.last_release = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.dst_paused = False
        self.eof = False
        self.eof_sent = False
        src.outgoing = self
        dst.incoming = self

    def feed(self, data: bytes) -> None:
        proxy = self.link.proxy
        release = max(proxy._event_loop.time() + proxy.delay_s, self.last_release)
        if proxy.bandwidth is None:
            self.queue.append((release, data))
        else:
            # Slices of about 20 ms each, so a throttled link trickles instead of bursting.
            step = max(512, int(proxy.bandwidth / 50))
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                release += len(piece) / proxy.bandwidth
                self.queue.append((release, piece))
        self.last_release = release
        self.queued += len(data)
        self.flush()
        proxy._note_buffered()

    def feed_eof(self) -> None:
        self.eof = True
        self.flush()

    def flush(self) -> None:
        """Deliver every due chunk that may go now; arm a timer for the next one."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        link, proxy = self.link, self.link.proxy
        while self.queue and link.is_open and not proxy.blocked and not self.dst_paused:
            release, chunk = self.queue[0]
            if release > proxy._event_loop.time() + _TIMER_SLACK_S:
                self.timer = proxy._event_loop.call_at(release, self.flush)
                break
            self.queue.popleft()
            self.queued -= len(chunk)
            link.deliver(self, chunk)
        if self.eof and not self.queue and not self.eof_sent and link.is_open and not proxy.blocked:
            self.eof_sent = True
            assert self.dst.transport is not None
            self.dst.transport.write_eof()
            link.half_closed()
        self.update_reading()

    def update_reading(self) -> None:
        proxy = self.link.proxy
        busy = proxy.blocked or self.dst_paused or self.queued >= proxy.high_water_bytes
        self.src.set_reading(self.link.is_open and not busy)

    def discard(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0

    def buffered(self) -> int:
        return self.queued + self.dst.write_buffer_size()


class _Link:
    """A proxied connection: the client's socket, the server's once dialled, and a pipe each way."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self)
        self.server = _Side(self)
        self.pipes: tuple[_Pipe, _Pipe] | None = None
        self.is_open = False  # both sockets connected and neither closed by the proxy
        self.closing = False
        self.dialling = False
        self.forwarded = {True: 0, False: 0}  # by upstream-ness
        self.done: asyncio.Future[None] = proxy._event_loop.create_future()

    def side_made(self, side: _Side) -> None:
        if side is self.client:
            self.proxy._accepted(self)
        elif self.closing:
            side.reset()  # the client went away, or the proxy stopped, while this was being dialled
        else:
            self.pipes = (
                _Pipe(self, self.client, self.server, upstream=True),
                _Pipe(self, self.server, self.client, upstream=False),
            )
            self.is_open = True
            if any(self.proxy._drop_budget(self, pipe) == 0 for pipe in self.pipes):
                self.drop()
                return
            upstream = self.pipes[0]
            early, self.client.early = self.client.early, []
            for data in early:
                upstream.feed(data)
            if self.client.early_eof:
                upstream.feed_eof()
            for pipe in self.pipes:
                pipe.update_reading()

    def dial(self) -> None:
        self.dialling = True
        task = self.proxy._event_loop.create_task(self._dial())
        self.proxy._tasks.add(task)
        # A callback, not a ``finally``: a task cancelled before its first step never runs its body.
        task.add_done_callback(self._dialled)

    def _dialled(self, task: asyncio.Task[None]) -> None:
        self.proxy._tasks.discard(task)
        self.dialling = False
        self.check_done()

    async def _dial(self) -> None:
        proxy = self.proxy
        try:
            await proxy._event_loop.create_connection(
                lambda: self.server, proxy.target_host, proxy.target_port
            )
        except OSError:
            proxy._failed_dials += 1
            self.reset()  # the client sees the refusal as a reset

    def deliver(self, pipe: _Pipe, chunk: bytes) -> None:
        budget = self.proxy._drop_budget(self, pipe)
        last = budget is not None and len(chunk) >= budget
        if budget is not None and last:
            chunk = chunk[:budget]
        if chunk:
            assert pipe.dst.transport is not None
            pipe.dst.transport.write(chunk)
            self.forwarded[pipe.upstream] += len(chunk)
            self.proxy._count(pipe.upstream, len(chunk))
        if last:
            self.drop()

    def half_closed(self) -> None:
        if self.pipes is not None and all(pipe.eof_sent for pipe in self.pipes):
            self._shut(reset=False)  # both ways finished: close both sockets

    def drop(self) -> None:
        self.proxy._drops += 1
        self._shut(reset=False)

    def reset(self) -> None:
        self._shut(reset=True)

    def _shut(self, *, reset: bool) -> None:
        self.is_open = False
        self.closing = True
        for pipe in self.pipes or ():
            pipe.discard()
        for side in (self.client, self.server):
            if reset:
                side.reset()
            else:
                side.close()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if not self.closing:
            # The socket went away under us (a reset, or a write after the peer closed): mirror a reset.
            self._shut(reset=exc is not None)
        self.check_done()

    def check_done(self) -> None:
        made = [s for s in (self.client, self.server) if s.transport is not None]
        if not self.dialling and all(s.lost for s in made) and not self.done.done():
            self.done.set_result(None)
            self.proxy._forget(self)


@final
class FaultProxy:
    """A TCP proxy from ``listen_host:listen_port`` (0: any free port) to ``target_host:target_port``.

    Controls take effect at once on live connections. ``high_water_bytes`` is the back-pressure mark of
    each socket's write buffer and of each direction's queue. Raises RuntimeError when ``port`` is read
    before ``start()`` or the proxy is started twice.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        high_water_bytes: int = 64 * 1024,
    ) -> None:
        if high_water_bytes < 1:
            raise ValueError(f"high_water_bytes must be positive, got {high_water_bytes}")
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.high_water_bytes = high_water_bytes
        self.delay_s = 0.0
        self.bandwidth: float | None = None
        self.blocked = False
        self._refuse_new = False
        self._drop: tuple[int, Direction] | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._links: set[_Link] = set()
        self._held: list[_Link] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._port = 0
        self._accepted_count = self._failed_dials = self._cuts = self._drops = 0
        self._bytes_up = self._bytes_down = self._peak = 0

    @property
    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the proxy is not started")
        return self._loop

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Link(self).client, self.listen_host, self.listen_port
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection (reset), and wait until all are closed. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        links = list(self._links)
        for link in links:
            link.reset()
        self._held.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()
        await asyncio.gather(*(link.done for link in links))

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- controls --------------------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every live connection both ways (RST); returns how many. New connections still work."""
        links = [link for link in self._links if not link.closing]
        for link in links:
            link.reset()
        self._cuts += len(links)
        return len(links)

    def block(self, new_connections: Literal["hold", "refuse"] = "hold") -> None:
        """Stop forwarding: live connections stay open, their bytes are held (reading paused) until
        ``unblock()``. New connections are accepted and held without dialling the target (``"hold"``) or
        reset at once (``"refuse"``).
        """
        self.blocked = True
        self._refuse_new = new_connections == "refuse"
        for link in list(self._links):
            for pipe in link.pipes or ():
                pipe.update_reading()

    def unblock(self) -> None:
        """Forward again: held bytes go out in order, held connections dial the target."""
        self.blocked = False
        self._refuse_new = False
        held, self._held = self._held, []
        for link in held:
            if not link.closing:
                link.dial()
        for link in list(self._links):
            for pipe in link.pipes or ():
                pipe.flush()

    def set_delay(self, seconds: float) -> None:
        """Add ``seconds`` of latency to every chunk read from now on, in both directions."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"delay must be a non-negative number of seconds, got {seconds!r}")
        self.delay_s = seconds

    def set_bandwidth(self, bytes_per_s: float | None) -> None:
        """Limit each direction of each connection to ``bytes_per_s``; None lifts the limit."""
        if bytes_per_s is not None and not (math.isfinite(bytes_per_s) and bytes_per_s > 0):
            raise ValueError(f"bandwidth must be a positive number of bytes per second, got {bytes_per_s!r}")
        self.bandwidth = bytes_per_s

    def drop_after(self, n_bytes: int | None, direction: Direction = "both") -> None:
        """Close each connection (FIN, after flushing) once ``n_bytes`` have been forwarded on it: counted
        over both directions together, or one of them. Applies to live connections too; None disables.
        """
        if n_bytes is not None and n_bytes < 0:
            raise ValueError(f"drop_after needs a non-negative byte count, got {n_bytes}")
        self._drop = None if n_bytes is None else (n_bytes, direction)
        for link in list(self._links):
            if link.is_open and any(self._drop_budget(link, pipe) == 0 for pipe in link.pipes or ()):
                link.drop()

    def stats(self) -> FaultProxyStats:
        sides = [s for link in self._links for s in (link.client, link.server) if s.transport and not s.lost]
        return FaultProxyStats(
            connections_accepted=self._accepted_count,
            failed_dials=self._failed_dials,
            bytes_upstream=self._bytes_up,
            bytes_downstream=self._bytes_down,
            cuts=self._cuts,
            drops=self._drops,
            peak_buffered_bytes=self._peak,
            connections_live=len(self._links),
            paused_reads=sum(1 for side in sides if not side.reading),
            buffered_bytes=self._buffered(),
        )

    # -- called by the connections -----------------------------------------------------------------------

    def _accepted(self, link: _Link) -> None:
        self._accepted_count += 1
        if self._server is None or (self.blocked and self._refuse_new):
            link.reset()
            return
        self._links.add(link)
        # Nothing is read from the client until the server side is connected and the pipes exist.
        link.client.set_reading(False)
        if self.blocked:
            self._held.append(link)
        else:
            link.dial()

    def _forget(self, link: _Link) -> None:
        self._links.discard(link)

    def _drop_budget(self, link: _Link, pipe: _Pipe) -> int | None:
        """Bytes ``pipe`` may still forward before the connection is dropped; None: no limit."""
        if self._drop is None:
            return None
        limit, direction = self._drop
        if direction == "both":
            return max(0, limit - link.forwarded[True] - link.forwarded[False])
        if (direction == "upstream") != pipe.upstream:
            return None
        return max(0, limit - link.forwarded[pipe.upstream])

    def _count(self, upstream: bool, n: int) -> None:
        if upstream:
            self._bytes_up += n
        else:
            self._bytes_down += n

    def _buffered(self) -> int:
        return sum(pipe.buffered() for link in self._links for pipe in link.pipes or ())

    def _note_buffered(self) -> None:
        # Only reads add bytes to the proxy, so the peak is always seen right after one.
        self._peak = max(self._peak, self._buffered())
