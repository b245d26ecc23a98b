"""The asyncio adapter of one KDS connection: a :class:`~kmesh.kds.session.KdsSession` over a TLS stream.

Short and dumb, as aioquic's ``asyncio/protocol.py``: :class:`KdsConnection` is an ``asyncio.Protocol``
that feeds what it reads to the session, writes what the session has to send, and fires the session's
timer with ``loop.time()``. The same class serves both ends; the zone creates it through
``loop.create_connection`` and the global through ``loop.create_server``.

Rules:

- Receiving and sending never wait on each other. Events go to the owner through a queue read with
  :meth:`KdsConnection.next_event`; writes go to the transport at once (:meth:`KdsConnection.flush`),
  never awaiting anything. The owner runs its receive loop and its send loop as separate tasks.
- The event queue is bounded: past ``max_queued_events`` the adapter stops reading the socket
  (``pause_reading``) until the owner has taken half of them. A well-behaved peer never gets near the
  bound, since Resources chunks are limited by the session's window; it bounds what a flooding peer costs.
- Writing is bounded by the transport's write buffer: between ``pause_writing`` and ``resume_writing``
  :attr:`KdsConnection.writable` is false, as it is while the session's window is full, and the owner
  must not hand the session more state (it waits in :meth:`KdsConnection.wait_writable`). Small messages
  (acks, heartbeats, a Close) are still written, so a busy sender never starves the peer of answers.
- After every input the adapter writes what the session produced and re-arms the timer; once the session
  is closed it flushes the last bytes (a Close or Reject) and closes the transport, which TLS-shuts down
  after its buffer drained. The session's :class:`~kmesh.kds.events.ConnectionClosed` is the last event,
  and :meth:`KdsConnection.next_event` keeps returning it afterwards.
- Commands issued by the owner on :attr:`KdsConnection.session` take effect on the wire at the next
  :meth:`KdsConnection.flush`, which the owner calls after its commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from kmesh._aio.connection import DEFAULT_MAX_QUEUED_EVENTS, SessionConnection
from kmesh.kds._state import Role
from kmesh.kds.events import ConnectionClosed, Event
from kmesh.kds.messages import DEFAULT_MAX_UNACKED, CloseCode
from kmesh.kds.session import DEFAULT_HANDSHAKE_TIMEOUT_S, KdsSession
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = ["DEFAULT_MAX_QUEUED_EVENTS", "KdsConnection"]


@final
class KdsConnection(SessionConnection[KdsSession, Event]):
    """One KDS connection; see the module docstring. ``on_made`` is called once the TLS handshake is done
    (the server uses it to start serving the connection)."""

    closed_event = ConnectionClosed

    def __init__(
        self,
        role: Role,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
        on_made: Callable[[KdsConnection], None] | None = None,
    ) -> None:
        super().__init__(
            lambda now: KdsSession(
                role,
                now=now,
                max_frame_bytes=max_frame_bytes,
                max_unacked=max_unacked,
                handshake_timeout_s=handshake_timeout_s,
            ),
            max_queued_events=max_queued_events,
            on_made=on_made,
        )

    @property
    def writable(self) -> bool:
        """Whether the owner may hand the session more state: its window and the transport both have room."""
        return super().writable and self._session.writable

    def close(self, code: str = CloseCode.NORMAL, reason: str = "") -> None:
        """End the session with a Close to the peer, then close the transport. Does nothing once closed."""
        super().close(code, reason)
