"""The asyncio adapter shared by :mod:`kmesh.kds.transport` and :mod:`kmesh.dps.transport`.

Short and dumb, as aioquic's ``asyncio/protocol.py``: :class:`SessionConnection` is an ``asyncio.Protocol``
around a sans-IO session (:class:`SansIoSession`) that feeds what it reads to the session, writes what the
session has to send, and fires the session's timer with ``loop.time()``. Subclasses only construct their
session and add what is specific to their protocol; each transport module states the rules for its owner.

Rules:

- Receiving and sending never wait on each other. Events go to the owner through a queue read with
  :meth:`SessionConnection.next_event`; writes go to the transport at once
  (:meth:`SessionConnection.flush`), never awaiting anything.
- The event queue is bounded: past ``max_queued_events`` the adapter stops reading the socket
  (``pause_reading``) until the owner has taken half of them, which bounds what a flooding peer costs.
- Writing is bounded by the transport's write buffer: between ``pause_writing`` and ``resume_writing``
  :attr:`SessionConnection.writable` is false (a subclass may add its session's own window) and the owner
  holds back bulk state (it waits in :meth:`SessionConnection.wait_writable`). Small messages (acks,
  heartbeats, a Close) are still written.
- After every input the adapter writes what the session produced and re-arms the timer; once the session
  is closed it flushes the last bytes (a Close or Reject) and closes the transport. The session's
  ``ConnectionClosed`` is the last event, and :meth:`SessionConnection.next_event` keeps returning it
  afterwards.
- Commands issued by the owner on :attr:`SessionConnection.session` take effect on the wire at the next
  :meth:`SessionConnection.flush`, which the owner calls after its commands.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import ClassVar, Final, Generic, Protocol, Self, TypeVar, cast

__all__ = ["DEFAULT_MAX_QUEUED_EVENTS", "SansIoSession", "SessionConnection"]

DEFAULT_MAX_QUEUED_EVENTS: Final = 1024

EventT = TypeVar("EventT")
EventT_co = TypeVar("EventT_co", covariant=True)


class SansIoSession(Protocol[EventT_co]):
    """What :class:`SessionConnection` needs of a sans-IO session (KdsSession, DpSession)."""

    @property
    def closed(self) -> bool: ...

    @property
    def pending_bytes(self) -> int: ...

    def receive_data(self, data: bytes | bytearray | memoryview) -> None: ...

    def receive_eof(self) -> None: ...

    def connection_lost(self, reason: str) -> None: ...

    def next_event(self) -> EventT_co | None: ...

    def data_to_send(self) -> bytes: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def close(self, code: str = ..., reason: str = "") -> None: ...


SessionT = TypeVar("SessionT", bound="SansIoSession[object]")


class SessionConnection(asyncio.Protocol, Generic[SessionT, EventT]):
    """One connection; see the module docstring. ``new_session`` builds the session from ``loop.time()``;
    ``on_made`` is called once the TLS handshake is done (the server uses it to start serving the
    connection). Subclasses set :attr:`closed_event` to their session's ``ConnectionClosed``."""

    closed_event: ClassVar[type]

    def __init__(
        self,
        new_session: Callable[[float], SessionT],
        *,
        max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
        on_made: Callable[[Self], None] | None = None,
    ) -> None:
        if max_queued_events < 2:
            raise ValueError(f"max_queued_events must be at least 2, got {max_queued_events}")
        self._loop = asyncio.get_running_loop()
        self._session = new_session(self._loop.time())
        self._on_made = on_made
        self._transport: asyncio.Transport | None = None
        self._events: deque[EventT] = deque()
        self._max_events = max_queued_events
        self._event_ready = asyncio.Event()
        self._reading_paused = False
        self._writing_paused = False
        self._state_changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._final: EventT | None = None
        self._lost = self._loop.create_future()
        self._peer = ""
        self._max_buffered = 0

    # -- what the owner sees ----------------------------------------------------------------------------

    @property
    def session(self) -> SessionT:
        return self._session

    @property
    def closed(self) -> bool:
        """True once the session is over (the transport may still be flushing its last bytes)."""
        return self._session.closed

    @property
    def peer(self) -> str:
        """``host:port`` of the other end, for logs."""
        return self._peer

    @property
    def writable(self) -> bool:
        """Whether the transport's write buffer has room for more than small messages."""
        return not self._session.closed and not self._writing_paused

    @property
    def buffered_bytes(self) -> int:
        """Bytes held on the way out: the session's pending bytes plus the transport's write buffer."""
        transport = self._transport
        in_transport = transport.get_write_buffer_size() if transport is not None else 0
        return self._session.pending_bytes + in_transport

    @property
    def max_buffered_bytes(self) -> int:
        """The highest ``buffered_bytes`` seen after any write: what the connection cost at its peak."""
        return self._max_buffered

    @property
    def queued_events(self) -> int:
        """Events received and not yet taken by the owner."""
        return len(self._events)

    @property
    def reading_paused(self) -> bool:
        """Whether reading is paused because the owner fell ``max_queued_events`` behind."""
        return self._reading_paused

    async def next_event(self) -> EventT:
        """The next event of the session; after the final ConnectionClosed, that event again."""
        while not self._events:
            if self._final is not None:
                return self._final
            self._event_ready.clear()
            await self._event_ready.wait()
        event = self._events.popleft()
        if isinstance(event, self.closed_event):
            self._final = event
        if self._reading_paused and len(self._events) <= self._max_events // 2:
            self._reading_paused = False
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        return event

    async def wait_writable(self) -> bool:
        """Wait until :attr:`writable`; return False instead if the session closed meanwhile."""
        while not self.writable:
            if self._session.closed:
                return False
            self._state_changed.clear()
            await self._state_changed.wait()
        return True

    async def wait_closed(self) -> None:
        """Wait until the transport is gone."""
        await asyncio.shield(self._lost)

    def flush(self) -> None:
        """Write what the session has to send, re-arm its timer, and close the transport once it is over."""
        transport = self._transport
        # Before connection_made there is nowhere to write: the bytes stay in the session until then.
        if transport is not None:
            data = self._session.data_to_send()
            if not transport.is_closing():
                if data:
                    transport.write(data)
                self._max_buffered = max(self._max_buffered, self.buffered_bytes)
                if self._session.closed:
                    transport.close()
        self._take_events()
        self._arm_timer()

    def close(self, code: str = "normal", reason: str = "") -> None:  # subclasses give their CloseCode.NORMAL
        """End the session with a Close to the peer, then close the transport. Does nothing once closed."""
        self._session.close(code, reason)
        self.flush()

    def abort(self) -> None:
        """Drop the connection at once, without a Close (for a peer that does not read any more)."""
        self._session.connection_lost("aborted by this side")
        self._take_events()
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self: Self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
        self.flush()
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        self._session.receive_data(data)
        self.flush()
        # Acks and answers may have opened the session's window.
        self._state_changed.set()

    def eof_received(self) -> bool:
        self._session.receive_eof()
        self.flush()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        reason = (str(exc) or type(exc).__name__) if exc is not None else "the transport was closed"
        self._session.connection_lost(reason)
        self._session.data_to_send()  # nobody is left to read it
        self._take_events()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._state_changed.set()
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._state_changed.set()

    # -- internals ----------------------------------------------------------------------------------------

    def _take_events(self) -> None:
        session = self._session
        taken = False
        while (event := session.next_event()) is not None:
            self._events.append(cast(EventT, event))
            taken = True
        if taken:
            self._event_ready.set()
            if session.closed:
                self._state_changed.set()
        if len(self._events) >= self._max_events and not self._reading_paused:
            transport = self._transport
            if transport is not None and not transport.is_closing():
                self._reading_paused = True
                transport.pause_reading()

    def _arm_timer(self) -> None:
        when = self._session.get_timer()
        if when is None or math.isinf(when):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = math.inf
            return
        if self._timer is not None and when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._session.handle_timer(self._loop.time())
        self.flush()
