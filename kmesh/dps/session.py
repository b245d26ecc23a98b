"""The DP session: one connection between a proxy and its zone control plane, as a sans-IO state machine.

The model is h11 and aioquic, as :class:`~kmesh.kds.session.KdsSession`: the session does no I/O and reads
no clock. Its adapter feeds it the bytes it reads (``receive_data``, ``receive_eof``, ``connection_lost``),
writes what ``data_to_send()`` returns, and calls ``handle_timer(now)`` when ``get_timer()`` says so. The
caller drains ``next_event()`` after each of those calls and answers with commands: ``connect`` (proxy),
``accept``/``reject`` (server), ``request_certificate``, ``issue_certificate``/``refuse_certificate``,
``send_config``, ``ack``/``nack``, ``report_health``, ``close``. The session moves config bytes and PEM
blobs; it never interprets a dataplane, a token, a certificate or a config.

Rules:

- Legal sequences are the table in :mod:`kmesh.dps._state`. A peer that breaks the protocol (a message not
  legal now, chunks of a config out of order, an answer to a config never sent, more unanswered configs
  than the window, an oversize frame, bytes that are not DP) never raises out of the session: the session
  sends ``Close{code, reason}`` and reports :class:`~kmesh.dps.events.ConnectionClosed` with the same code
  and reason. Misuse by the caller (sending before the handshake, acking a config it never received)
  raises :class:`~kmesh.errors.LocalProtocolError` and changes nothing. Once the session is closed,
  commands do nothing: the caller may be answering an event that was queued before ConnectionClosed.
- Handshake (server side): a Hello of the KDS protocol (a zone control plane that dialled a DP port) or of
  another DP version is rejected by the session itself with ``unsupported_protocol`` and a reason saying
  what to do; a Hello without a proxy type or document is rejected with ``bad_hello``. Everything else
  becomes :class:`~kmesh.dps.events.HelloReceived` for the caller to judge.
- Configs: ``send_config`` cuts a config into ``ConfigUpdate`` chunks that each fit the peer's frame limit;
  the proxy reassembles them (at most ``max_config_bytes``) and reports one ConfigReceived. At most
  ``window`` configs (the proxy's ``Hello.window``) may be unanswered at once: the server's caller checks
  ``config_writable`` before sending, and a server that sends beyond the window is closed by the proxy
  with ``flow_control``. Answers may come in any order; each names a version sent and not yet answered.
- Liveness: after the handshake each side sends a Heartbeat every ``heartbeat_interval_s`` (the server
  chooses it in Welcome). Any bytes received count as life; a peer from which nothing arrived in three
  consecutive intervals is closed with ``heartbeat_timeout`` (between three and four intervals after it
  went quiet, never before three). The handshake must finish within ``handshake_timeout_s`` of creation.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from typing import Final, final

import msgspec

from kmesh.dps._state import INITIAL_STATE, TRANSITIONS, Direction, Role, State
from kmesh.dps.events import (
    CertificateDenied,
    CertificateReceived,
    CertificateRequested,
    ConfigAcked,
    ConfigNacked,
    ConfigReceived,
    ConnectionClosed,
    Event,
    HealthReported,
    HeartbeatReceived,
    HelloReceived,
    Rejected,
    Welcomed,
)
from kmesh.dps.messages import (
    DEFAULT_CONFIG_WINDOW,
    PROTOCOL,
    Ack,
    CertificateIssued,
    CertificateRefused,
    CertificateRequest,
    Close,
    CloseCode,
    ConfigUpdate,
    DpMessage,
    HealthReport,
    Heartbeat,
    Hello,
    InboundHealth,
    Nack,
    Reject,
    Welcome,
)
from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.wire.codec import MessageCodec
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT_S",
    "DEFAULT_MAX_CONFIG_BYTES",
    "KDS_PROTOCOL_PREFIX",
    "MAX_HEARTBEAT_INTERVAL_S",
    "MAX_REASON_CHARS",
    "MIN_FRAME_BYTES",
    "MIN_HEARTBEAT_INTERVAL_S",
    "MISSED_HEARTBEATS",
    "PROXY_TYPES",
    "DpSession",
    "shorten",
]

DEFAULT_HANDSHAKE_TIMEOUT_S: Final = 30.0
# The largest config a proxy reassembles from chunks: bounds what a server can make it buffer.
DEFAULT_MAX_CONFIG_BYTES: Final = 256 * 1024 * 1024
MIN_FRAME_BYTES: Final = 4096
MISSED_HEARTBEATS: Final = 3
MIN_HEARTBEAT_INTERVAL_S: Final = 0.1
MAX_HEARTBEAT_INTERVAL_S: Final = 3600.0
MAX_REASON_CHARS: Final = 512
# A KDS Hello announces ``kds/<version>``: a zone control plane that dialled a DP port by mistake.
KDS_PROTOCOL_PREFIX: Final = "kds/"
PROXY_TYPES: Final = ("sidecar", "ingress", "egress")
# Room for a ConfigUpdate's bin32 header (an empty config encodes with a 2-byte one) and its chunk number.
_CHUNK_SLACK: Final = 16


def shorten(text: str) -> str:
    """``text`` cut to at most MAX_REASON_CHARS characters (close reasons and refusals)."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


@final
class DpSession:
    """One DP connection, proxy or server side; see the module docstring for the contract.

    ``now`` is the adapter's clock at creation (the handshake deadline counts from it). ``window`` is, on a
    proxy, how many configs it accepts unanswered (sent in its Hello). Raises ``ValueError`` for a setting
    out of range.
    """

    def __init__(
        self,
        role: Role,
        *,
        now: float,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
        window: int = DEFAULT_CONFIG_WINDOW,
    ) -> None:
        if max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {MIN_FRAME_BYTES}, got {max_frame_bytes}")
        if not handshake_timeout_s > 0:
            raise ValueError(f"handshake_timeout_s must be positive, got {handshake_timeout_s}")
        if max_config_bytes < 1:
            raise ValueError(f"max_config_bytes must be positive, got {max_config_bytes}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self._role = role
        self._state = INITIAL_STATE[role]
        self._codec = MessageCodec[DpMessage](DpMessage, max_frame_bytes=max_frame_bytes)
        self._max_frame = max_frame_bytes
        self._send_limit = max_frame_bytes
        self._window = window
        self._max_config = max_config_bytes
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
        # Configs sent (server) or received (proxy) and not answered yet, by version (a version may repeat).
        self._unanswered: Counter[str] = Counter()
        # Proxy: the config being reassembled, as (version, chunks so far, bytes so far).
        self._partial: tuple[str, list[bytes], int] | None = None

    # -- state ------------------------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is State.CLOSED

    @property
    def peer_hello(self) -> Hello | None:
        """Server side: the proxy's Hello, once received."""
        return self._peer_hello

    @property
    def peer_welcome(self) -> Welcome | None:
        """Proxy side: the server's Welcome, once received."""
        return self._peer_welcome

    @property
    def heartbeat_interval_s(self) -> float | None:
        return self._interval if self._state is State.ESTABLISHED else None

    @property
    def window(self) -> int:
        """How many configs may be unanswered at once (server: the proxy's announced window)."""
        return self._window

    @property
    def unanswered_configs(self) -> int:
        """Configs sent (server) or received (proxy) that were not acked or nacked yet."""
        return sum(self._unanswered.values())

    @property
    def config_writable(self) -> bool:
        """Server side: whether ``send_config`` may be called now (the window has room)."""
        return self._state is State.ESTABLISHED and self.unanswered_configs < self._window

    @property
    def pending_bytes(self) -> int:
        """Encoded bytes not yet taken by ``data_to_send``."""
        return len(self._out)

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
        """Proxy side: send ``hello``; the session fills in ``max_frame_bytes``. Raises LocalProtocolError
        for another protocol or proxy type, or a Hello without a document."""
        if not self._may_send(Hello):
            return
        if hello.protocol != PROTOCOL or hello.proxy_type not in PROXY_TYPES or not hello.dataplane:
            raise LocalProtocolError(
                f"a Hello needs protocol {PROTOCOL}, a proxy type ({', '.join(PROXY_TYPES)}) and the "
                "proxy's dataplane document",
                code=CloseCode.BAD_HELLO,
            )
        self._send(msgspec.structs.replace(hello, max_frame_bytes=self._max_frame, window=self._window))

    def accept(self, welcome: Welcome) -> None:
        """Server side, after HelloReceived: send ``welcome`` (``max_frame_bytes`` filled in). Raises
        LocalProtocolError for another protocol or a heartbeat interval out of range."""
        if not self._may_send(Welcome):
            return
        interval = welcome.heartbeat_interval_s
        if welcome.protocol != PROTOCOL or not _interval_ok(interval):
            raise LocalProtocolError(
                f"a Welcome needs protocol {PROTOCOL} and a heartbeat interval between "
                f"{MIN_HEARTBEAT_INTERVAL_S} and {MAX_HEARTBEAT_INTERVAL_S} s"
            )
        self._send(msgspec.structs.replace(welcome, max_frame_bytes=self._max_frame))
        self._establish(interval)

    def reject(self, code: str, reason: str) -> None:
        """Server side, after HelloReceived: refuse the proxy; the session is then closed."""
        if not self._may_send(Reject):
            return
        self._send(Reject(code=code, reason=shorten(reason)))
        self._finish(code, reason, by_peer=False)

    def close(self, code: str = CloseCode.NORMAL, reason: str = "") -> None:
        """End the session with a Close to the peer. Does nothing if it is already closed. A proxy closes
        with ``normal`` when it shuts down for good (the server then deregisters it)."""
        if self._state is State.CLOSED:
            return
        self._send(Close(code=code, reason=shorten(reason)))
        self._finish(code, reason, by_peer=False)

    # -- stream commands --------------------------------------------------------------------------------

    def request_certificate(self, csr_pem: bytes, *, request_id: str, mesh: str = "") -> None:
        """Proxy side: ask for a certificate for the key of ``csr_pem``."""
        if self._may_send(CertificateRequest):
            self._send(CertificateRequest(csr_pem=csr_pem, request_id=request_id, mesh=mesh))

    def issue_certificate(self, issued: CertificateIssued) -> None:
        """Server side: send a certificate (the answer to a CSR, or a re-signed one unasked)."""
        if self._may_send(CertificateIssued):
            self._send(issued)

    def refuse_certificate(
        self, code: str, reason: str, *, request_id: str, mesh: str = "", retry: bool = False
    ) -> None:
        """Server side: tell the proxy why its CSR ``request_id`` was not signed."""
        if self._may_send(CertificateRefused):
            refused = CertificateRefused(
                code=code, reason=shorten(reason), request_id=request_id, mesh=mesh, retry=retry
            )
            self._send(refused)

    def send_config(self, version: str, config: bytes) -> int:
        """Server side: send the config ``version`` (msgpack bytes); return the number of chunks.

        Raises LocalProtocolError before the handshake, for an empty version, or (``flow_control``) when
        the window is full: check ``config_writable`` first.
        """
        if not self._may_send(ConfigUpdate):
            return 0
        if not version:
            raise LocalProtocolError("a config needs a version", code=CloseCode.BAD_CONFIG_CHUNK)
        if self.unanswered_configs >= self._window:
            raise LocalProtocolError(
                f"{self._window} configs are already unanswered; wait for an Ack or Nack",
                code=CloseCode.FLOW_CONTROL,
            )
        overhead = len(self._codec.encode(ConfigUpdate(version=version, chunk=2**31, last=False)))
        piece = self._send_limit - (overhead - FRAME_HEADER_BYTES) - _CHUNK_SLACK
        if piece < 1:
            raise LocalProtocolError(
                f"version {version[:64]!r} is too long to fit a frame", code=CloseCode.FRAME_TOO_LARGE
            )
        starts = range(0, max(len(config), 1), piece)
        for number, start in enumerate(starts):
            chunk = config[start : start + piece]
            self._send(
                ConfigUpdate(version=version, config=chunk, chunk=number, last=number == len(starts) - 1)
            )
        self._unanswered[version] += 1
        return len(starts)

    def ack(self, version: str) -> None:
        """Proxy side: the config ``version`` is applied. Raises LocalProtocolError for a version that
        was not received or is already answered."""
        if self._may_send(Ack):
            self._answer_received(version)
            self._send(Ack(version=version))

    def nack(self, version: str, reason: str) -> None:
        """Proxy side: the config ``version`` was refused, and why. Raises as ``ack``."""
        if self._may_send(Nack):
            self._answer_received(version)
            self._send(Nack(version=version, reason=shorten(reason)))

    def report_health(self, inbounds: Iterable[InboundHealth]) -> None:
        """Proxy side: the readiness of its inbounds."""
        if self._may_send(HealthReport):
            self._send(HealthReport(inbounds=list(inbounds)))

    def _answer_received(self, version: str) -> None:
        if self._unanswered[version] <= 0:
            raise LocalProtocolError(
                f"no received config {version[:64]!r} awaits an answer", code=CloseCode.UNKNOWN_VERSION
            )
        self._settle(version)

    def _settle(self, version: str) -> None:
        self._unanswered[version] -= 1
        if self._unanswered[version] <= 0:
            del self._unanswered[version]

    # -- receiving --------------------------------------------------------------------------------------

    def _receive(self, message: DpMessage) -> None:
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
            case ConfigUpdate():
                self._on_config(message)
            case Ack():
                self._on_answer(message.version, None)
            case Nack():
                self._on_answer(message.version, shorten(message.reason))
            case HealthReport():
                self._events.append(HealthReported(tuple(message.inbounds)))
            case CertificateRequest():
                self._events.append(CertificateRequested(message.csr_pem, message.request_id, message.mesh))
            case CertificateIssued():
                self._events.append(CertificateReceived(message))
            case CertificateRefused():
                self._events.append(
                    CertificateDenied(
                        message.code, shorten(message.reason), message.request_id, message.mesh, message.retry
                    )
                )
            case Heartbeat():
                self._events.append(HeartbeatReceived(message.sent_at))
            case Hello():
                self._on_hello(message)
            case Welcome():
                self._on_welcome(message)
            case Reject():
                self._events.append(Rejected(message.code, shorten(message.reason)))
                self._finish(message.code, message.reason, by_peer=True)
            case Close():
                graceful = message.code == CloseCode.NORMAL
                self._finish(message.code, message.reason, by_peer=True, graceful=graceful)

    def _on_hello(self, hello: Hello) -> None:
        if hello.protocol.startswith(KDS_PROTOCOL_PREFIX):
            self.reject(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this is the DP server of a zone control plane, which accepts only proxies (got protocol "
                f"{hello.protocol!r}); zone control planes connect to the global control plane's KDS port",
            )
            return
        if hello.protocol != PROTOCOL:
            self.reject(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this zone control plane speaks {PROTOCOL}; the proxy offered {hello.protocol!r}: run a "
                "proxy of a version this control plane supports",
            )
            return
        if hello.proxy_type not in PROXY_TYPES:
            self.reject(
                CloseCode.BAD_HELLO,
                f"proxy type {hello.proxy_type[:64]!r} is not one of {', '.join(PROXY_TYPES)}",
            )
            return
        if not hello.dataplane:
            self.reject(
                CloseCode.BAD_HELLO,
                "the Hello carries no resource document: give the proxy its Dataplane (--dataplane-file)",
            )
            return
        if hello.max_frame_bytes < MIN_FRAME_BYTES or hello.window < 1:
            raise RemoteProtocolError(
                f"the proxy announced max_frame_bytes={hello.max_frame_bytes} and window={hello.window}; "
                f"they must be at least {MIN_FRAME_BYTES} and 1",
                code=CloseCode.BAD_HELLO,
            )
        self._send_limit = min(self._max_frame, hello.max_frame_bytes)
        self._window = hello.window
        self._peer_hello = hello
        self._events.append(HelloReceived(hello))

    def _on_welcome(self, welcome: Welcome) -> None:
        if welcome.protocol != PROTOCOL:
            raise RemoteProtocolError(
                f"the control plane answered with protocol {welcome.protocol!r}; "
                f"this proxy speaks {PROTOCOL}",
                code=CloseCode.UNSUPPORTED_PROTOCOL,
            )
        if not _interval_ok(welcome.heartbeat_interval_s):
            raise RemoteProtocolError(
                f"heartbeat interval {welcome.heartbeat_interval_s!r} s is not between "
                f"{MIN_HEARTBEAT_INTERVAL_S} and {MAX_HEARTBEAT_INTERVAL_S} s",
                code=CloseCode.BAD_WELCOME,
            )
        if welcome.max_frame_bytes < MIN_FRAME_BYTES:
            raise RemoteProtocolError(
                f"the control plane announced max_frame_bytes={welcome.max_frame_bytes}; it must be at "
                f"least {MIN_FRAME_BYTES}",
                code=CloseCode.BAD_WELCOME,
            )
        self._send_limit = min(self._max_frame, welcome.max_frame_bytes)
        self._peer_welcome = welcome
        self._establish(welcome.heartbeat_interval_s)
        self._events.append(Welcomed(welcome))

    def _on_config(self, message: ConfigUpdate) -> None:
        partial = self._partial
        if partial is None:
            if message.chunk != 0:
                raise RemoteProtocolError(
                    f"config {message.version[:64]!r} started at chunk {message.chunk}, not 0",
                    code=CloseCode.BAD_CONFIG_CHUNK,
                )
            if self.unanswered_configs >= self._window:
                raise RemoteProtocolError(
                    f"the control plane sent a config while {self._window} were unanswered",
                    code=CloseCode.FLOW_CONTROL,
                )
            partial = (message.version, [], 0)
        version, parts, size = partial
        if message.version != version or message.chunk != len(parts):
            raise RemoteProtocolError(
                f"chunk {message.chunk} of config {message.version[:64]!r} arrived while chunk {len(parts)} "
                f"of config {version[:64]!r} was expected",
                code=CloseCode.BAD_CONFIG_CHUNK,
            )
        size += len(message.config)
        if size > self._max_config:
            raise RemoteProtocolError(
                f"config {version[:64]!r} is larger than {self._max_config} bytes (max_config_bytes)",
                code=CloseCode.CONFIG_TOO_LARGE,
            )
        parts.append(message.config)
        if not message.last:
            self._partial = (version, parts, size)
            return
        self._partial = None
        self._unanswered[version] += 1
        self._events.append(ConfigReceived(version, b"".join(parts)))

    def _on_answer(self, version: str, reason: str | None) -> None:
        if self._unanswered[version] <= 0:
            raise RemoteProtocolError(
                f"the proxy answered config {version[:64]!r}, which awaits no answer",
                code=CloseCode.UNKNOWN_VERSION,
            )
        self._settle(version)
        self._events.append(ConfigAcked(version) if reason is None else ConfigNacked(version, reason))

    # -- sending ----------------------------------------------------------------------------------------

    def _may_send(self, kind: type[DpMessage]) -> bool:
        """Whether a command may go ahead: False once closed, so the command does nothing (its caller may
        be reacting to an event queued before ConnectionClosed); LocalProtocolError if it is illegal now."""
        if self._state is State.CLOSED:
            return False
        self._check_send(kind)
        return True

    def _check_send(self, kind: type[DpMessage]) -> State:
        next_state = TRANSITIONS.get((self._role, self._state, Direction.SEND, kind))
        if next_state is None:
            raise LocalProtocolError(
                f"the {self._role.value} side cannot send {kind.__name__} in state {self._state.value}",
                code=CloseCode.UNEXPECTED_MESSAGE,
            )
        return next_state

    def _send(self, message: DpMessage) -> None:
        next_state = self._check_send(type(message))
        self._out += self._encode(message)
        self._state = next_state

    def _encode(self, message: DpMessage) -> bytes:
        frame = self._codec.encode(message)
        if len(frame) - FRAME_HEADER_BYTES > self._send_limit:
            raise LocalProtocolError(
                f"{type(message).__name__} encodes to {len(frame) - FRAME_HEADER_BYTES} bytes, more than "
                f"the peer accepts ({self._send_limit})",
                code=CloseCode.FRAME_TOO_LARGE,
            )
        return frame

    # -- lifecycle --------------------------------------------------------------------------------------

    def _establish(self, interval: float) -> None:
        self._interval = interval
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

    def _finish(self, code: str, reason: str, *, by_peer: bool, graceful: bool = False) -> None:
        self._state = State.CLOSED
        self._partial = None
        self._unanswered.clear()
        self._events.append(ConnectionClosed(str(code), shorten(reason), by_peer, graceful))


def _interval_ok(interval: float) -> bool:
    return math.isfinite(interval) and MIN_HEARTBEAT_INTERVAL_S <= interval <= MAX_HEARTBEAT_INTERVAL_S
