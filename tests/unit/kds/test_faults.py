"""Remote faults end in a clear ConnectionClosed and a Close to the peer, never an exception; the
transition table decides what is legal, and Hypothesis drives it."""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.errors import LocalProtocolError
from kmesh.kds import ConnectionClosed, Event, KdsSession, ResourcesReceived, Role, State
from kmesh.kds._state import TRANSITIONS, Direction
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
from kmesh.wire.codec import MessageCodec

from .peers import make_record

SAMPLES: dict[type, KdsMessage] = {
    Hello: Hello(zone="zone-1"),
    Welcome: Welcome(),
    Reject: Reject(code="unauthorized", reason="bad token"),
    Subscribe: Subscribe(type="Dataplane"),
    Resources: Resources(type="Mesh", nonce="n-1"),
    SpecPart: SpecPart(type="Mesh", nonce="n-1", data=b"abc"),
    Ack: Ack(nonce="1"),
    Nack: Nack(nonce="1"),
    Heartbeat: Heartbeat(sent_at=1.0),
    Close: Close(code="going_away", reason="shutting down"),
}


def peer() -> MessageCodec[KdsMessage]:
    return MessageCodec[KdsMessage](KdsMessage)


def session_in(role: Role, state: State, **kwargs: int) -> KdsSession:
    """A session brought to ``state`` by a scripted peer; an established zone has subscribed to Mesh."""
    session = KdsSession(role, now=0.0, **kwargs)
    codec = peer()
    if role is Role.ZONE:
        if state is not State.IDLE:
            session.connect(Hello(zone="zone-1"))
        if state is State.ESTABLISHED:
            session.receive_data(codec.encode(Welcome()))
            session.subscribe("Mesh", {})
    else:
        if state is not State.AWAITING_HELLO:
            session.receive_data(codec.encode(Hello(zone="zone-1")))
        if state is State.ESTABLISHED:
            session.accept(Welcome())
    assert session.state is state
    drain(session)
    session.data_to_send()
    return session


def drain(session: KdsSession) -> list[Event]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def closed_with(session: KdsSession, code: str) -> ConnectionClosed:
    """Assert the session closed itself with ``code``, told the peer, and said nothing after."""
    events = drain(session)
    assert events, "the session reported nothing"
    closed = events[-1]
    assert isinstance(closed, ConnectionClosed), events
    assert not any(isinstance(e, ConnectionClosed) for e in events[:-1])
    assert (closed.code, closed.by_peer) == (code, False), closed
    assert closed.reason
    sent = peer().feed(session.data_to_send())
    assert sent == [Close(code=code, reason=closed.reason)]
    assert session.state is State.CLOSED
    assert session.get_timer() is None
    return closed


REACHABLE = [
    (Role.ZONE, State.IDLE),
    (Role.ZONE, State.HELLO_SENT),
    (Role.ZONE, State.ESTABLISHED),
    (Role.GLOBAL, State.AWAITING_HELLO),
    (Role.GLOBAL, State.HELLO_RECEIVED),
    (Role.GLOBAL, State.ESTABLISHED),
]


@pytest.mark.parametrize(
    ("role", "state", "kind"), [(r, s, k) for (r, s), k in itertools.product(REACHABLE, SAMPLES)]
)
def test_every_message_not_in_the_table_closes_with_unexpected_message(
    role: Role, state: State, kind: type
) -> None:
    session = session_in(role, state)
    session.receive_data(peer().encode(SAMPLES[kind]))
    legal = (role, state, Direction.RECEIVE, kind) in TRANSITIONS
    if not legal:
        closed = closed_with(session, "unexpected_message")
        assert kind.__name__ in closed.reason
        assert state.value in closed.reason
    else:
        events = drain(session)
        assert not any(isinstance(e, ConnectionClosed) and e.code == "unexpected_message" for e in events)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.sampled_from(sorted(SAMPLES, key=lambda k: k.__name__))),
        st.tuples(st.just("send"), st.sampled_from([Hello, Welcome, Reject, Close, Heartbeat])),
    ),
    max_size=12,
)


@given(st.sampled_from(Role), actions)
def test_the_session_follows_the_transition_table(role: Role, script: list[tuple[str, type]]) -> None:
    session = KdsSession(role, now=0.0)
    codec = peer()
    model = session.state
    for action, kind in script:
        if model is State.CLOSED:
            break
        before = session.state
        assert before is model
        drain(session)
        session.data_to_send()
        if action == "receive":
            session.receive_data(codec.encode(SAMPLES[kind]))
            nxt = TRANSITIONS.get((role, model, Direction.RECEIVE, kind))
            if nxt is None:
                closed_with(session, "unexpected_message")
                model = State.CLOSED
            elif session.state is State.CLOSED and nxt is not State.CLOSED:
                # Legal kind, refused content (an unknown nonce, an unsubscribed type): another code.
                events = drain(session)
                assert isinstance(events[-1], ConnectionClosed)
                assert events[-1].code != "unexpected_message"
                model = State.CLOSED
            else:
                assert session.state is nxt
                model = nxt
        else:
            nxt = TRANSITIONS.get((role, model, Direction.SEND, kind))
            try:
                _command(session, kind)
            except LocalProtocolError:
                assert nxt is None
                assert session.state is before
            else:
                assert nxt is not None
                assert session.state is nxt
                model = nxt
    drain(session)


def _command(session: KdsSession, kind: type) -> None:
    if kind is Hello:
        session.connect(Hello(zone="zone-1"))
    elif kind is Welcome:
        session.accept(Welcome())
    elif kind is Reject:
        session.reject("unauthorized", "no")
    elif kind is Heartbeat:
        # Heartbeats are sent by the timer only; the table still decides when the timer may.
        if session.state is not State.ESTABLISHED:
            raise LocalProtocolError("not established")
        timer = session.get_timer()
        assert timer is not None
        session.handle_timer(timer)
    else:
        session.close("going_away", "test")


@given(st.sampled_from(REACHABLE), st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_garbage_never_raises_and_always_ends_in_one_connection_closed(
    where: tuple[Role, State], garbage: bytes, cuts: list[int]
) -> None:
    session = session_in(*where)
    points = [0, *sorted(c % (len(garbage) + 1) for c in cuts), len(garbage)]
    for a, b in itertools.pairwise(points):
        session.receive_data(garbage[a:b])
    session.receive_eof()
    events = drain(session)
    closes = [e for e in events if isinstance(e, ConnectionClosed)]
    assert len(closes) == 1
    assert events[-1] is closes[0]
    assert closes[0].reason
    assert session.state is State.CLOSED


def test_a_frame_over_the_limit_is_refused_at_its_length_prefix() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED, max_frame_bytes=8192)
    session.receive_data((8193).to_bytes(4, "big") + b"\x00" * 10)
    closed = closed_with(session, "frame_too_large")
    assert "8193" in closed.reason
    assert "8192" in closed.reason


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x00\x00\x03abc", "bad_message"),
        (b"\x00\x00\x00\x00", "empty_frame"),
        (b"\x00\x00\x00\x02\x81\xa1", "bad_message"),
    ],
)
def test_bytes_that_are_not_kds_close_the_session(data: bytes, code: str) -> None:
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    session.receive_data(data)
    closed_with(session, code)


def test_a_message_of_an_unknown_kind_is_a_bad_message() -> None:
    body = msgspec.msgpack.encode({"kind": "Teleport", "to": "mars"})
    session = session_in(Role.ZONE, State.ESTABLISHED)
    session.receive_data(len(body).to_bytes(4, "big") + body)
    closed = closed_with(session, "bad_message")
    assert "Teleport" in closed.reason


def test_eof_inside_a_frame_and_clean_eof_and_a_lost_transport() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    session.receive_data(peer().encode(Heartbeat())[:-2])
    session.receive_eof()
    (closed,) = drain(session)
    assert isinstance(closed, ConnectionClosed)
    assert (closed.code, closed.by_peer) == ("truncated_frame", True)
    assert "stream ended inside a frame" in closed.reason
    assert session.data_to_send() == b""

    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    session.receive_eof()
    assert drain(session) == [
        ConnectionClosed("connection_lost", "the peer closed the connection without a Close message", True)
    ]

    session = session_in(Role.GLOBAL, State.HELLO_RECEIVED)
    session.connection_lost("ECONNRESET")
    assert drain(session) == [ConnectionClosed("connection_lost", "connection lost: ECONNRESET", True)]


def test_a_close_from_the_peer_ends_the_session_quietly() -> None:
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    session.receive_data(peer().encode(Close(code="going_away", reason="zone CP shutting down")))
    assert drain(session) == [ConnectionClosed("going_away", "zone CP shutting down", by_peer=True)]
    assert session.data_to_send() == b""
    # After the end input is ignored and commands do nothing: a caller may still be answering events
    # that were queued before the ConnectionClosed it has not read yet.
    session.receive_data(b"\xff" * 10)
    session.receive_eof()
    session.handle_timer(1e9)
    session.close()
    session.subscribe("Dataplane", {})
    session.ack("1")
    session.nack("1", [])
    assert session.send_resources("Mesh", []) == []
    assert drain(session) == []
    assert session.data_to_send() == b""


def test_a_local_close_tells_the_peer() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    session.close("shutdown", "zone CP stopping")
    assert drain(session) == [ConnectionClosed("shutdown", "zone CP stopping", by_peer=False)]
    assert peer().feed(session.data_to_send()) == [Close(code="shutdown", reason="zone CP stopping")]


def test_a_peer_reason_is_cut_short() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    session.receive_data(peer().encode(Close(code="x", reason="y" * 100_000)))
    (closed,) = drain(session)
    assert isinstance(closed, ConnectionClosed)
    assert len(closed.reason) <= 512


# -- content faults on an established zone session subscribed to Mesh ------------------------------------


def feed(session: KdsSession, *messages: KdsMessage) -> None:
    codec = peer()
    session.receive_data(b"".join(codec.encode(m) for m in messages))


def test_resources_of_a_type_not_subscribed_to() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    feed(session, Resources(type="Secret", nonce="1"))
    closed = closed_with(session, "unsubscribed_type")
    assert "'Secret'" in closed.reason


def test_an_answer_for_a_nonce_not_in_flight() -> None:
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    feed(session, Ack(nonce="77"))
    assert "'77'" in closed_with(session, "unknown_nonce").reason
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    feed(session, Nack(nonce="78"))
    closed_with(session, "unknown_nonce")


def test_a_second_subscription_to_one_type() -> None:
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    feed(session, Subscribe(type="Mesh"), Subscribe(type="Mesh"))
    closed_with(session, "duplicate_subscription")


def test_subscribe_chunks_out_of_order() -> None:
    session = session_in(Role.GLOBAL, State.ESTABLISHED)
    feed(session, Subscribe(type="Mesh", chunk=0, last=False), Subscribe(type="Mesh", chunk=2, last=True))
    assert "expected 1" in closed_with(session, "bad_chunk").reason


def test_resources_chunks_out_of_order() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    feed(
        session,
        Resources(type="Mesh", nonce="1", chunk=0, last=False),
        Resources(type="Mesh", nonce="2", chunk=0),
    )
    closed_with(session, "bad_chunk")


def test_a_nonce_reused_before_its_answer() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    feed(session, Resources(type="Mesh", nonce="1"), Resources(type="Mesh", nonce="1"))
    closed_with(session, "duplicate_nonce")


def test_a_reused_nonce_is_fine_once_answered() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    feed(session, Resources(type="Mesh", nonce="1"))
    session.ack("1")
    feed(session, Resources(type="Mesh", nonce="1"))
    assert [type(e) for e in drain(session)] == [ResourcesReceived, ResourcesReceived]


def test_a_peer_that_ignores_the_window() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED, max_unacked=2)
    feed(session, *(Resources(type="Mesh", nonce=str(i)) for i in range(2)))
    assert len(drain(session)) == 2
    feed(session, Resources(type="Mesh", nonce="2"))
    assert "window of 2" in closed_with(session, "flow_control").reason


def test_spec_parts_that_do_not_add_up() -> None:
    record = make_record("Mesh", "m", b"", mesh="")
    cases: list[tuple[list[KdsMessage], str]] = [
        ([Resources(type="Mesh", nonce="1", upserts=[record], spec_parts=2)], "bad_spec_part"),
        (
            [SpecPart(type="Mesh", nonce="1", data=b"a"), SpecPart(type="Mesh", nonce="2", data=b"b")],
            "bad_spec_part",
        ),
        (
            [
                SpecPart(type="Mesh", nonce="1", data=b"a"),
                Resources(type="Mesh", nonce="2", upserts=[record]),
            ],
            "bad_spec_part",
        ),
        (
            [
                SpecPart(type="Mesh", nonce="1", data=b"a"),
                Resources(type="Mesh", nonce="1", upserts=[record]),
            ],
            "bad_spec_part",
        ),
        ([SpecPart(type="Secret", nonce="1", data=b"a")], "unsubscribed_type"),
    ]
    for messages, code in cases:
        session = session_in(Role.ZONE, State.ESTABLISHED)
        feed(session, *messages)
        closed_with(session, code)


def test_spec_parts_are_reassembled_in_order() -> None:
    record = make_record("Mesh", "m", b"", mesh="")
    session = session_in(Role.ZONE, State.ESTABLISHED)
    feed(
        session,
        SpecPart(type="Mesh", nonce="1", data=b"hello "),
        Heartbeat(),  # other kinds may pass between parts
        SpecPart(type="Mesh", nonce="1", data=b"world"),
        Resources(type="Mesh", nonce="1", upserts=[record], spec_parts=2),
    )
    events = [e for e in drain(session) if isinstance(e, ResourcesReceived)]
    assert [r.spec for r in events[0].upserts] == [b"hello world"]


def test_a_reassembled_record_over_max_record_bytes() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED, max_record_bytes=10_000)
    feed(session, *(SpecPart(type="Mesh", nonce="1", data=b"x" * 4000) for _ in range(3)))
    assert "max_record_bytes" in closed_with(session, "record_too_large").reason


def test_no_event_follows_connection_closed() -> None:
    session = session_in(Role.ZONE, State.ESTABLISHED)
    # A Close followed, in the same read, by more messages: they are never processed.
    feed(session, Close(code="bye"), Resources(type="Mesh", nonce="1"), Heartbeat())
    assert drain(session) == [ConnectionClosed("bye", "", by_peer=True)]
