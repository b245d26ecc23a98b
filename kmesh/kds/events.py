"""What a :class:`~kmesh.kds.session.KdsSession` reports to its caller, one event at a time.

Events are facts about the connection, produced while the session reads bytes or fires timers, and taken
out with ``next_event()``. The caller's duties for each are written on the class. Every way a session ends
(a Close from either side, a Reject, a protocol error, a timeout, a lost transport) produces exactly one
:class:`ConnectionClosed`, always the last event of the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, final

from kmesh.kds.messages import Hello, Welcome
from kmesh.kds.records import Record, RecordError

__all__ = [
    "Acked",
    "ConnectionClosed",
    "Drained",
    "Event",
    "HeartbeatReceived",
    "HelloReceived",
    "Nacked",
    "Rejected",
    "ResourcesReceived",
    "SubscriptionRequested",
    "Welcomed",
]


@final
@dataclass(frozen=True, slots=True)
class HelloReceived:
    """Global side: a zone introduced itself. Check ``hello.token``, then ``accept()`` or ``reject()``."""

    hello: Hello


@final
@dataclass(frozen=True, slots=True)
class Welcomed:
    """Zone side: the global accepted the connection; subscribe to the types this zone receives."""

    welcome: Welcome


@final
@dataclass(frozen=True, slots=True)
class Rejected:
    """Zone side: the global refused the connection. A :class:`ConnectionClosed` follows."""

    code: str
    reason: str


@final
@dataclass(frozen=True, slots=True)
class SubscriptionRequested:
    """The peer wants ``type`` and holds ``known`` (record id -> content hash), all chunks merged.

    Answer with ``send_resources(type, ...)`` carrying the differences, the last call with ``last=True``.
    """

    type: str
    known: dict[str, str]


@final
@dataclass(frozen=True, slots=True)
class ResourcesReceived:
    """One chunk of changes. Apply it (one store transaction), then ``ack(nonce)`` or ``nack(nonce, ...)``.

    ``last`` marks the final chunk of a batch, for instance of the answer to this side's subscription.
    """

    type: str
    nonce: str
    upserts: list[Record]
    removals: list[str]
    last: bool
    chunk: int


@final
@dataclass(frozen=True, slots=True)
class Acked:
    """The peer applied every record of the chunk ``nonce``."""

    type: str
    nonce: str


@final
@dataclass(frozen=True, slots=True)
class Nacked:
    """The peer refused the records in ``errors`` and applied the rest of the chunk ``nonce``."""

    type: str
    nonce: str
    errors: list[RecordError]


@final
@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """The peer is alive; ``sent_at`` is its own clock (for display, never compared with ours)."""

    sent_at: float


@final
@dataclass(frozen=True, slots=True)
class Drained:
    """Every queued Resources chunk went out: ``writable`` is true again, so pull more state."""


@final
@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session is over. ``by_peer`` tells whether the peer ended it (Close, Reject, lost transport)
    or this side did (``close()``, ``reject()``, or a protocol error or timeout it detected, whose ``code``
    and ``reason`` were sent to the peer in a Close). Flush ``data_to_send()``, then close the transport.
    """

    code: str
    reason: str
    by_peer: bool


Event: TypeAlias = (
    HelloReceived
    | Welcomed
    | Rejected
    | SubscriptionRequested
    | ResourcesReceived
    | Acked
    | Nacked
    | HeartbeatReceived
    | Drained
    | ConnectionClosed
)
