"""The KDS wire messages (protocol ``kds/1``) and the close codes; see DESIGN.md, "Wire".

One connection, dialled by the zone, carries both directions::

    zone                                   global
    Hello{protocol, zone, token, ...}  ->
                                       <-  Welcome{heartbeat_interval_s, ...}  |  Reject{code, reason}
    Subscribe{type, known, chunk, last} ->  (for each type the zone receives; the global does the same
                                            for each type it receives)
                                       <-  SpecPart{...}* Resources{type, nonce, upserts, removals, ...}
    Ack{nonce} | Nack{nonce, errors}   ->
    Heartbeat{sent_at}                 <-> (every heartbeat_interval_s, both ways)
    Close{code, reason}                <-> (either side, then the connection ends)

Rules:

- The receiver of a type subscribes with ``known``: record id -> content hash of what it already holds,
  cut into several ``Subscribe`` chunks (``chunk`` counts from 0, ``last`` ends them) so no frame exceeds
  the limit. The sender answers with the differences only: upserts for missing or changed records,
  removals for ids the receiver holds and the sender does not. Later changes flow as more chunks.
- Every ``Resources`` chunk has its own nonce and is answered by one ``Ack`` or ``Nack``. A ``Nack`` names
  the records refused; the others of the chunk were applied. ``chunk``/``last`` number the chunks of one
  batch per type, so a receiver knows when the answer to its subscription is complete.
- A record too large for one frame travels as ``SpecPart`` frames holding its spec bytes in order, then
  the ``Resources`` of its nonce holding the record alone with an empty spec and ``spec_parts`` = their
  count. Nothing else of that type may come between them. So no payload is limited by the frame size.
- ``Hello.window`` and ``Welcome.window`` say how many ``Resources`` chunks their sender accepts
  unanswered; ``max_frame_bytes`` the largest frame it accepts. Each side sends within the smaller of its
  own and the peer's values. The session fills both fields in from its settings.
- Every message keeps the compatibility rules of :mod:`kmesh.wire.codec`: fields are only ever added,
  with defaults; a new message kind is only sent to a peer that announced it in ``features``.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

from kmesh.kds.records import Record, RecordError
from kmesh.wire.codec import WireMessage
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_MAX_UNACKED",
    "PROTOCOL",
    "Ack",
    "Close",
    "CloseCode",
    "Heartbeat",
    "Hello",
    "KdsMessage",
    "Nack",
    "Reject",
    "Resources",
    "SpecPart",
    "Subscribe",
    "Welcome",
]

PROTOCOL: Final = "kds/1"
DEFAULT_MAX_UNACKED: Final = 8
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 10.0


class CloseCode(enum.StrEnum):
    """The codes a ``Close`` or ``Reject`` carries (a peer may send others; they are passed through)."""

    NORMAL = "normal"
    # Bytes that are not KDS: the codes of kmesh.wire's framing and codec.
    BAD_MESSAGE = "bad_message"
    FRAME_TOO_LARGE = "frame_too_large"
    EMPTY_FRAME = "empty_frame"
    TRUNCATED_FRAME = "truncated_frame"
    # Well-formed messages that break the protocol.
    UNEXPECTED_MESSAGE = "unexpected_message"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    BAD_HELLO = "bad_hello"
    BAD_WELCOME = "bad_welcome"
    DUPLICATE_SUBSCRIPTION = "duplicate_subscription"
    UNSUBSCRIBED_TYPE = "unsubscribed_type"
    BAD_CHUNK = "bad_chunk"
    BAD_SPEC_PART = "bad_spec_part"
    RECORD_TOO_LARGE = "record_too_large"
    DUPLICATE_NONCE = "duplicate_nonce"
    UNKNOWN_NONCE = "unknown_nonce"
    FLOW_CONTROL = "flow_control"
    # Liveness and the transport.
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    CONNECTION_LOST = "connection_lost"


class Hello(WireMessage, frozen=True, kw_only=True):
    """Zone -> global, first message of a connection.

    ``zone`` has a default only so that a Hello of another protocol (a proxy's ``dp/...`` Hello, which names
    no zone) still decodes and can be refused with a reason; a KDS Hello without a zone is refused.
    """

    zone: str = ""
    protocol: str = PROTOCOL
    cp_version: str = ""
    instance_id: str = ""
    features: list[str] = []
    token: str = ""
    window: int = DEFAULT_MAX_UNACKED
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES

    def __repr__(self) -> str:
        # The zone token is a credential: a Hello in a log line or a test failure must not show it.
        return (
            f"Hello(zone={self.zone!r}, protocol={self.protocol!r}, cp_version={self.cp_version!r}, "
            f"instance_id={self.instance_id!r}, features={self.features!r}, token=<redacted>, "
            f"window={self.window}, max_frame_bytes={self.max_frame_bytes})"
        )


class Welcome(WireMessage, frozen=True, kw_only=True):
    """Global -> zone: the handshake succeeded. Both sides beat every ``heartbeat_interval_s``."""

    protocol: str = PROTOCOL
    global_instance_id: str = ""
    cp_version: str = ""
    features: list[str] = []
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    window: int = DEFAULT_MAX_UNACKED
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


class Reject(WireMessage, frozen=True, kw_only=True):
    """Global -> zone: the handshake failed; the global closes the connection after it."""

    code: str
    reason: str = ""


class Subscribe(WireMessage, frozen=True, kw_only=True):
    """The receiver of ``type`` announces what it holds: record id -> content hash (one chunk of it)."""

    type: str
    known: dict[str, str] = {}
    chunk: int = 0
    last: bool = True


class Resources(WireMessage, frozen=True, kw_only=True):
    """One chunk of changes of ``type``; answered by an Ack or a Nack of ``nonce``."""

    type: str
    nonce: str
    upserts: list[Record] = []
    removals: list[str] = []
    chunk: int = 0
    last: bool = True
    # >0: this chunk's only upsert has an empty spec; its spec is the data of the SpecParts just before.
    spec_parts: int = 0


class SpecPart(WireMessage, frozen=True, kw_only=True):
    """A piece of the spec of a record too large for one frame; see the module docstring."""

    type: str
    nonce: str
    data: bytes


class Ack(WireMessage, frozen=True, kw_only=True):
    """Every record of the chunk ``nonce`` was applied."""

    nonce: str


class Nack(WireMessage, frozen=True, kw_only=True):
    """The records named in ``errors`` were refused; the rest of the chunk ``nonce`` was applied."""

    nonce: str
    errors: list[RecordError] = []


class Heartbeat(WireMessage, frozen=True, kw_only=True):
    """Liveness; ``sent_at`` is the sender's clock, for display only (clocks of two hosts differ)."""

    sent_at: float = 0.0


class Close(WireMessage, frozen=True, kw_only=True):
    """The sender is ending the connection, and says why."""

    code: str = CloseCode.NORMAL
    reason: str = ""


KdsMessage: TypeAlias = (
    Hello | Welcome | Reject | Subscribe | Resources | SpecPart | Ack | Nack | Heartbeat | Close
)
