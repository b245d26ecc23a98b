"""Hello / Welcome / Reject: what each side sees, what it agrees on, and how a bad handshake ends."""

from __future__ import annotations

import msgspec
import pytest

from kmesh.errors import LocalProtocolError
from kmesh.kds import (
    ConnectionClosed,
    HelloReceived,
    KdsSession,
    Rejected,
    Role,
    State,
    Welcomed,
)
from kmesh.kds.messages import Close, Hello, KdsMessage, Reject, Welcome
from kmesh.wire.codec import MessageCodec

from .peers import established, pump, zone_and_global


def test_handshake_establishes_both_sides() -> None:
    zone, glob = established(
        welcome=Welcome(global_instance_id="g-7", cp_version="1.2", heartbeat_interval_s=5)
    )
    assert zone.session.state is State.ESTABLISHED
    assert glob.session.state is State.ESTABLISHED
    hello = glob.events[0]
    assert isinstance(hello, HelloReceived)
    assert (hello.hello.zone, hello.hello.instance_id, hello.hello.cp_version) == (
        "zone-1",
        "zone-cp-1",
        "test",
    )
    welcomed = zone.events[0]
    assert isinstance(welcomed, Welcomed)
    assert welcomed.welcome.global_instance_id == "g-7"
    assert zone.session.heartbeat_interval_s == glob.session.heartbeat_interval_s == 5
    assert zone.session.peer_welcome == welcomed.welcome
    assert glob.session.peer_hello == hello.hello


def test_reject_ends_both_sides_with_the_reason() -> None:
    zone, glob = zone_and_global(token="stolen")
    pump(zone, glob)
    reason = "zone 'zone-1' presented an invalid token"
    assert zone.events == [
        Rejected("unauthorized", reason),
        ConnectionClosed("unauthorized", reason, by_peer=True),
    ]
    assert glob.events[-1] == ConnectionClosed("unauthorized", reason, by_peer=False)
    assert zone.session.state is glob.session.state is State.CLOSED
    assert zone.session.get_timer() is None


def test_the_smaller_window_and_frame_limit_win() -> None:
    zone, glob = established(
        zone_kwargs={"max_unacked": 3, "max_frame_bytes": 8192},
        global_kwargs={"max_unacked": 16, "max_frame_bytes": 1 << 20},
    )
    assert glob.session.window == 3
    assert zone.session.window == 3
    # Each side announced its own settings, whatever the caller put into Hello/Welcome.
    assert glob.session.peer_hello is not None
    assert glob.session.peer_hello.max_frame_bytes == 8192
    assert zone.session.peer_welcome is not None
    assert zone.session.peer_welcome.window == 16


def test_an_unknown_protocol_version_is_rejected_by_the_session() -> None:
    glob = KdsSession(Role.GLOBAL, now=0.0)
    peer = MessageCodec[KdsMessage](KdsMessage)
    glob.receive_data(peer.encode(Hello(zone="z", protocol="kds/99")))
    closed = glob.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "unsupported_protocol"
    assert "kds/99" in closed.reason
    (reject,) = peer.feed(glob.data_to_send())
    assert reject == Reject(code="unsupported_protocol", reason=closed.reason)


@pytest.mark.parametrize(
    ("welcome", "code"),
    [
        (Welcome(heartbeat_interval_s=0.0), "bad_welcome"),
        (Welcome(heartbeat_interval_s=float("inf")), "bad_welcome"),
        (Welcome(window=0), "bad_welcome"),
        (Welcome(max_frame_bytes=100), "bad_welcome"),
        (Welcome(protocol="kds/2"), "unsupported_protocol"),
    ],
)
def test_a_bad_welcome_closes_the_zone(welcome: Welcome, code: str) -> None:
    zone = KdsSession(Role.ZONE, now=0.0)
    zone.connect(Hello(zone="z"))
    peer = MessageCodec[KdsMessage](KdsMessage)
    zone.receive_data(peer.encode(welcome))
    closed = zone.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert (closed.code, closed.by_peer) == (code, False)
    # The global hears why.
    messages = peer.feed(zone.data_to_send())
    assert [type(m).__name__ for m in messages] == ["Hello", "Close"]
    assert messages[1] == Close(code=code, reason=closed.reason)


def test_a_hello_from_a_newer_zone_with_unknown_fields_is_accepted() -> None:
    glob = KdsSession(Role.GLOBAL, now=0.0)
    newer = {"kind": "Hello", "zone": "zone-9", "token": "t", "compression": "zstd", "shards": [1, 2]}
    body = msgspec.msgpack.encode(newer)
    glob.receive_data(len(body).to_bytes(4, "big") + body)
    event = glob.next_event()
    assert isinstance(event, HelloReceived)
    assert event.hello.zone == "zone-9"


def test_hello_repr_never_shows_the_token() -> None:
    hello = Hello(zone="z", token="s3cr3t-zone-token")
    assert "s3cr3t" not in repr(hello)
    assert "s3cr3t" not in str(HelloReceived(hello))


def test_handshake_timeout_closes_a_silent_zone_connection() -> None:
    glob = KdsSession(Role.GLOBAL, now=100.0, handshake_timeout_s=5.0)
    assert glob.get_timer() == 105.0
    glob.handle_timer(104.9)
    assert glob.state is State.AWAITING_HELLO
    assert glob.next_event() is None
    glob.handle_timer(105.0)
    closed = glob.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "handshake_timeout"
    assert glob.get_timer() is None


def test_handshake_timeout_also_bounds_a_global_that_never_answers() -> None:
    zone = KdsSession(Role.ZONE, now=0.0, handshake_timeout_s=2.0)
    zone.connect(Hello(zone="z"))
    zone.handle_timer(2.5)
    closed = zone.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == "handshake_timeout"
    codec = MessageCodec[KdsMessage](KdsMessage)
    assert [type(m).__name__ for m in codec.feed(zone.data_to_send())] == ["Hello", "Close"]


def test_handshake_commands_refuse_the_wrong_role_or_state() -> None:
    zone = KdsSession(Role.ZONE, now=0.0)
    glob = KdsSession(Role.GLOBAL, now=0.0)
    with pytest.raises(LocalProtocolError, match="global side cannot send Hello"):
        glob.connect(Hello(zone="z"))
    with pytest.raises(LocalProtocolError, match="zone side cannot send Welcome"):
        zone.accept(Welcome())
    with pytest.raises(LocalProtocolError, match="cannot send Reject in state awaiting_hello"):
        glob.reject("no", "not yet")
    with pytest.raises(LocalProtocolError, match="speaks kds/1"):
        zone.connect(Hello(zone="z", protocol="kds/0"))
    zone.connect(Hello(zone="z"))
    with pytest.raises(LocalProtocolError, match="cannot send Hello in state hello_sent"):
        zone.connect(Hello(zone="z"))
    # Nothing above changed either session.
    assert glob.state is State.AWAITING_HELLO
    assert zone.state is State.HELLO_SENT


def test_accept_refuses_a_heartbeat_interval_out_of_range() -> None:
    zone, glob = zone_and_global()
    glob.session.receive_data(zone.session.data_to_send())
    with pytest.raises(LocalProtocolError, match="heartbeat interval"):
        glob.session.accept(Welcome(heartbeat_interval_s=0.001))
    assert glob.session.state is State.HELLO_RECEIVED


@pytest.mark.parametrize(
    "kwargs",
    [{"max_frame_bytes": 100}, {"max_unacked": 0}, {"handshake_timeout_s": 0.0}, {"max_record_bytes": 0}],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        KdsSession(Role.ZONE, now=0.0, **kwargs)  # type: ignore[arg-type]
