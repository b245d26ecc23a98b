"""The KDS session: one connection between a zone and the global control plane, as a sans-IO state machine.

The model is h11 and aioquic: the session does no I/O and reads no clock. Its adapter feeds it the bytes
it reads (``receive_data``, ``receive_eof``, ``connection_lost``), writes what ``data_to_send()`` returns,
and calls ``handle_timer(now)`` when ``get_timer()`` says so. The caller (the sync logic) drains
``next_event()`` after each of those calls and answers with commands: ``connect``, ``accept``/``reject``,
``subscribe``, ``send_resources``, ``ack``/``nack``, ``close``. The session moves opaque
:class:`~kmesh.kds.records.Record` s and never interprets a resource.

Rules:

- Legal sequences are the table in :mod:`kmesh.kds._state`. A peer that breaks the protocol (a message
  not legal now, an unknown nonce, a type it was not asked for, chunks out of order, more chunks than the
  window, an oversize frame, bytes that are not KDS) never raises out of the session: the session sends
  ``Close{code, reason}`` and reports :class:`~kmesh.kds.events.ConnectionClosed` with the same code and
  reason. Misuse by the caller (sending before the handshake, acking a nonce it never received) raises
  :class:`~kmesh.errors.LocalProtocolError` and changes nothing. Once the session is closed, commands do
  nothing: the caller may be answering an event that was queued before ConnectionClosed.
- Sending: ``send_resources`` cuts a batch into chunks that each fit a frame (records larger than a frame
  go as SpecParts), gives each chunk its nonce, and queues them. At most ``window`` chunks are in flight
  (the smaller of this side's ``max_unacked`` and the peer's); the rest wait, encoded. The session never
  pulls state: **the caller must call ``send_resources`` only while ``writable`` is true**, and after it
  turns false wait for :class:`~kmesh.kds.events.Drained`. Memory then stays below ``window`` chunks in
  flight (a chunk is one frame, or one record larger than a frame) plus one batch; a caller that sends
  bounded batches (a page of the store) stays bounded whatever the size of the state. ``pending_bytes``
  shows what the session holds.
- Receiving: each chunk arrives as one ResourcesReceived, in order; apply it (one store transaction) and
  answer it with ``ack`` or ``nack``. Until answered it counts against this side's window, and a peer
  that sends beyond the window is closed with ``flow_control``.
- Liveness: after the handshake each side sends a Heartbeat every ``heartbeat_interval_s`` (the global
  chooses it in Welcome). Any bytes received count as life; a peer from which nothing arrived in three
  consecutive intervals is closed with ``heartbeat_timeout``. As the session learns the time only from
  ``handle_timer``, silence is measured in whole intervals between timer calls: a dead peer is detected
  between three and four intervals after it went quiet, never before three. The handshake must finish
  within ``handshake_timeout_s`` of the session's creation.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, final

import msgspec

from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.kds._chunking import (
    Oversized,
    check_batch,
    cut_bytes,
    fit_nack_errors,
    nack_overhead,
    plan_resources,
    resources_overhead,
    shorten,
    spec_part_overhead,
    split_known,
    subscribe_overhead,
)
from kmesh.kds._flow import OutChunk, SendWindow
from kmesh.kds._inbound import Inbound
from kmesh.kds._state import INITIAL_STATE, TRANSITIONS, Direction, Role, State
from kmesh.kds.events import (
    Acked,
    ConnectionClosed,
    Drained,
    Event,
    HeartbeatReceived,
    HelloReceived,
    Nacked,
    Rejected,
    ResourcesReceived,
    SubscriptionRequested,
    Welcomed,
)
from kmesh.kds.messages import (
    DEFAULT_MAX_UNACKED,
    PROTOCOL,
    Ack,
    Close,
    CloseCode,
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
from kmesh.kds.records import Record, RecordError
from kmesh.wire.codec import MessageCodec
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT_S",
    "DEFAULT_MAX_RECORD_BYTES",
    "DP_PROTOCOL_PREFIX",
    "MAX_HEARTBEAT_INTERVAL_S",
    "MIN_FRAME_BYTES",
    "MIN_HEARTBEAT_INTERVAL_S",
    "MISSED_HEARTBEATS",
    "KdsSession",
    "TypeStats",
]

DEFAULT_HANDSHAKE_TIMEOUT_S: Final = 30.0
# The largest record this side reassembles from SpecParts: bounds what a peer can make it buffer.
DEFAULT_MAX_RECORD_BYTES: Final = 256 * 1024 * 1024
# Below this a Close with its reason, or one ordinary record, might not fit a frame.
MIN_FRAME_BYTES: Final = 4096
# The DP protocol's Hello announces ``dp/<version>``: a proxy that dialled the global by mistake.
DP_PROTOCOL_PREFIX: Final = "dp/"
MISSED_HEARTBEATS: Final = 3
# A peer's Welcome may not make this side beat in a tight loop, nor silence its liveness check.
MIN_HEARTBEAT_INTERVAL_S: Final = 0.1
MAX_HEARTBEAT_INTERVAL_S: Final = 3600.0


@final
@dataclass(frozen=True, slots=True)
class TypeStats:
    """Resources chunks of one type on this connection (for ZoneInsight): ``sent`` counts chunks put on the
    wire, ``acked``/``nacked`` the peer's answers to them, ``received`` the chunks the peer sent here."""

    sent: int = 0
    acked: int = 0
    nacked: int = 0
    received: int = 0


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    acked: int = 0
    nacked: int = 0
    received: int = 0


@final
class KdsSession:
    """One KDS connection, zone or global side; see the module docstring for the contract.

    ``now`` is the adapter's clock at creation (the handshake deadline counts from it). Raises
    ``ValueError`` for a setting out of range.
    """

    def __init__(
        self,
        role: Role,
        *,
        now: float,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        if max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {MIN_FRAME_BYTES}, got {max_frame_bytes}")
        if max_unacked < 1:
            raise ValueError(f"max_unacked must be at least 1, got {max_unacked}")
        if not handshake_timeout_s > 0:
            raise ValueError(f"handshake_timeout_s must be positive, got {handshake_timeout_s}")
        if max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be positive, got {max_record_bytes}")
        self._role = role
        self._state = INITIAL_STATE[role]
        self._codec = MessageCodec[KdsMessage](KdsMessage, max_frame_bytes=max_frame_bytes)
        self._max_frame = max_frame_bytes
        self._max_unacked = max_unacked
        # What this side may send: its own limits until the peer's handshake message lowers them.
        self._send_limit = max_frame_bytes
        self._window = SendWindow(max_unacked)
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._clock = now
        self._handshake_timeout = handshake_timeout_s
        self._handshake_deadline = now + handshake_timeout_s
        self._interval = 0.0
        self._next_tick = math.inf
        self._active = False
        self._missed = 0
        self._peer_hello: Hello | None = None
        self._peer_welcome: Welcome | None = None
        self._inbound = Inbound(max_unacked, max_record_bytes)
        # Number of the next chunk of each type this side sends (reset after a chunk with ``last``).
        self._send_chunk: dict[str, int] = {}
        self._nonces = 0
        self._stats: dict[str, _Counters] = {}

    # -- state ------------------------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        return self._state

    @property
    def peer_hello(self) -> Hello | None:
        """Global side: the zone's Hello, once received."""
        return self._peer_hello

    @property
    def peer_welcome(self) -> Welcome | None:
        """Zone side: the global's Welcome, once received."""
        return self._peer_welcome

    @property
    def closed(self) -> bool:
        return self._state is State.CLOSED

    @property
    def heartbeat_interval_s(self) -> float | None:
        return self._interval if self._state is State.ESTABLISHED else None

    @property
    def subscriptions(self) -> frozenset[str]:
        """Types this side subscribed to (receives)."""
        return self._inbound.subscribed

    @property
    def peer_subscriptions(self) -> frozenset[str]:
        """Types the peer subscribed to (this side may send), once their Subscribe chunks all arrived."""
        return self._inbound.peer_subscribed

    @property
    def window(self) -> int:
        """The most Resources chunks this side has in flight at once."""
        return self._window.limit

    @property
    def in_flight(self) -> int:
        """Resources chunks sent and not yet answered."""
        return self._window.in_flight

    @property
    def writable(self) -> bool:
        """True when no chunk waits for the window: the caller may hand over another batch."""
        return self._window.writable

    @property
    def pending_bytes(self) -> int:
        """Encoded bytes the session holds: chunks waiting for the window plus unread ``data_to_send``."""
        return self._window.pending_bytes + len(self._out)

    @property
    def unanswered(self) -> frozenset[str]:
        """Nonces of received chunks the caller has not acked or nacked yet."""
        return self._inbound.unanswered

    @property
    def stats(self) -> dict[str, TypeStats]:
        """Counters per type since the session began."""
        return {t: TypeStats(c.sent, c.acked, c.nacked, c.received) for t, c in self._stats.items()}

    # -- I/O side ---------------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Process bytes read from the connection; events become available from ``next_event()``."""
        if self._state is State.CLOSED or not data:
            return
        self._active = True
        try:
            self._codec.receive_data(data)
            while not self.closed:
                message = self._codec.next_message()
                if message is None:
                    break
                self._receive(message)
        except RemoteProtocolError as exc:
            self._fail(exc.code, str(exc))

    def receive_eof(self) -> None:
        """The peer closed the connection (without a Close message, or the session would be closed)."""
        if self._state is State.CLOSED:
            return
        try:
            self._codec.receive_eof()
        except RemoteProtocolError as exc:
            self._lost(exc.code, f"connection lost: {exc}")
        else:
            self._lost(CloseCode.CONNECTION_LOST, "the peer closed the connection without a Close message")

    def connection_lost(self, reason: str) -> None:
        """The transport failed (reset, TLS error); ``reason`` says how."""
        if self._state is not State.CLOSED:
            self._lost(CloseCode.CONNECTION_LOST, f"connection lost: {reason}")

    def next_event(self) -> Event | None:
        """Return the next event, or ``None`` when there is none until more input."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the connection, possibly empty."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, on the adapter's clock; ``None`` once closed."""
        if self._state is State.CLOSED:
            return None
        if self._state is State.ESTABLISHED:
            return self._next_tick
        return self._handshake_deadline

    def handle_timer(self, now: float) -> None:
        """Fire what is due at ``now``: a heartbeat, the liveness check, the handshake deadline."""
        if self._state is State.CLOSED:
            return
        self._clock = max(self._clock, now)
        if self._state is not State.ESTABLISHED:
            if now >= self._handshake_deadline:
                self._fail(
                    CloseCode.HANDSHAKE_TIMEOUT,
                    f"the handshake did not finish within {self._handshake_timeout:g} s",
                )
            return
        if now < self._next_tick:
            return
        # One tick per call however late it comes: a late call means this side was busy, not the peer.
        self._missed = 0 if self._active else self._missed + 1
        self._active = False
        if self._missed >= MISSED_HEARTBEATS:
            self._fail(
                CloseCode.HEARTBEAT_TIMEOUT,
                f"nothing received from the peer for {MISSED_HEARTBEATS} heartbeat intervals "
                f"of {self._interval:g} s",
            )
            return
        self._send(Heartbeat(sent_at=now))
        self._next_tick = now + self._interval

    # -- handshake commands -----------------------------------------------------------------------------

    def connect(self, hello: Hello) -> None:
        """Zone side: send ``hello``. The session fills in ``window`` and ``max_frame_bytes``."""
        if not self._may_send(Hello):
            return
        if hello.protocol != PROTOCOL:
            raise LocalProtocolError(f"this session speaks {PROTOCOL}, not {hello.protocol!r}")
        self._send(msgspec.structs.replace(hello, window=self._max_unacked, max_frame_bytes=self._max_frame))

    def accept(self, welcome: Welcome) -> None:
        """Global side, after HelloReceived: send ``welcome`` (``window`` and ``max_frame_bytes`` filled
        in). Raises LocalProtocolError for a heartbeat interval out of range."""
        if not self._may_send(Welcome):
            return
        interval = welcome.heartbeat_interval_s
        if welcome.protocol != PROTOCOL or not _interval_ok(interval):
            raise LocalProtocolError(
                f"a Welcome needs protocol {PROTOCOL} and a heartbeat interval between "
                f"{MIN_HEARTBEAT_INTERVAL_S} and {MAX_HEARTBEAT_INTERVAL_S} s"
            )
        self._send(
            msgspec.structs.replace(welcome, window=self._max_unacked, max_frame_bytes=self._max_frame)
        )
        self._establish(interval)

    def reject(self, code: str, reason: str) -> None:
        """Global side, after HelloReceived: refuse the zone; the session is then closed."""
        if not self._may_send(Reject):
            return
        self._send(Reject(code=code, reason=shorten(reason)))
        self._finish(code, reason, by_peer=False)

    def close(self, code: str = CloseCode.NORMAL, reason: str = "") -> None:
        """End the session with a Close to the peer. Does nothing if it is already closed."""
        if self._state is State.CLOSED:
            return
        self._send(Close(code=code, reason=shorten(reason)))
        self._finish(code, reason, by_peer=False)

    # -- stream commands --------------------------------------------------------------------------------

    def subscribe(self, type: str, known: Mapping[str, str]) -> None:
        """Ask the peer for ``type``, announcing ``known`` (record id -> content hash) held here.

        Raises LocalProtocolError before the handshake, for a type already subscribed, or for an entry
        larger than a frame.
        """
        if not self._may_send(Subscribe):
            return
        pieces = list(split_known(known, self._send_limit - subscribe_overhead(type)))
        frames = [
            self._encode(Subscribe(type=type, known=piece, chunk=i, last=i == len(pieces) - 1))
            for i, piece in enumerate(pieces)
        ]
        self._inbound.add_subscription(type)
        for frame in frames:
            self._out += frame

    def send_resources(
        self, type: str, upserts: Sequence[Record], removals: Sequence[str] = (), *, last: bool = True
    ) -> list[str]:
        """Send changes of ``type``; return the nonces of the chunks made, in order.

        ``last=False`` says more of this batch follows in later calls (the final chunk of a call with
        ``last=True`` carries ``last``); send nothing else of ``type`` until the batch is finished, or the
        receiver sees it end early. Ids must be distinct within a call. Chunks beyond the window are
        queued; see ``writable``. Raises LocalProtocolError before the handshake, for a type the peer has
        not subscribed to, a record of another type, repeated ids, or an entry larger than a frame.
        """
        if not self._may_send(Resources):
            return []
        if not self._inbound.is_peer_subscribed(type):
            raise LocalProtocolError(
                f"the peer has not subscribed to {type!r}", code=CloseCode.UNSUBSCRIBED_TYPE
            )
        check_batch(type, upserts, removals)
        pieces = list(plan_resources(upserts, removals, self._send_limit - resources_overhead(type)))
        first = self._send_chunk.get(type, 0)
        chunks: list[OutChunk] = []
        for i, piece in enumerate(pieces):
            nonce = self._next_nonce()
            number, is_last = first + i, last and i == len(pieces) - 1
            if isinstance(piece, Oversized):
                frames = self._spec_part_frames(type, nonce, piece.record.spec)
                stripped = msgspec.structs.replace(piece.record, spec=b"")
                head = Resources(
                    type=type,
                    nonce=nonce,
                    upserts=[stripped],
                    chunk=number,
                    last=is_last,
                    spec_parts=len(frames),
                )
                frames.append(self._encode(head))
            else:
                message = Resources(
                    type=type,
                    nonce=nonce,
                    upserts=piece.upserts,
                    removals=piece.removals,
                    chunk=number,
                    last=is_last,
                )
                frames = [self._encode(message)]
            chunks.append(OutChunk(type, nonce, tuple(frames)))
        self._send_chunk[type] = 0 if last else first + len(pieces)
        for chunk in chunks:
            self._window.queue(chunk)
        self._release()
        return [chunk.nonce for chunk in chunks]

    def ack(self, nonce: str) -> None:
        """Tell the peer every record of the chunk ``nonce`` was applied."""
        if not self._may_send(Ack):
            return
        self._inbound.answer(nonce)
        self._send(Ack(nonce=nonce))

    def nack(self, nonce: str, errors: Iterable[RecordError]) -> None:
        """Tell the peer the records in ``errors`` were refused and the rest of chunk ``nonce`` applied.

        Long reasons are shortened, and errors that would not fit a frame are summed up in a last entry.
        """
        if not self._may_send(Nack):
            return
        if not self._inbound.is_unanswered(nonce):
            raise LocalProtocolError(
                f"no received chunk {nonce!r} awaits an answer", code=CloseCode.UNKNOWN_NONCE
            )
        fitted = fit_nack_errors(errors, self._send_limit - nack_overhead(nonce))
        self._inbound.answer(nonce)
        self._send(Nack(nonce=nonce, errors=fitted))

    # -- receiving --------------------------------------------------------------------------------------

    def _receive(self, message: KdsMessage) -> None:
        kind = type(message)
        next_state = TRANSITIONS.get((self._role, self._state, Direction.RECEIVE, kind))
        if next_state is None:
            raise RemoteProtocolError(
                f"the peer sent {kind.__name__}, which the {self._role.value} side does not accept "
                f"in state {self._state.value}",
                code=CloseCode.UNEXPECTED_MESSAGE,
            )
        # Transition first, then act: a handler that finds the message invalid raises, and the session
        # closes whatever state it was moved to.
        self._state = next_state
        match message:
            case Resources():
                self._on_resources(message)
            case SpecPart():
                self._inbound.on_spec_part(message)
            case Ack():
                self._on_answer(message.nonce, None)
            case Nack():
                self._on_answer(message.nonce, message.errors)
            case Heartbeat():
                self._events.append(HeartbeatReceived(message.sent_at))
            case Subscribe():
                self._on_subscribe(message)
            case Hello():
                self._on_hello(message)
            case Welcome():
                self._on_welcome(message)
            case Reject():
                self._events.append(Rejected(message.code, shorten(message.reason)))
                self._finish(message.code, shorten(message.reason), by_peer=True)
            case Close():
                self._finish(message.code, shorten(message.reason), by_peer=True)

    def _on_hello(self, hello: Hello) -> None:
        if hello.protocol.startswith(DP_PROTOCOL_PREFIX):
            # A proxy dialled the global's KDS port: tell its operator where it should connect instead.
            self.reject(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this is the KDS port of the global control plane, which accepts only zone control planes "
                f"(got protocol {hello.protocol!r}); proxies must connect to their zone control plane",
            )
            return
        if hello.protocol != PROTOCOL:
            self.reject(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this global control plane speaks {PROTOCOL}; the zone offered {hello.protocol!r}",
            )
            return
        if not hello.zone:
            self.reject(
                CloseCode.BAD_HELLO, "the Hello names no zone: set the zone control plane's zone name"
            )
            return
        self._adopt_peer_limits(hello.window, hello.max_frame_bytes, CloseCode.BAD_HELLO)
        self._peer_hello = hello
        self._events.append(HelloReceived(hello))

    def _on_welcome(self, welcome: Welcome) -> None:
        if welcome.protocol != PROTOCOL:
            raise RemoteProtocolError(
                f"the global answered with protocol {welcome.protocol!r}; this zone speaks {PROTOCOL}",
                code=CloseCode.UNSUPPORTED_PROTOCOL,
            )
        if not _interval_ok(welcome.heartbeat_interval_s):
            raise RemoteProtocolError(
                f"heartbeat interval {welcome.heartbeat_interval_s!r} s is not between "
                f"{MIN_HEARTBEAT_INTERVAL_S} and {MAX_HEARTBEAT_INTERVAL_S} s",
                code=CloseCode.BAD_WELCOME,
            )
        self._adopt_peer_limits(welcome.window, welcome.max_frame_bytes, CloseCode.BAD_WELCOME)
        self._peer_welcome = welcome
        self._establish(welcome.heartbeat_interval_s)
        self._events.append(Welcomed(welcome))

    def _on_subscribe(self, message: Subscribe) -> None:
        known = self._inbound.on_subscribe(message)
        if known is not None:
            self._events.append(SubscriptionRequested(message.type, known))

    def _on_resources(self, message: Resources) -> None:
        upserts = self._inbound.on_resources(message)
        self._counters(message.type).received += 1
        self._events.append(
            ResourcesReceived(
                message.type, message.nonce, upserts, message.removals, message.last, message.chunk
            )
        )

    def _on_answer(self, nonce: str, errors: list[RecordError] | None) -> None:
        type_ = self._window.answer(nonce)
        if type_ is None:
            raise RemoteProtocolError(
                f"the peer answered nonce {nonce!r}, which is not in flight", code=CloseCode.UNKNOWN_NONCE
            )
        counters = self._counters(type_)
        if errors is None:
            counters.acked += 1
            self._events.append(Acked(type_, nonce))
        else:
            counters.nacked += 1
            self._events.append(Nacked(type_, nonce, errors))
        blocked = not self._window.writable
        self._release()
        if blocked and self._window.writable:
            self._events.append(Drained())

    def _adopt_peer_limits(self, window: int, max_frame_bytes: int, code: str) -> None:
        if window < 1 or max_frame_bytes < MIN_FRAME_BYTES:
            raise RemoteProtocolError(
                f"the peer announced window={window} and max_frame_bytes={max_frame_bytes}; "
                f"they must be at least 1 and {MIN_FRAME_BYTES}",
                code=code,
            )
        self._window.limit = min(self._max_unacked, window)
        self._send_limit = min(self._max_frame, max_frame_bytes)

    # -- sending ----------------------------------------------------------------------------------------

    def _may_send(self, kind: type[KdsMessage]) -> bool:
        """Whether a command may go ahead: False once closed, so the command does nothing (its caller may
        be reacting to an event queued before ConnectionClosed); LocalProtocolError if it is illegal now."""
        if self._state is State.CLOSED:
            return False
        self._check_send(kind)
        return True

    def _check_send(self, kind: type[KdsMessage]) -> State:
        next_state = TRANSITIONS.get((self._role, self._state, Direction.SEND, kind))
        if next_state is None:
            raise LocalProtocolError(
                f"the {self._role.value} side cannot send {kind.__name__} in state {self._state.value}",
                code=CloseCode.UNEXPECTED_MESSAGE,
            )
        return next_state

    def _send(self, message: KdsMessage) -> None:
        next_state = self._check_send(type(message))
        self._out += self._encode(message)
        self._state = next_state

    def _encode(self, message: KdsMessage) -> bytes:
        frame = self._codec.encode(message)
        if len(frame) - FRAME_HEADER_BYTES > self._send_limit:
            raise LocalProtocolError(
                f"{type(message).__name__} encodes to {len(frame) - FRAME_HEADER_BYTES} bytes, more than "
                f"the peer accepts ({self._send_limit})",
                code=CloseCode.FRAME_TOO_LARGE,
            )
        return frame

    def _spec_part_frames(self, type_: str, nonce: str, spec: bytes) -> list[bytes]:
        piece = self._send_limit - spec_part_overhead(type_)
        return [self._encode(SpecPart(type=type_, nonce=nonce, data=data)) for data in cut_bytes(spec, piece)]

    def _release(self) -> None:
        for chunk in self._window.release():
            for frame in chunk.frames:
                self._out += frame
            self._counters(chunk.type).sent += 1

    def _next_nonce(self) -> str:
        self._nonces += 1
        return str(self._nonces)

    def _counters(self, type_: str) -> _Counters:
        counters = self._stats.get(type_)
        if counters is None:
            counters = self._stats[type_] = _Counters()
        return counters

    # -- lifecycle --------------------------------------------------------------------------------------

    def _establish(self, interval: float) -> None:
        self._interval = interval
        # The first tick may come early (the clock is the last one seen); it only sends a beat early.
        self._next_tick = self._clock + interval
        self._missed = 0
        # The handshake message itself was the peer's sign of life for the first interval.
        self._active = True

    def _fail(self, code: str, reason: str) -> None:
        """Close because of something the peer did (or did not do): tell it why, then report it."""
        if self._state is State.CLOSED:
            return
        self._out += self._encode(Close(code=code, reason=shorten(reason)))
        self._finish(code, reason, by_peer=False)

    def _lost(self, code: str, reason: str) -> None:
        self._out.clear()  # nobody is left to read it
        self._finish(code, reason, by_peer=True)

    def _finish(self, code: str, reason: str, *, by_peer: bool) -> None:
        self._state = State.CLOSED
        # Nothing queued can be sent or answered any more; free it now rather than with the session.
        self._window.clear()
        self._inbound.clear()
        self._events.append(ConnectionClosed(str(code), shorten(reason), by_peer))


def _interval_ok(interval: float) -> bool:
    return math.isfinite(interval) and MIN_HEARTBEAT_INTERVAL_S <= interval <= MAX_HEARTBEAT_INTERVAL_S
