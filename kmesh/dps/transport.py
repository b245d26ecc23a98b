"""The asyncio adapter of one DP connection: a :class:`~kmesh.dps.session.DpSession` over a TLS stream.

Short and dumb, as aioquic's ``asyncio/protocol.py`` and :mod:`kmesh.kds.transport`: :class:`DpConnection`
is an ``asyncio.Protocol`` that feeds what it reads to the session, writes what the session has to send,
and fires the session's timer with ``loop.time()``. The same class serves both ends; the proxy creates it
through ``loop.create_connection`` and the zone control plane through ``loop.create_server``.

Rules:

- Receiving and sending never wait on each other. Events go to the owner through a queue read with
  :meth:`DpConnection.next_event`; writes go to the transport at once (:meth:`DpConnection.flush`), never
  awaiting anything.
- The event queue is bounded: past ``max_queued_events`` the adapter stops reading the socket until the
  owner has taken half of them, which bounds what a flooding peer costs.
- Writing is bounded by the transport's write buffer: between ``pause_writing`` and ``resume_writing``
  :attr:`DpConnection.writable` is false and the owner holds back new configs (it waits in
  :meth:`DpConnection.wait_writable`, then sends only the newest). Small messages (acks, heartbeats, a
  Close) are still written.
- After every input the adapter writes what the session produced and re-arms the timer; once the session
  is closed it flushes the last bytes (a Close or Reject) and closes the transport. The session's
  :class:`~kmesh.dps.events.ConnectionClosed` is the last event, and :meth:`DpConnection.next_event` keeps
  returning it afterwards.
- Commands issued by the owner on :attr:`DpConnection.session` take effect on the wire at the next
  :meth:`DpConnection.flush`, which the owner calls after its commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from kmesh._aio.connection import DEFAULT_MAX_QUEUED_EVENTS, SessionConnection
from kmesh.dps._state import Role
from kmesh.dps.events import ConnectionClosed, Event
from kmesh.dps.messages import DEFAULT_CONFIG_WINDOW, CloseCode
from kmesh.dps.session import DEFAULT_HANDSHAKE_TIMEOUT_S, DEFAULT_MAX_CONFIG_BYTES, DpSession
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = ["DEFAULT_MAX_QUEUED_EVENTS", "DpConnection"]


@final
class DpConnection(SessionConnection[DpSession, Event]):
    """One DP connection; see the module docstring. ``on_made`` is called once the TLS handshake is done
    (the server uses it to start serving the connection)."""

    closed_event = ConnectionClosed

    def __init__(
        self,
        role: Role,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
        window: int = DEFAULT_CONFIG_WINDOW,
        max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
        on_made: Callable[[DpConnection], None] | None = None,
    ) -> None:
        super().__init__(
            lambda now: DpSession(
                role,
                now=now,
                max_frame_bytes=max_frame_bytes,
                handshake_timeout_s=handshake_timeout_s,
                max_config_bytes=max_config_bytes,
                window=window,
            ),
            max_queued_events=max_queued_events,
            on_made=on_made,
        )

    def close(self, code: str = CloseCode.NORMAL, reason: str = "") -> None:
        """End the session with a Close to the peer, then close the transport. Does nothing once closed."""
        super().close(code, reason)
