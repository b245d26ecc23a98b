"""Relay bytes between two connected sockets in the kernel with splice(2): the pure-Python reference.

The passthrough path of the zone ingress (DESIGN.md, "The data path"): once the SNI is known, both sockets
come here and no byte is copied into Python again. The compiled twin, when it exists, must keep every rule.

Rules:

- One direction per source socket. Each owns a pipe (``os.pipe2(O_NONBLOCK | O_CLOEXEC)``, grown with
  ``F_SETPIPE_SZ`` to ``chunk_bytes`` when the system allows; otherwise the default size is used).
- Pipes are reused: a relay that ended cleanly (both directions reached EOF, or the idle timeout, with
  nothing left in the pipe) gives its *empty* pipes back to a pool kept per ``chunk_bytes`` (at most
  :data:`PIPE_POOL_MAX` pipes each), and the next relay takes them from there instead of creating and
  sizing new ones. A pipe that may hold bytes (a socket error, a cancellation, bytes still in it) is closed,
  never pooled. A forked child closes its inherited copies of the pooled pipes and starts with none.
  ``loop.add_reader(src)`` -> ``splice(src, pipe)`` then at once ``splice(pipe, dst)``, both
  ``SPLICE_F_MOVE | SPLICE_F_NONBLOCK``. Nothing is allocated per chunk beyond the ints splice returns.
- Back-pressure: a source is read only while its pipe is empty. When ``dst`` would block, reading ``src``
  stops and ``loop.add_writer(dst)`` waits until the pipe drains into it; then reading resumes.
- EOF on a source (splice returns 0): the pipe is drained, then ``dst.shutdown(SHUT_WR)``: the other
  direction keeps flowing (half-close). When both directions have ended, everything is closed.
- Any ``OSError`` on a socket (ECONNRESET, EPIPE, ...) ends both directions at once: both sockets are reset
  (``SO_LINGER`` 0, so the other peer sees a reset too, not a clean end of stream) and closed; bytes still
  in the pipes are dropped. The relay still returns its counts: a reset is a normal way for it to end.
- ``idle_timeout_s``: when no byte moved in either direction for that long, both sockets are closed
  (normally, FIN) and the relay returns. Cancelling the awaiting task closes everything the same way and
  re-raises ``CancelledError``.
- Without ``os.splice`` (not Linux) or with ``use_splice=False``: the same structure with one
  ``bytearray(chunk_bytes)`` per direction, ``recv_into`` and ``send``.
- The relay owns both sockets from the call on: it makes them non-blocking and always closes them, and the
  pipes, after removing every reader and writer it added.

The counts returned are the bytes written to the destination socket of each direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import struct
from typing import Final, final

__all__ = ["PIPE_POOL_MAX", "SPLICE", "relay_sockets"]

#: Whether ``os.splice`` exists here, and so whether :func:`relay_sockets` uses it by default.
SPLICE: Final[bool] = hasattr(os, "splice")

_SPLICE_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ: Final[int | None] = getattr(fcntl, "F_SETPIPE_SZ", None)
_LINGER_RESET: Final = struct.pack("ii", 1, 0)
_PIPE_FLAGS: Final = os.O_NONBLOCK | os.O_CLOEXEC

#: Empty pipes kept for reuse, per ``chunk_bytes`` (two per relayed connection).
PIPE_POOL_MAX: Final = 64
# chunk_bytes -> [(read end, write end)], every pipe empty. Lists only: append/pop are atomic under the GIL,
# so event loops in several threads may share it.
_pipe_pool: dict[int, list[tuple[int, int]]] = {}


def _take_pipe(chunk: int) -> tuple[int, int]:
    """An empty non-blocking pipe sized for ``chunk`` (best effort): a pooled one, else a new one."""
    pool = _pipe_pool.get(chunk)
    if pool:
        with contextlib.suppress(IndexError):  # another thread's loop took the last one meanwhile
            return pool.pop()
    r, w = os.pipe2(_PIPE_FLAGS)
    if _F_SETPIPE_SZ is not None:
        # Above /proc/sys/fs/pipe-max-size, or past the user's pipe quota: keep the default size.
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, _F_SETPIPE_SZ, chunk)
    return r, w


def _give_pipe(chunk: int, r: int, w: int) -> None:
    """Pool the *empty* pipe ``(r, w)``, or close it when the pool for ``chunk`` is full."""
    pool = _pipe_pool.setdefault(chunk, [])
    if len(pool) < PIPE_POOL_MAX:
        pool.append((r, w))
    else:
        os.close(r)
        os.close(w)


def _close_pooled_pipes() -> None:
    """Close every pooled pipe (in a forked child: the parent's pipes must never be shared)."""
    for pool in _pipe_pool.values():
        while pool:
            for fd in pool.pop():
                with contextlib.suppress(OSError):
                    os.close(fd)
    _pipe_pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_pooled_pipes)


@final
class _Direction:
    """Moves bytes from ``src`` to ``dst`` until ``src`` ends; the state of one half of the relay."""

    __slots__ = (
        "buf_end",
        "buf_start",
        "chunk",
        "done",
        "dst",
        "dst_sock",
        "eof",
        "in_pipe",
        "loop",
        "moved",
        "pipe_r",
        "pipe_w",
        "reading",
        "relay",
        "src",
        "src_sock",
        "use_splice",
        "view",
        "writing",
    )

    def __init__(
        self, relay: _Relay, src: socket.socket, dst: socket.socket, *, chunk: int, use_splice: bool
    ) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.src_sock = src
        self.dst_sock = dst
        self.src = src.fileno()
        self.dst = dst.fileno()
        self.chunk = chunk
        self.use_splice = use_splice
        self.moved = 0
        self.in_pipe = 0  # bytes in the pipe (splice) or the buffer (copy), not yet written to dst
        self.eof = False
        self.done = False
        self.reading = False
        self.writing = False
        self.pipe_r = self.pipe_w = -1
        self.view: memoryview | None = None
        self.buf_start = self.buf_end = 0
        if use_splice:
            self.pipe_r, self.pipe_w = _take_pipe(chunk)
        else:
            self.view = memoryview(bytearray(chunk))

    def start_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.loop.add_reader(self.src, self.on_readable)

    def stop(self) -> None:
        """Remove this direction's reader and writer (idempotent)."""
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.src)
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.dst)

    def close_pipe(self, reuse: bool = False) -> None:
        """Release the pipe (idempotent): pooled when ``reuse`` and it is known to be empty, else closed."""
        r, w = self.pipe_r, self.pipe_w
        if r >= 0:
            self.pipe_r = self.pipe_w = -1
            if reuse and self.in_pipe == 0:
                _give_pipe(self.chunk, r, w)
            else:
                os.close(r)
                os.close(w)
        if self.view is not None:
            self.view.release()
            self.view = None

    def on_readable(self) -> None:
        try:
            if self.use_splice:
                n = os.splice(self.src, self.pipe_w, self.chunk, None, None, _SPLICE_FLAGS)
            else:
                n = self.src_sock.recv_into(self.view)  # type: ignore[arg-type]  # set when not splicing
        except (BlockingIOError, InterruptedError):
            return  # a spurious wakeup
        except OSError as exc:
            self.relay.fail(exc)
            return
        relay = self.relay
        if relay.idle_timeout_s is not None:
            relay.last_activity = self.loop.time()
        if n == 0:
            self.eof = True
            if self.reading:
                self.reading = False
                self.loop.remove_reader(self.src)
        else:
            self.in_pipe = n
            self.buf_start = 0
        self.drain()

    def drain(self) -> None:
        """Write what is buffered to ``dst``; on EAGAIN switch from reading ``src`` to waiting on ``dst``."""
        while self.in_pipe:
            try:
                if self.use_splice:
                    m = os.splice(self.pipe_r, self.dst, self.in_pipe, None, None, _SPLICE_FLAGS)
                else:
                    view = self.view
                    assert view is not None
                    start = self.buf_start
                    m = self.dst_sock.send(view[start : start + self.in_pipe])
                    self.buf_start = start + m
            except (BlockingIOError, InterruptedError):
                m = 0
            except OSError as exc:
                self.relay.fail(exc)
                return
            if m == 0:  # dst is full: wait until it is writable, and read no more meanwhile
                if self.reading:
                    self.reading = False
                    self.loop.remove_reader(self.src)
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.dst, self.drain)
                return
            self.in_pipe -= m
            self.moved += m
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.dst)
        if not self.eof:
            self.start_reading()
            return
        # The source ended and everything it sent is in dst: pass the EOF on.
        self.done = True
        with contextlib.suppress(OSError):  # ENOTCONN: the other peer is gone already; the end is near
            self.dst_sock.shutdown(socket.SHUT_WR)
        self.relay.direction_done()


@final
class _Relay:
    __slots__ = (
        "a",
        "a_to_b",
        "b",
        "b_to_a",
        "done",
        "failed",
        "idle_handle",
        "idle_timeout_s",
        "last_activity",
        "loop",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        a: socket.socket,
        b: socket.socket,
        *,
        chunk: int,
        use_splice: bool,
        idle_timeout_s: float | None,
    ) -> None:
        self.loop = loop
        self.a = a
        self.b = b
        self.done: asyncio.Future[None] = loop.create_future()
        self.failed = False  # a socket error ended the relay: its pipes are not reused
        self.idle_timeout_s = idle_timeout_s
        self.idle_handle: asyncio.TimerHandle | None = None
        self.last_activity = loop.time()
        self.a_to_b = _Direction(self, a, b, chunk=chunk, use_splice=use_splice)
        try:
            self.b_to_a = _Direction(self, b, a, chunk=chunk, use_splice=use_splice)
        except BaseException:
            self.a_to_b.close_pipe()
            raise

    def start(self) -> None:
        self.a_to_b.start_reading()
        self.b_to_a.start_reading()
        if self.idle_timeout_s is not None:
            self.idle_handle = self.loop.call_at(self.last_activity + self.idle_timeout_s, self.on_idle)

    def direction_done(self) -> None:
        if self.a_to_b.done and self.b_to_a.done:
            self.finish(reuse=True)

    def fail(self, exc: OSError) -> None:
        """A socket failed: reset both peers and end the relay."""
        self.failed = True
        for sock in (self.a, self.b):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.finish()

    def on_idle(self) -> None:
        self.idle_handle = None
        assert self.idle_timeout_s is not None
        deadline = self.last_activity + self.idle_timeout_s
        if self.loop.time() >= deadline:
            self.finish(reuse=True)
        else:
            self.idle_handle = self.loop.call_at(deadline, self.on_idle)

    def finish(self, reuse: bool = False) -> None:
        """Remove every reader and writer, release the pipes (pooled when ``reuse`` and empty), close the
        sockets, wake the caller. Idempotent."""
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None
        reuse = reuse and not self.failed
        for d in (self.a_to_b, self.b_to_a):
            d.stop()
            d.close_pipe(reuse)
        self.a.close()
        self.b.close()
        if not self.done.done():
            self.done.set_result(None)


async def relay_sockets(
    a: socket.socket,
    b: socket.socket,
    *,
    idle_timeout_s: float | None = None,
    chunk_bytes: int = 1 << 20,
    use_splice: bool | None = None,
) -> tuple[int, int]:
    """Relay between connected sockets ``a`` and ``b`` until both directions end; close both.

    Returns ``(bytes a->b, bytes b->a)``. ``use_splice=None`` means :data:`SPLICE`; ``False`` forces the
    copying fallback (``True`` where ``os.splice`` is missing raises ``ValueError``). Raises ``ValueError``
    for a non-positive ``chunk_bytes`` or ``idle_timeout_s``; socket errors end the relay, they are not
    raised. The sockets are closed whatever happens, also on cancellation.
    """
    try:
        if use_splice is None:
            use_splice = SPLICE
        elif use_splice and not SPLICE:
            raise ValueError("os.splice is not available on this platform")
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        if idle_timeout_s is not None and idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be positive or None, got {idle_timeout_s}")
        a.setblocking(False)
        b.setblocking(False)
        relay = _Relay(
            asyncio.get_running_loop(),
            a,
            b,
            chunk=chunk_bytes,
            use_splice=use_splice,
            idle_timeout_s=idle_timeout_s,
        )
    except BaseException:
        a.close()
        b.close()
        raise
    try:
        relay.start()
        await relay.done
    finally:
        relay.finish()
    return relay.a_to_b.moved, relay.b_to_a.moved
