"""The KDS session's states and the one table of legal transitions (the h11 ``_state.py`` pattern).

``TRANSITIONS`` maps ``(role, state, direction, message kind)`` to the next state. Anything not in it is
illegal: received, it closes the session with ``unexpected_message``; about to be sent, it raises
:class:`~kmesh.errors.LocalProtocolError`. The session looks every message up here before acting on it,
so this table is the whole answer to "what may happen when"::

    zone:   IDLE --send Hello--> HELLO_SENT --recv Welcome--> ESTABLISHED
                                 HELLO_SENT --recv Reject---> CLOSED
    global: AWAITING_HELLO --recv Hello--> HELLO_RECEIVED --send Welcome--> ESTABLISHED
                                           HELLO_RECEIVED --send Reject---> CLOSED
    both:   ESTABLISHED --send/recv Subscribe, Resources, SpecPart, Ack, Nack, Heartbeat--> ESTABLISHED
            any state but CLOSED --send/recv Close--> CLOSED

Timeouts and a lost transport also lead to CLOSED; they are not messages, so the session does that itself.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from kmesh.kds.messages import (
    Ack,
    Close,
    Heartbeat,
    Hello,
    KdsMessage,
    Nack,
    Reject,
    Resources,
    SpecPart,
    Subscribe,
    Welcome,
)

__all__ = ["INITIAL_STATE", "TRANSITIONS", "Direction", "Role", "State"]


class Role(enum.Enum):
    """Which end of the connection a session is: the zone dials, the global accepts."""

    ZONE = "zone"
    GLOBAL = "global"


class State(enum.Enum):
    IDLE = "idle"  # zone, before connect()
    HELLO_SENT = "hello_sent"  # zone, waiting for Welcome or Reject
    AWAITING_HELLO = "awaiting_hello"  # global, before the zone's Hello
    HELLO_RECEIVED = "hello_received"  # global, the caller decides: accept() or reject()
    ESTABLISHED = "established"
    CLOSED = "closed"


class Direction(enum.Enum):
    SEND = "send"
    RECEIVE = "receive"


Key = tuple[Role, State, Direction, type[KdsMessage]]

INITIAL_STATE: Final[Mapping[Role, State]] = MappingProxyType(
    {Role.ZONE: State.IDLE, Role.GLOBAL: State.AWAITING_HELLO}
)

# The message kinds of an established connection, legal in both directions for both roles.
_STREAM: Final[tuple[type[KdsMessage], ...]] = (Subscribe, Resources, SpecPart, Ack, Nack, Heartbeat)
_STATES_OF: Final[Mapping[Role, tuple[State, ...]]] = MappingProxyType(
    {
        Role.ZONE: (State.IDLE, State.HELLO_SENT, State.ESTABLISHED),
        Role.GLOBAL: (State.AWAITING_HELLO, State.HELLO_RECEIVED, State.ESTABLISHED),
    }
)


def _build() -> dict[Key, State]:
    table: dict[Key, State] = {
        (Role.ZONE, State.IDLE, Direction.SEND, Hello): State.HELLO_SENT,
        (Role.ZONE, State.HELLO_SENT, Direction.RECEIVE, Welcome): State.ESTABLISHED,
        (Role.ZONE, State.HELLO_SENT, Direction.RECEIVE, Reject): State.CLOSED,
        (Role.GLOBAL, State.AWAITING_HELLO, Direction.RECEIVE, Hello): State.HELLO_RECEIVED,
        (Role.GLOBAL, State.HELLO_RECEIVED, Direction.SEND, Welcome): State.ESTABLISHED,
        (Role.GLOBAL, State.HELLO_RECEIVED, Direction.SEND, Reject): State.CLOSED,
    }
    for role, states in _STATES_OF.items():
        for direction in Direction:
            for kind in _STREAM:
                table[(role, State.ESTABLISHED, direction, kind)] = State.ESTABLISHED
            for state in states:
                table[(role, state, direction, Close)] = State.CLOSED
    return table


TRANSITIONS: Final[Mapping[Key, State]] = MappingProxyType(_build())
