"""A pair of asyncio Protocols that relay bytes between two connections: the proxy's generic data path.

One :class:`RelayHalf` is the protocol of each connection (the accepted one and the one to the upstream);
``a.link(b)`` joins them. This is the seam where a faster relay (splice, a compiled twin) slots in later:
listeners only build halves and link them.

Rules:

- Before :meth:`RelayHalf.link`, received bytes are kept (no copy: the ``bytes`` objects themselves) and
  reading pauses once more than ``max_pending_bytes`` wait. ``link`` writes what each half kept to the
  other side, forwards an EOF or close that arrived meanwhile, and resumes reading.
- After ``link``, ``data_received`` writes the chunk straight to the peer's transport: no copy, no per-chunk
  work beyond that write, two counters and one clock read (for the idle timeout).
- Back-pressure (DESIGN.md, "The data path"): each transport gets ``high_water``/``low_water`` write-buffer
  limits; ``pause_writing`` on one half pauses reading on its peer, ``resume_writing`` resumes it.
  ``write_pauses`` counts how often a half's buffer filled up.
- EOF: when the peer's transport can half-close (plain TCP), the EOF is forwarded with ``write_eof()`` and
  the other direction keeps flowing; the pair closes once both directions saw EOF. A TLS transport cannot
  half-close, so there an EOF closes the peer after its buffer flushes, and this half too.
- Connection lost: a clean loss (``exc is None``), and a TLS-level error such as an EOF without
  ``close_notify``, close the peer *after* its buffer flushes: bytes already accepted are delivered. A
  ``ConnectionError`` (reset, broken pipe, aborted) instead resets the peer (``SO_LINGER`` 0, then abort):
  a reset must not look like a clean end of stream to the other side.
- ``close()`` flushes and closes both; ``abort()`` resets both (unsent bytes are dropped, RST sent).
- ``idle_timeout_s``: the pair is closed (flushing) when no byte moved in either direction for that long.
  One lazily re-armed ``call_at`` timer per half that has the option; ``timed_out`` says it happened.
- ``on_made(half)`` runs in ``connection_made``; ``on_lost(half)`` exactly once, in ``connection_lost``.

Counters: ``bytes_received`` is what this half's socket delivered to us, ``bytes_sent`` what we handed to
this half's transport for writing (via ``write_first``, the flush at link time, or relaying from the peer);
bytes dropped because the connection was already closing are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Final, cast, final

__all__ = ["RelayHalf"]

_LINGER_RESET: Final = struct.pack("ii", 1, 0)


def _reset(transport: asyncio.Transport) -> None:
    """Abort ``transport`` with an RST rather than a FIN (``SO_LINGER`` 0), best effort."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Already closed, or not a TCP socket: a plain abort will do.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


@final
class RelayHalf(asyncio.Protocol):
    """The protocol of one connection of a relayed pair. See the module docstring for the rules."""

    __slots__ = (
        "_closed",
        "_eof",
        "_first",
        "_high_water",
        "_idle_handle",
        "_idle_timeout_s",
        "_last_activity",
        "_loop",
        "_lost",
        "_lost_exc",
        "_low_water",
        "_max_pending_bytes",
        "_on_lost",
        "_on_made",
        "_out",
        "_pending",
        "_pending_bytes",
        "_pending_paused",
        "_want_close",
        "_write_paused",
        "bytes_received",
        "bytes_sent",
        "peer",
        "timed_out",
        "transport",
        "write_pauses",
    )

    def __init__(
        self,
        *,
        on_made: Callable[[RelayHalf], None] | None = None,
        on_lost: Callable[[RelayHalf], None] | None = None,
        max_pending_bytes: int = 256 * 1024,
        high_water: int = 1024 * 1024,
        low_water: int = 256 * 1024,
        idle_timeout_s: float | None = None,
    ) -> None:
        if idle_timeout_s is not None and idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be positive or None, got {idle_timeout_s}")
        self.transport: asyncio.Transport | None = None
        self.peer: RelayHalf | None = None
        #: Bytes read from this half's socket.
        self.bytes_received = 0
        #: Bytes handed to this half's transport for writing.
        self.bytes_sent = 0
        #: How many times this half's write buffer passed ``high_water`` (and paused reading on the peer).
        self.write_pauses = 0
        #: True when the idle timeout closed the pair.
        self.timed_out = False
        self._on_made = on_made
        self._on_lost = on_lost
        self._max_pending_bytes = max_pending_bytes
        self._high_water = high_water
        self._low_water = low_water
        self._idle_timeout_s = idle_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed: asyncio.Future[None] | None = None
        # The peer transport's bound ``write`` once linked and while it may be written to: the hot path.
        self._out: Callable[[bytes], None] | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_paused = False  # reading paused because too much is pending before link()
        self._write_paused = False  # our transport asked us to stop writing (pause_writing)
        self._first: list[bytes] = []  # write_first() before connection_made
        self._eof = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._want_close = False  # close() before connection_made
        self._last_activity = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None

    # -- public API ---------------------------------------------------------------------------------------

    @property
    def closed(self) -> asyncio.Future[None]:
        """A future done when this half's connection is lost (created on first use)."""
        if self._closed is None:
            loop = self._loop if self._loop is not None else asyncio.get_running_loop()
            self._closed = loop.create_future()
            if self._lost:
                self._closed.set_result(None)
        return self._closed

    @property
    def reading_paused(self) -> bool:
        """Whether this half stopped reading, for back-pressure (peer's buffer full) or before ``link``."""
        peer = self.peer
        return self._pending_paused or (peer is not None and peer._write_paused)

    def write_first(self, data: bytes) -> None:
        """Write ``data`` to this half's transport ahead of anything relayed (e.g. a peeked prefix)."""
        if not data:
            return
        transport = self.transport
        if transport is None:
            self._first.append(data)
            return
        if transport.is_closing():
            return
        transport.write(data)
        self.bytes_sent += len(data)

    def link(self, peer: RelayHalf) -> None:
        """Start relaying between this half and ``peer``, both ways.

        Writes what each half received before linking to the other, forwards an EOF or loss that happened
        meanwhile, and resumes reading. Raises ``RuntimeError`` if either half is already linked or not yet
        connected.
        """
        if peer is self:
            raise RuntimeError("a RelayHalf cannot be linked to itself")
        if self.peer is not None or peer.peer is not None:
            raise RuntimeError("RelayHalf is already linked")
        if self.transport is None or peer.transport is None:
            raise RuntimeError("link() needs both halves connected (after connection_made)")
        self.peer = peer
        peer.peer = self
        now = self._time()
        self._last_activity = peer._last_activity = now
        for half in (self, peer):
            other = cast(RelayHalf, half.peer)
            out = cast(asyncio.Transport, other.transport)
            if not other._lost and not out.is_closing():
                half._out = out.write
            half._flush_pending()
        for half in (self, peer):
            if half._lost:
                half._propagate_loss()
            elif half._eof:
                half._forward_eof()
        for half in (self, peer):
            was_paused, half._pending_paused = half._pending_paused, False
            if cast(RelayHalf, half.peer)._write_paused:
                half._pause_reading()
            elif was_paused:
                half._resume_reading()

    def close(self) -> None:
        """Close this half and its peer, each after its write buffer flushes."""
        self._close_flushing()
        peer = self.peer
        if peer is not None:
            peer._close_flushing()

    def abort(self) -> None:
        """Reset both connections at once: unsent bytes are dropped and an RST is sent."""
        for half in (self, self.peer):
            if half is None:
                continue
            half._out = None
            transport = half.transport
            if transport is None:
                half._want_close = True
            elif not half._lost:
                _reset(transport)

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        self.transport = t
        self._loop = loop = asyncio.get_running_loop()
        t.set_write_buffer_limits(high=self._high_water, low=self._low_water)
        self._last_activity = loop.time()
        if self._idle_timeout_s is not None:
            self._idle_handle = loop.call_at(self._last_activity + self._idle_timeout_s, self._on_idle)
        if self._first:
            first, self._first = self._first, []
            for data in first:
                self.write_first(data)
        if self._on_made is not None:
            self._on_made(self)
        if self._want_close:
            t.close()

    def data_received(self, data: bytes) -> None:
        n = len(data)
        self.bytes_received += n
        self._last_activity = self._loop.time()  # type: ignore[union-attr]  # set in connection_made
        out = self._out
        if out is not None:
            out(data)
            self.peer.bytes_sent += n  # type: ignore[union-attr]  # _out is set only when linked
        elif self.peer is None:
            self._pending.append(data)
            self._pending_bytes += n
            if self._pending_bytes > self._max_pending_bytes and not self._pending_paused:
                self._pending_paused = True
                cast(asyncio.Transport, self.transport).pause_reading()
        # else: the peer is closing or gone; the bytes have nowhere to go.

    def eof_received(self) -> bool:
        self._eof = True
        if self.peer is None:
            # Forwarded by link(). A TLS transport closes itself whatever we return (and stdlib asyncio
            # logs a warning if we return True); link() then still delivers what was received.
            return cast(asyncio.Transport, self.transport).can_write_eof()
        return self._forward_eof()

    def pause_writing(self) -> None:
        self._write_paused = True
        self.write_pauses += 1
        peer = self.peer
        if peer is not None:
            peer._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        peer = self.peer
        if peer is not None and not peer._pending_paused:
            peer._resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._lost_exc = exc
        self._out = None
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        peer = self.peer
        if peer is not None:
            peer._out = None  # nothing more can be written to us
            self._propagate_loss()
        self._pending.clear()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost(self)

    # -- internals ----------------------------------------------------------------------------------------

    def _time(self) -> float:
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        return loop.time()

    def _pause_reading(self) -> None:
        transport = self.transport
        # After an EOF the transport stopped reading by itself; pausing and resuming it would make stdlib
        # asyncio read the EOF again.
        if transport is not None and not self._eof and not transport.is_closing():
            transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self.transport
        if transport is not None and not self._eof and not transport.is_closing():
            transport.resume_reading()

    def _flush_pending(self) -> None:
        """Write what arrived before link() to the peer (called once, from link())."""
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
        out = self._out
        if out is None:
            return
        peer = cast(RelayHalf, self.peer)
        for data in pending:
            out(data)
            peer.bytes_sent += len(data)

    def _forward_eof(self) -> bool:
        """Our reading side ended: pass it on. Returns what ``eof_received`` should return."""
        peer = cast(RelayHalf, self.peer)
        out = peer.transport
        if out is None or peer._lost or out.is_closing():
            return False
        # Half-open needs both sides to half-close: the peer to send a FIN, and our transport to stay
        # open for the other direction (a TLS transport closes itself after an EOF whatever we return).
        if out.can_write_eof() and cast(asyncio.Transport, self.transport).can_write_eof():
            out.write_eof()
            if peer._eof:  # both directions are done
                self.close()
                return False
            return True
        # Flush the peer and close it, and ourselves.
        self._out = None
        peer._out = None
        self.close()
        return False

    def _propagate_loss(self) -> None:
        """We are gone: end the peer's connection too (reset on a reset, else after flushing)."""
        peer = cast(RelayHalf, self.peer)
        peer._out = None
        transport = peer.transport
        if transport is None or peer._lost:
            return
        if isinstance(self._lost_exc, ConnectionError):
            _reset(transport)
        elif not transport.is_closing():
            transport.close()

    def _close_flushing(self) -> None:
        transport = self.transport
        if transport is None:
            self._want_close = True
        elif not transport.is_closing():
            transport.close()

    def _on_idle(self) -> None:
        self._idle_handle = None
        if self._lost:
            return
        timeout = cast(float, self._idle_timeout_s)
        last = self._last_activity
        peer = self.peer
        if peer is not None and peer._last_activity > last:
            last = peer._last_activity
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        deadline = last + timeout
        if loop.time() >= deadline:
            self.timed_out = True
            if peer is not None:
                peer.timed_out = True
            self.close()
        else:
            self._idle_handle = loop.call_at(deadline, self._on_idle)
