"""The session's own refusals of a Hello that is not a zone's: a proxy speaking the DP protocol is told to
connect to its zone control plane; a KDS Hello without a zone is refused as malformed."""

from __future__ import annotations

import msgspec

from kmesh.kds import ConnectionClosed, Hello, KdsMessage, KdsSession, Reject, Role
from kmesh.wire import MessageCodec


def _frame(message: dict[str, object]) -> bytes:
    body = msgspec.msgpack.encode(message)
    return len(body).to_bytes(4, "big") + body


def _refusal(frame: bytes) -> tuple[ConnectionClosed, Reject]:
    glob = KdsSession(Role.GLOBAL, now=0.0)
    glob.receive_data(frame)
    closed = glob.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert glob.next_event() is None
    (reject,) = MessageCodec[KdsMessage](KdsMessage).feed(glob.data_to_send())
    assert isinstance(reject, Reject)
    return closed, reject


def test_a_dp_protocol_hello_is_refused_with_where_to_connect() -> None:
    # The DP protocol's Hello names no zone and carries fields KDS does not know.
    closed, reject = _refusal(_frame({"kind": "Hello", "protocol": "dp/1", "dataplane": {"name": "web"}}))
    assert reject.code == closed.code == "unsupported_protocol"
    assert "accepts only zone control planes" in reject.reason
    assert "proxies must connect to their zone control plane" in reject.reason
    assert "'dp/1'" in reject.reason
    assert not closed.by_peer


def test_a_kds_hello_without_a_zone_is_refused() -> None:
    closed, reject = _refusal(_frame({"kind": "Hello", "protocol": "kds/1", "token": "t"}))
    assert reject.code == closed.code == "bad_hello"
    assert "names no zone" in reject.reason


def test_an_older_zones_hello_still_decodes_with_its_zone() -> None:
    glob = KdsSession(Role.GLOBAL, now=0.0)
    glob.receive_data(MessageCodec[KdsMessage](KdsMessage).encode(Hello(zone="zone-1")))
    event = glob.next_event()
    assert event is not None
    assert getattr(event, "hello", None) == Hello(zone="zone-1")
