"""Accept raw sockets and read a TLS ClientHello's server name without consuming a byte.

The zone ingress and egress route a TLS connection by its SNI without decrypting it, then either hand the
untouched socket to a passthrough relay (``kmesh._fastpath.splice``) or terminate TLS on it
(``loop.connect_accepted_socket(factory, sock, ssl=ctx)``, always server side). So the ClientHello must stay
in the socket's receive queue: it is only ever read with ``MSG_PEEK``.

Rules:

- :class:`RawAcceptor` is a listening socket driven by ``loop.add_reader``; each wakeup accepts until the
  queue is empty (at most ``backlog`` sockets). Accepted sockets are non-blocking, have ``TCP_NODELAY``, and
  belong to ``on_accept`` from then on. Running out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) stops
  accepting for one second, as asyncio's own servers do, instead of spinning.
- :func:`peek_client_hello` never consumes bytes. A socket with unread bytes stays readable, so waiting for
  *more* bytes with a plain ``add_reader`` would spin; instead ``SO_RCVLOWAT`` is set to the number of bytes
  that ends the next incomplete TLS record (5 + its length, the first time: the record header), capped at
  ``max_bytes``, so epoll reports the socket readable only once they are all there. Where that cannot be
  used (the option is refused) or did not help (woken with fewer bytes, e.g. under memory pressure), it
  re-peeks on a backoff timer, 1 ms doubling to 50 ms. ``SO_RCVLOWAT`` is reset to 1 and the reader
  removed before returning, so the socket can go to a transport straight away.
- A peer that closes (or resets) before the ClientHello is complete gets the parser's verdict on what
  arrived, where ``NEED_MORE`` becomes ``NOT_TLS``. No complete hello within ``timeout_s`` raises
  :class:`SniffTimeout`. The socket is never closed here: the caller owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import select
import socket
from collections.abc import Callable
from typing import Final, final

from kmesh._fastpath._sni_types import RESULT_NOT_TLS
from kmesh._fastpath.sni import SniResult, SniStatus, parse_client_hello
from kmesh.errors import KmeshError

__all__ = ["RawAcceptor", "SniffTimeout", "peek_client_hello"]

_log = logging.getLogger(__name__)

_RECORD_HEADER: Final = 5
_BACKOFF_FIRST_S: Final = 0.001
_BACKOFF_MAX_S: Final = 0.05
_ACCEPT_RETRY_DELAY_S: Final = 1.0
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Linux: POLLRDHUP tells a peer's FIN apart from data, without reading. Elsewhere only HUP/ERR.
_CLOSED_EVENTS: Final = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
#: Whether peek_client_hello uses SO_RCVLOWAT (tests turn it off to exercise the backoff path).
USE_RCVLOWAT: bool = hasattr(socket, "SO_RCVLOWAT")


@final
class SniffTimeout(KmeshError, TimeoutError):
    """No complete ClientHello arrived within ``timeout_s``; the caller should close the socket."""


@final
class RawAcceptor:
    """A listening TCP socket that hands each accepted socket, raw, to ``on_accept(sock, (host, port))``."""

    __slots__ = ("_backlog", "_host", "_loop", "_on_accept", "_port", "_retry", "_sock")

    def __init__(
        self,
        host: str,
        port: int,
        on_accept: Callable[[socket.socket, tuple[str, int]], None],
        *,
        backlog: int = 1024,
    ) -> None:
        self._host = host
        self._port = port
        self._on_accept = on_accept
        self._backlog = backlog
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Bind (``SO_REUSEADDR``), listen and start accepting.

        Raises ``OSError`` naming the address when it cannot be resolved or bound, ``RuntimeError`` if
        already started.
        """
        if self._sock is not None:
            raise RuntimeError("RawAcceptor already started")
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            infos = await loop.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {where}: cannot resolve the host: {exc}") from exc
        family, type_, proto, _, addr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            try:
                sock.bind(addr)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot listen on {where}: {exc.strerror} (is another process using it?)"
                ) from exc
            sock.listen(self._backlog)
            loop.add_reader(sock.fileno(), self._accept_ready)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop = loop

    @property
    def port(self) -> int:
        """The port listened on (the ephemeral one chosen when ``port`` was 0). Needs :meth:`start`."""
        if self._sock is None:
            raise RuntimeError("RawAcceptor is not started")
        port: int = self._sock.getsockname()[1]
        return port

    def close(self) -> None:
        """Stop accepting and close the listening socket. Sockets already accepted are not touched."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()

    def _accept_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    _log.warning("accept on port %d paused for 1 s: %s", self.port, exc)
                    loop = self._loop
                    assert loop is not None
                    loop.remove_reader(sock.fileno())
                    self._retry = loop.call_later(_ACCEPT_RETRY_DELAY_S, self._resume_accepting)
                    return
                raise
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._on_accept(conn, (addr[0], addr[1]))
            except Exception:
                # on_accept must own the socket or close it; a bug there must not leak the descriptor.
                conn.close()
                _log.exception("on_accept failed for a connection from %s", addr)

    def _resume_accepting(self) -> None:
        self._retry = None
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept_ready)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


def _peer_closed(fd: int) -> bool:
    """Whether the peer shut down its side (or the socket failed), without reading."""
    poller = select.poll()
    poller.register(fd, _CLOSED_EVENTS)
    return bool(poller.poll(0))


def _bytes_to_next_record(data: bytes) -> int:
    """The stream offset at which the first incomplete TLS record (or record header) in ``data`` ends."""
    off = 0
    n = len(data)
    while True:
        if off + _RECORD_HEADER > n:
            return off + _RECORD_HEADER
        off += _RECORD_HEADER + int.from_bytes(data[off + 3 : off + 5], "big")
        if off > n:
            return off


async def peek_client_hello(
    sock: socket.socket, *, max_bytes: int = 16 * 1024 + 5, timeout_s: float = 5.0
) -> SniResult:
    """Parse the ClientHello waiting in ``sock`` (non-blocking) without consuming it.

    Returns the parser's :class:`SniResult`: ``FOUND``, ``NO_SNI``, ``NOT_TLS`` (also for a peer that
    closed or reset before a complete hello) or ``TOO_LARGE``; never ``NEED_MORE``. Raises
    :class:`SniffTimeout` when no complete hello arrived within ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    lowat = 1
    try:
        async with asyncio.timeout(timeout_s):
            backoff = _BACKOFF_FIRST_S
            while True:
                try:
                    data = sock.recv(max_bytes, socket.MSG_PEEK)
                except (BlockingIOError, InterruptedError):
                    await _readable(loop, fd)
                    continue
                except OSError:  # reset: whatever had arrived is gone
                    return RESULT_NOT_TLS
                if not data:
                    return RESULT_NOT_TLS
                result = parse_client_hello(data, max_bytes=max_bytes)
                if result.status is not SniStatus.NEED_MORE:
                    return result
                if _peer_closed(fd):
                    return RESULT_NOT_TLS
                want = min(_bytes_to_next_record(data), max_bytes)
                if USE_RCVLOWAT and want != lowat:
                    # A new, higher mark: sleep in epoll until that many bytes are queued.
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
                    except OSError:
                        pass
                    else:
                        lowat = want
                        await _readable(loop, fd)
                        continue
                # The mark did not help (or cannot be set): re-peek on a short, growing timer.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
    except TimeoutError:
        raise SniffTimeout(f"no complete TLS ClientHello within {timeout_s} s") from None
    finally:
        if lowat != 1:
            with contextlib.suppress(OSError):  # the socket may be gone: nothing to reset then
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
