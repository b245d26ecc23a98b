"""The DP handshake in memory: admission, refusals by the session and by its caller, and the KDS
cross-dial refusals both ways (a proxy dialling the global, a zone control plane dialling a DP port)."""

from __future__ import annotations

import msgspec
import pytest

from kmesh.dps import (
    PROTOCOL,
    CloseCode,
    ConnectionClosed,
    DpSession,
    Hello,
    HelloReceived,
    Rejected,
    Role,
    State,
    Welcome,
    Welcomed,
)
from kmesh.errors import LocalProtocolError
from kmesh.kds import KdsSession
from kmesh.kds import Role as KdsRole
from kmesh.kds.events import ConnectionClosed as KdsClosed
from kmesh.kds.events import Rejected as KdsRejected
from kmesh.kds.messages import Hello as KdsHello

from .peers import DOC, bytewise, codec, established, hello, pair, pump


def test_a_welcomed_proxy_and_its_server_are_established() -> None:
    proxy, server = established()
    assert proxy.session.state is State.ESTABLISHED
    assert server.session.state is State.ESTABLISHED
    (received,) = server.of(HelloReceived)
    assert received.hello.dataplane == DOC
    assert received.hello.proxy_type == "sidecar"
    assert received.hello.token == "secret-token"
    (welcomed,) = proxy.of(Welcomed)
    assert (welcomed.welcome.mesh, welcomed.welcome.name, welcomed.welcome.zone) == (
        "default",
        "web-1",
        "zone-1",
    )
    assert proxy.session.heartbeat_interval_s == 10.0
    assert server.session.peer_hello is not None
    assert proxy.session.peer_welcome is not None


def test_the_handshake_survives_one_byte_at_a_time() -> None:
    proxy, server = pair()
    proxy.session.connect(hello())
    pump(proxy, server, split=bytewise)
    server.session.accept(Welcome(heartbeat_interval_s=5.0))
    pump(proxy, server, split=bytewise)
    assert proxy.of(Welcomed)
    assert server.session.state is State.ESTABLISHED


def test_the_token_never_shows_in_a_hello_repr() -> None:
    text = repr(hello(token="very-secret-token-value"))
    assert "very-secret-token-value" not in text
    assert "<redacted>" in text


def test_the_servers_refusal_reaches_the_proxy_with_its_reason() -> None:
    proxy, server = pair()
    proxy.session.connect(hello())
    pump(proxy, server)
    server.session.reject("token_expired", "token expired at 2024-01-01T00:00:00Z; generate a new token")
    pump(proxy, server)
    assert proxy.of(Rejected) == [
        Rejected("token_expired", "token expired at 2024-01-01T00:00:00Z; generate a new token")
    ]
    assert proxy.closed == ConnectionClosed(
        "token_expired", "token expired at 2024-01-01T00:00:00Z; generate a new token", by_peer=True
    )
    assert server.closed is not None
    assert not server.closed.by_peer
    assert proxy.session.get_timer() is None


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"protocol": "dp/2"}, CloseCode.UNSUPPORTED_PROTOCOL, "speaks dp/1"),
        ({"proxy_type": "gateway"}, CloseCode.BAD_HELLO, "is not one of sidecar, ingress, egress"),
        ({"dataplane": {}}, CloseCode.BAD_HELLO, "--dataplane-file"),
    ],
)
def test_the_session_refuses_hellos_no_caller_could_accept(
    changes: dict[str, object], code: str, words: str
) -> None:
    server = DpSession(Role.SERVER, now=0.0)
    # Encoded by hand: connect() itself refuses to send such a Hello.
    server.receive_data(codec().encode(msgspec.structs.replace(hello(), **changes)))
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
    assert not [e for e in events if isinstance(e, HelloReceived)]
    (closed,) = events
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == code
    assert words in closed.reason


def test_connect_refuses_a_hello_it_would_not_accept_itself() -> None:
    proxy = DpSession(Role.PROXY, now=0.0)
    with pytest.raises(LocalProtocolError):
        proxy.connect(hello(proxy_type="router"))
    with pytest.raises(LocalProtocolError):
        proxy.connect(hello(dataplane={}))
    assert proxy.state is State.IDLE
    assert proxy.data_to_send() == b""


def test_a_proxy_that_dials_the_global_is_told_to_use_its_zone() -> None:
    """A DP Hello arrives at the global's KDS session: it decodes there and is refused with a reason."""
    proxy = DpSession(Role.PROXY, now=0.0)
    glob = KdsSession(KdsRole.GLOBAL, now=0.0)
    proxy.connect(hello())
    glob.receive_data(proxy.data_to_send())
    kds_events = []
    while (event := glob.next_event()) is not None:
        kds_events.append(event)
    (kds_closed,) = kds_events
    assert isinstance(kds_closed, KdsClosed)
    proxy.receive_data(glob.data_to_send())
    rejected, closed = proxy.next_event(), proxy.next_event()
    assert isinstance(rejected, Rejected)
    assert rejected.code == "unsupported_protocol"
    assert "proxies must connect to their zone control plane" in rejected.reason
    assert isinstance(closed, ConnectionClosed)
    assert proxy.closed


def test_a_zone_control_plane_that_dials_a_dp_port_is_told_where_to_go() -> None:
    zone = KdsSession(KdsRole.ZONE, now=0.0)
    server = DpSession(Role.SERVER, now=0.0)
    zone.connect(KdsHello(zone="zone-1", token="zone-token"))
    server.receive_data(zone.data_to_send())
    closed = server.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == CloseCode.UNSUPPORTED_PROTOCOL
    zone.receive_data(server.data_to_send())
    rejected = zone.next_event()
    assert isinstance(rejected, KdsRejected)
    assert "DP server of a zone control plane" in rejected.reason
    assert "KDS port" in rejected.reason
    assert isinstance(zone.next_event(), KdsClosed)


@pytest.mark.parametrize(
    ("welcome", "code"),
    [
        (Welcome(protocol="dp/9"), CloseCode.UNSUPPORTED_PROTOCOL),
        (Welcome(heartbeat_interval_s=0.0), CloseCode.BAD_WELCOME),
        (Welcome(max_frame_bytes=10), CloseCode.BAD_WELCOME),
    ],
)
def test_a_proxy_closes_on_a_welcome_it_cannot_honour(welcome: Welcome, code: str) -> None:
    proxy = DpSession(Role.PROXY, now=0.0)
    proxy.connect(hello())
    proxy.data_to_send()
    proxy.receive_data(codec().encode(welcome))
    closed = proxy.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == code
    assert not closed.by_peer
    assert proxy.data_to_send(), "the proxy tells the server why it leaves"


def test_accept_refuses_a_welcome_that_breaks_the_protocol() -> None:
    _proxy, server = pair()
    server.session.receive_data(codec().encode(hello()))
    server.take()
    with pytest.raises(LocalProtocolError):
        server.session.accept(Welcome(heartbeat_interval_s=-1.0))
    with pytest.raises(LocalProtocolError):
        server.session.accept(Welcome(protocol="dp/0"))
    assert server.session.state is State.HELLO_RECEIVED


def test_the_frame_limit_is_the_smaller_of_both_sides() -> None:
    proxy, server = established(proxy_kwargs={"max_frame_bytes": 8192})
    assert server.session.peer_hello is not None
    assert server.session.peer_hello.max_frame_bytes == 8192
    # A config larger than 8 KiB arrives in several chunks, each within the proxy's limit.
    chunks = server.session.send_config("v1", b"x" * 50_000)
    assert chunks > 5
    pump(proxy, server)
    assert proxy.closed is None


def test_hello_carries_the_protocol_and_window() -> None:
    proxy, server = established(proxy_kwargs={"window": 3})
    assert server.session.peer_hello is not None
    assert server.session.peer_hello.protocol == PROTOCOL
    assert server.session.window == 3
    assert proxy.session.window == 3


def test_the_handshake_times_out() -> None:
    server = DpSession(Role.SERVER, now=100.0, handshake_timeout_s=5.0)
    assert server.get_timer() == 105.0
    server.handle_timer(104.0)
    assert server.next_event() is None
    server.handle_timer(105.0)
    closed = server.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.code == CloseCode.HANDSHAKE_TIMEOUT
    assert "5 s" in closed.reason
    assert server.get_timer() is None


def test_hello_fields_all_default_so_a_kds_hello_decodes() -> None:
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(KdsHello(zone="z")), type=Hello)
    assert decoded.protocol == "kds/1"
    assert decoded.dataplane == {}
