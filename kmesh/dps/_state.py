"""The DP session's states and the one table of legal transitions (the h11 ``_state.py`` pattern).

``TRANSITIONS`` maps ``(role, state, direction, message kind)`` to the next state. Anything not in it is
illegal: received, it closes the session with ``unexpected_message``; about to be sent, it raises
:class:`~kmesh.errors.LocalProtocolError`. The session looks every message up here before acting on it::

    proxy:  IDLE --send Hello--> HELLO_SENT --recv Welcome--> ESTABLISHED
                                 HELLO_SENT --recv Reject---> CLOSED
    server: AWAITING_HELLO --recv Hello--> HELLO_RECEIVED --send Welcome--> ESTABLISHED
                                           HELLO_RECEIVED --send Reject---> CLOSED
    ESTABLISHED, proxy -> server:  CertificateRequest, Ack, Nack, HealthReport, Heartbeat
    ESTABLISHED, server -> proxy:  CertificateIssued, CertificateRefused, ConfigUpdate, Heartbeat
    both:   any state but CLOSED --send/recv Close--> CLOSED

Timeouts and a lost transport also lead to CLOSED; they are not messages, so the session does that itself.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from kmesh.dps.messages import (
    Ack,
    CertificateIssued,
    CertificateRefused,
    CertificateRequest,
    Close,
    ConfigUpdate,
    DpMessage,
    HealthReport,
    Heartbeat,
    Hello,
    Nack,
    Reject,
    Welcome,
)

__all__ = ["INITIAL_STATE", "TRANSITIONS", "Direction", "Role", "State"]


class Role(enum.Enum):
    """Which end of the connection a session is: the proxy dials, the zone control plane serves."""

    PROXY = "proxy"
    SERVER = "server"


class State(enum.Enum):
    IDLE = "idle"  # proxy, before connect()
    HELLO_SENT = "hello_sent"  # proxy, waiting for Welcome or Reject
    AWAITING_HELLO = "awaiting_hello"  # server, before the proxy's Hello
    HELLO_RECEIVED = "hello_received"  # server, the caller decides: accept() or reject()
    ESTABLISHED = "established"
    CLOSED = "closed"


class Direction(enum.Enum):
    SEND = "send"
    RECEIVE = "receive"


Key = tuple[Role, State, Direction, type[DpMessage]]

INITIAL_STATE: Final[Mapping[Role, State]] = MappingProxyType(
    {Role.PROXY: State.IDLE, Role.SERVER: State.AWAITING_HELLO}
)

# What each role sends once established; the other role receives exactly that.
_SENT_BY: Final[Mapping[Role, tuple[type[DpMessage], ...]]] = MappingProxyType(
    {
        Role.PROXY: (CertificateRequest, Ack, Nack, HealthReport, Heartbeat),
        Role.SERVER: (CertificateIssued, CertificateRefused, ConfigUpdate, Heartbeat),
    }
)
_STATES_OF: Final[Mapping[Role, tuple[State, ...]]] = MappingProxyType(
    {
        Role.PROXY: (State.IDLE, State.HELLO_SENT, State.ESTABLISHED),
        Role.SERVER: (State.AWAITING_HELLO, State.HELLO_RECEIVED, State.ESTABLISHED),
    }
)


def _peer(role: Role) -> Role:
    return Role.SERVER if role is Role.PROXY else Role.PROXY


def _build() -> dict[Key, State]:
    table: dict[Key, State] = {
        (Role.PROXY, State.IDLE, Direction.SEND, Hello): State.HELLO_SENT,
        (Role.PROXY, State.HELLO_SENT, Direction.RECEIVE, Welcome): State.ESTABLISHED,
        (Role.PROXY, State.HELLO_SENT, Direction.RECEIVE, Reject): State.CLOSED,
        (Role.SERVER, State.AWAITING_HELLO, Direction.RECEIVE, Hello): State.HELLO_RECEIVED,
        (Role.SERVER, State.HELLO_RECEIVED, Direction.SEND, Welcome): State.ESTABLISHED,
        (Role.SERVER, State.HELLO_RECEIVED, Direction.SEND, Reject): State.CLOSED,
    }
    for role, states in _STATES_OF.items():
        for kind in _SENT_BY[role]:
            table[(role, State.ESTABLISHED, Direction.SEND, kind)] = State.ESTABLISHED
        for kind in _SENT_BY[_peer(role)]:
            table[(role, State.ESTABLISHED, Direction.RECEIVE, kind)] = State.ESTABLISHED
        for state in states:
            for direction in Direction:
                table[(role, state, direction, Close)] = State.CLOSED
    return table


TRANSITIONS: Final[Mapping[Key, State]] = MappingProxyType(_build())
