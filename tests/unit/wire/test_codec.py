"""Typed messages over frames: round trips at any chunking, refusal of bad input, forward compatibility."""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.wire.codec import MessageCodec, WireMessage
from kmesh.wire.framing import encode_frame


class Hello(WireMessage, frozen=True, kw_only=True):
    zone: str
    features: list[str] = []


class Data(WireMessage, frozen=True, kw_only=True):
    nonce: int
    payload: bytes = b""
    labels: dict[str, str] = {}
    last: bool = False


class Bye(WireMessage, frozen=True, kw_only=True):
    reason: str | None = None


Msg = Hello | Data | Bye

text = st.text(max_size=30)
messages = st.one_of(
    st.builds(Hello, zone=text, features=st.lists(text, max_size=3)),
    st.builds(
        Data,
        nonce=st.integers(min_value=-(2**63), max_value=2**64 - 1),
        payload=st.binary(max_size=200),
        labels=st.dictionaries(text, text, max_size=3),
        last=st.booleans(),
    ),
    st.builds(Bye, reason=st.none() | text),
)


def codec() -> MessageCodec[Msg]:
    return MessageCodec[Msg](Msg)


@given(st.lists(messages, max_size=10), st.lists(st.integers(min_value=0), max_size=15))
def test_any_chunking_decodes_to_the_same_messages(sent: list[Msg], cuts: list[int]) -> None:
    sender, receiver = codec(), codec()
    stream = b"".join(sender.encode(m) for m in sent)
    points = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    received: list[Msg] = []
    for a, b in itertools.pairwise(points):
        received.extend(receiver.feed(stream[a:b]))
    receiver.receive_eof()
    assert received == sent


def test_every_split_point_decodes_to_the_same_messages() -> None:
    sent: list[Msg] = [
        Hello(zone="zone-1", features=["chunked"]),
        Data(nonce=7, payload=b"\x00" * 50, labels={"kuma.io/service": "web"}, last=True),
        Bye(),
    ]
    sender = codec()
    stream = b"".join(sender.encode(m) for m in sent)
    for i in range(len(stream) + 1):
        receiver = codec()
        assert receiver.feed(stream[:i]) + receiver.feed(stream[i:]) == sent, f"split at {i}"


def test_next_message_hands_out_one_message_at_a_time() -> None:
    sender, receiver = codec(), codec()
    receiver.receive_data(sender.encode(Bye(reason="a")) + sender.encode(Bye(reason="b")))
    assert receiver.next_message() == Bye(reason="a")
    assert receiver.next_message() == Bye(reason="b")
    assert receiver.next_message() is None
    assert receiver.buffered_bytes == 0


def test_frame_body_is_a_msgpack_map_tagged_by_kind() -> None:
    frame = codec().encode(Hello(zone="east"))
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert msgspec.msgpack.decode(frame[4:]) == {"kind": "Hello", "zone": "east", "features": []}


def test_unknown_tag_is_a_bad_message_without_echoing_the_payload() -> None:
    huge_tag = "Z" * 100_000
    with pytest.raises(RemoteProtocolError) as info:
        codec().feed(encode_frame(msgspec.msgpack.encode({"kind": huge_tag})))
    assert info.value.code == "bad_message"
    assert "`$.kind`" in str(info.value)
    assert len(str(info.value)) < 500


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"\xc1", "malformed"),
        (b"\x81\xa4kind\xa3Bye\x00", "trailing"),
        (msgspec.msgpack.encode([1, 2, 3]), "array"),
        (msgspec.msgpack.encode({"kind": "Data"}), "nonce"),
        (msgspec.msgpack.encode({"kind": "Data", "nonce": "seven"}), "nonce"),
        (msgspec.msgpack.encode({"zone": "no-tag"}), "kind"),
    ],
)
def test_undecodable_bodies_are_bad_messages_naming_the_problem(body: bytes, detail: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        codec().feed(encode_frame(body))
    assert info.value.code == "bad_message"
    assert detail in str(info.value)
    assert f"{len(body)}-byte frame" in str(info.value)


def test_codec_stays_failed_after_a_bad_message() -> None:
    sender, receiver = codec(), codec()
    with pytest.raises(RemoteProtocolError):
        receiver.feed(encode_frame(b"\xc1"))
    with pytest.raises(RemoteProtocolError) as again:
        receiver.feed(sender.encode(Bye()))
    assert again.value.code == "bad_message"
    with pytest.raises(RemoteProtocolError):
        receiver.next_message()


def test_framing_errors_surface_through_the_codec() -> None:
    receiver = MessageCodec[Msg](Msg, max_frame_bytes=64)
    with pytest.raises(RemoteProtocolError) as info:
        receiver.feed(b"\x00\x00\x00\x41")
    assert info.value.code == "frame_too_large"
    short = codec()
    assert short.feed(codec().encode(Hello(zone="z"))[:-1]) == []
    with pytest.raises(RemoteProtocolError) as truncated:
        short.receive_eof()
    assert truncated.value.code == "truncated_frame"


def test_encode_refuses_what_the_peer_would_refuse() -> None:
    small = MessageCodec[Msg](Msg, max_frame_bytes=64)
    with pytest.raises(LocalProtocolError) as too_large:
        small.encode(Data(nonce=1, payload=b"x" * 64))
    assert too_large.value.code == "frame_too_large"

    class Stranger(WireMessage, frozen=True, kw_only=True):
        pass

    with pytest.raises(LocalProtocolError) as foreign:
        small.encode(Stranger())  # type: ignore[arg-type]
    assert foreign.value.code == "bad_message"
    assert "Stranger" in str(foreign.value)
    with pytest.raises(LocalProtocolError) as unencodable:
        small.encode(Hello(zone=object()))  # type: ignore[arg-type]
    assert unencodable.value.code == "bad_message"
    with pytest.raises(LocalProtocolError) as overflow:
        small.encode(Data(nonce=2**64))
    assert overflow.value.code == "bad_message"


# Two versions of one message, as an older and a newer kmesh declare it: same tag, the newer one has gained
# fields with defaults.
class HelloV1(WireMessage, frozen=True, kw_only=True, tag="Hello"):
    zone: str


class HelloV2(WireMessage, frozen=True, kw_only=True, tag="Hello"):
    zone: str
    instance_id: str = ""
    features: list[str] = []


def test_older_decoder_accepts_a_message_with_fields_from_a_newer_sender() -> None:
    newer, older = MessageCodec[HelloV2](HelloV2), MessageCodec[HelloV1 | Bye](HelloV1 | Bye)
    frame = newer.encode(HelloV2(zone="west", instance_id="cp-2", features=["delta"]))
    assert older.feed(frame) == [HelloV1(zone="west")]


def test_newer_decoder_fills_defaults_for_a_message_from_an_older_sender() -> None:
    older, newer = MessageCodec[HelloV1](HelloV1), MessageCodec[HelloV2](HelloV2)
    assert newer.feed(older.encode(HelloV1(zone="west"))) == [HelloV2(zone="west")]


def test_union_members_must_keep_the_compatibility_rules() -> None:
    class Strict(msgspec.Struct, tag=True, forbid_unknown_fields=True):
        x: int = 0

    class Untagged(msgspec.Struct):
        x: int = 0

    class Positional(msgspec.Struct, tag=True, array_like=True):
        x: int = 0

    with pytest.raises(TypeError, match="forbid_unknown_fields"):
        MessageCodec[Strict](Strict)
    with pytest.raises(TypeError, match="no tag"):
        MessageCodec[Untagged](Untagged)
    with pytest.raises(TypeError, match="must be tagged"):
        MessageCodec[Hello | Untagged](Hello | Untagged)
    with pytest.raises(TypeError, match="array_like"):
        MessageCodec[Positional](Positional)
    with pytest.raises(TypeError, match="Structs"):
        MessageCodec[Hello | int](Hello | int)
