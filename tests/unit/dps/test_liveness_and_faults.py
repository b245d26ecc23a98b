"""Heartbeats on a fake clock and the heartbeat timeout; remote faults end in one clear ConnectionClosed
and a Close to the peer, never an exception; the transition table decides what is legal (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.dps import (
    Ack,
    CertificateIssued,
    CertificateRefused,
    CertificateRequest,
    Close,
    CloseCode,
    ConfigUpdate,
    ConnectionClosed,
    DpMessage,
    DpSession,
    HealthReport,
    Heartbeat,
    HeartbeatReceived,
    Nack,
    Reject,
    Role,
    State,
    Welcome,
)
from kmesh.dps._state import TRANSITIONS, Direction
from kmesh.errors import LocalProtocolError

from .peers import Peer, codec, established, hello, pump

INTERVAL = 10.0

ISSUED = CertificateIssued(cert_pem=b"c", ca_bundle_pem=b"b", not_after=2.0, renew_at=1.0)
SAMPLES: list[DpMessage] = [
    hello(),
    Welcome(),
    Reject(code="token_expired", reason="expired"),
    CertificateRequest(csr_pem=b"csr", request_id="r"),
    ISSUED,
    CertificateRefused(code="ca_unavailable"),
    ConfigUpdate(version="v1", config=b"x"),
    Ack(version="v1"),
    Nack(version="v1", reason="no"),
    HealthReport(),
    Heartbeat(sent_at=1.0),
    Close(code="going_away"),
]


def fire_due(peer: Peer, now: float) -> None:
    timer = peer.session.get_timer()
    if timer is not None and timer <= now:
        peer.session.handle_timer(now)


def test_heartbeats_keep_an_idle_connection_alive() -> None:
    proxy, server = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    now = 0.0
    for _ in range(50):
        timers = [t for p in (proxy, server) if (t := p.session.get_timer()) is not None]
        now = min(timers)
        fire_due(proxy, now)
        fire_due(server, now)
        pump(proxy, server)
    assert now >= 20 * INTERVAL
    assert proxy.closed is None
    assert server.closed is None
    assert len(proxy.of(HeartbeatReceived)) >= 20
    assert len(server.of(HeartbeatReceived)) >= 20


def test_a_silent_proxy_is_dropped_after_three_missed_intervals() -> None:
    proxy, server = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    last_heard = 0.0
    ticks = []
    while server.closed is None:
        now = server.session.get_timer()
        assert now is not None
        assert now - last_heard <= 4 * INTERVAL, "a dead peer must be detected within four intervals"
        server.session.handle_timer(now)
        server.take()
        ticks.append(now)
    closed = server.closed
    assert closed.code == CloseCode.HEARTBEAT_TIMEOUT
    assert "3 heartbeat intervals" in closed.reason
    assert ticks[-1] - last_heard >= 3 * INTERVAL
    # The proxy learns why, if the Close gets through.
    proxy.session.receive_data(server.session.data_to_send())
    proxy.take()
    assert proxy.closed == ConnectionClosed(closed.code, closed.reason, by_peer=True)


def test_any_traffic_counts_as_life() -> None:
    proxy, server = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    now = 0.0
    for i in range(10):
        now = (i + 1) * INTERVAL
        # Only the server's timer runs: the proxy never beats, but its acks keep it alive.
        server.session.send_config(f"v{i}", b"x")
        pump(proxy, server)
        proxy.session.ack(f"v{i}")
        pump(proxy, server)
        fire_due(server, now)
        server.take()
    assert server.closed is None


def test_a_graceful_close_is_marked_so() -> None:
    proxy, server = established()
    proxy.session.close()
    pump(proxy, server)
    assert server.closed == ConnectionClosed(CloseCode.NORMAL, "", by_peer=True, graceful=True)
    assert proxy.closed == ConnectionClosed(CloseCode.NORMAL, "", by_peer=False, graceful=False)


def test_going_away_is_not_graceful() -> None:
    proxy, server = established()
    proxy.session.close(CloseCode.GOING_AWAY, "restarting")
    pump(proxy, server)
    assert server.closed is not None
    assert not server.closed.graceful
    assert server.closed.reason == "restarting"


def test_garbage_closes_with_bad_message() -> None:
    proxy, server = established()
    server.session.receive_data(b"\x00\x00\x00\x05hello")
    server.take()
    assert server.closed is not None
    assert server.closed.code == "bad_message"
    pump(proxy, server)
    assert proxy.closed is not None
    assert proxy.closed.code == "bad_message"
    assert proxy.closed.by_peer


def test_an_oversize_frame_closes_before_its_body_arrives() -> None:
    server = DpSession(Role.SERVER, now=0.0, max_frame_bytes=4096)
    server.receive_data(b"\x7f\xff\xff\xff")
    closed = server.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "frame_too_large"


def test_a_truncated_stream_is_a_lost_connection() -> None:
    server = DpSession(Role.SERVER, now=0.0)
    server.receive_data(codec().encode(hello())[:10])
    server.receive_eof()
    closed = server.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "truncated_frame"
    assert closed.by_peer
    assert server.data_to_send() == b""


def test_commands_after_close_do_nothing() -> None:
    proxy, server = established()
    server.session.connection_lost("reset by peer")
    server.take()
    assert server.closed is not None
    assert server.closed.code == CloseCode.CONNECTION_LOST
    server.session.send_config("v1", b"x")
    server.session.issue_certificate(ISSUED)
    server.session.close()
    assert server.session.data_to_send() == b""
    assert server.session.next_event() is None
    assert proxy.closed is None


def test_sending_before_the_handshake_is_a_local_error() -> None:
    proxy = DpSession(Role.PROXY, now=0.0)
    with pytest.raises(LocalProtocolError):
        proxy.report_health([])
    server = DpSession(Role.SERVER, now=0.0)
    with pytest.raises(LocalProtocolError):
        server.accept(Welcome())
    with pytest.raises(LocalProtocolError):
        server.send_config("v1", b"x")


def _session_in(role: Role, state: State) -> DpSession:
    session = DpSession(role, now=0.0)
    wire = codec()
    if role is Role.PROXY:
        if state is not State.IDLE:
            session.connect(hello())
        if state is State.ESTABLISHED:
            session.receive_data(wire.encode(Welcome()))
    else:
        if state is not State.AWAITING_HELLO:
            session.receive_data(wire.encode(hello()))
        if state is State.ESTABLISHED:
            session.accept(Welcome())
    while session.next_event() is not None:
        pass
    session.data_to_send()
    assert session.state is state
    return session


LIVE_STATES = [
    (Role.PROXY, State.IDLE),
    (Role.PROXY, State.HELLO_SENT),
    (Role.PROXY, State.ESTABLISHED),
    (Role.SERVER, State.AWAITING_HELLO),
    (Role.SERVER, State.HELLO_RECEIVED),
    (Role.SERVER, State.ESTABLISHED),
]


@pytest.mark.parametrize(("role", "state"), LIVE_STATES, ids=lambda v: v.value)
@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_in_every_state_follows_the_table(role: Role, state: State, message: DpMessage) -> None:
    session = _session_in(role, state)
    legal = (role, state, Direction.RECEIVE, type(message)) in TRANSITIONS
    session.receive_data(codec().encode(message))
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    closes = [e for e in events if isinstance(e, ConnectionClosed)]
    if not legal:
        assert [c.code for c in closes] == [CloseCode.UNEXPECTED_MESSAGE]
        assert session.state is State.CLOSED
    else:
        assert all(c.code != CloseCode.UNEXPECTED_MESSAGE for c in closes)


@given(
    st.sampled_from(LIVE_STATES),
    st.lists(st.sampled_from(SAMPLES) | st.binary(max_size=40), max_size=12),
)
def test_any_input_ends_in_at_most_one_close_and_never_raises(
    start: tuple[Role, State], inputs: list[DpMessage | bytes]
) -> None:
    role, state = start
    session = _session_in(role, state)
    wire = codec()
    events = []
    for item in inputs:
        session.receive_data(item if isinstance(item, bytes) else wire.encode(item))
        while (event := session.next_event()) is not None:
            events.append(event)
    closes = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(closes) <= 1
    if closes:
        assert events[-1] is closes[0]
        assert session.state is State.CLOSED
        assert session.get_timer() is None
