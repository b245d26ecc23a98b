"""The frame codec: length-prefixed bodies cut out of a stream chunked at any byte."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encode_frame

bodies = st.lists(st.binary(min_size=1, max_size=300), max_size=12)


def header(size: int) -> bytes:
    return struct.pack(">I", size)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def decode_chunks(chunks: list[bytes], max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[bytes]:
    decoder = FrameDecoder(max_frame_bytes)
    out: list[bytes] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        out.extend(decoder.frames())
    decoder.receive_eof()
    assert decoder.buffered_bytes == 0
    return out


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"x" * 258) == b"\x00\x00\x01\x02" + b"x" * 258


@given(bodies, st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_yields_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in frames)
    assert decode_chunks(split(stream, cuts)) == frames


def test_every_single_split_point_yields_the_same_frames() -> None:
    frames = [b"a", b"bc" * 40, b"\x00\x00\x00\x00", b"z"]
    stream = b"".join(encode_frame(f) for f in frames)
    for i in range(len(stream) + 1):
        assert decode_chunks([stream[:i], stream[i:]]) == frames, f"split at {i}"


def test_byte_at_a_time_and_all_at_once() -> None:
    frames = [bytes([n]) * (n + 1) for n in range(50)]
    stream = b"".join(encode_frame(f) for f in frames)
    assert decode_chunks([stream[i : i + 1] for i in range(len(stream))]) == frames
    assert decode_chunks([stream]) == frames


def test_next_frame_waits_for_the_whole_body() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(header(5) + b"abc")
    assert decoder.next_frame() is None
    assert decoder.buffered_bytes == FRAME_HEADER_BYTES + 3
    decoder.receive_data(b"de")
    assert decoder.next_frame() == b"abcde"
    assert decoder.next_frame() is None
    assert decoder.buffered_bytes == 0


def test_accepts_memoryview_and_bytearray() -> None:
    decoder = FrameDecoder()
    data = encode_frame(b"hello")
    decoder.receive_data(memoryview(data)[:3])
    decoder.receive_data(bytearray(data[3:]))
    assert list(decoder.frames()) == [b"hello"]


def test_many_large_frames_in_one_chunk_are_all_returned_and_released() -> None:
    frames = [bytes([n % 256]) * 40_000 for n in range(20)]
    decoder = FrameDecoder()
    decoder.receive_data(b"".join(encode_frame(f) for f in frames) + header(10))
    assert list(decoder.frames()) == frames
    # Only the pending length prefix of the next frame remains.
    assert decoder.buffered_bytes == FRAME_HEADER_BYTES
    decoder.receive_data(b"0123456789")
    assert decoder.next_frame() == b"0123456789"


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_bytes=16)
    decoder.receive_data(encode_frame(b"y" * 16, 16))
    assert decoder.next_frame() == b"y" * 16


def test_oversized_declared_length_fails_before_any_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    decoder.receive_data(b"\x00\x00")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_data(header(1025)[2:])
    assert info.value.code == "frame_too_large"
    assert "1025" in str(info.value)
    assert "1024" in str(info.value)
    assert decoder.failed
    assert decoder.buffered_bytes == 0


def test_default_limit_is_16_mib() -> None:
    decoder = FrameDecoder()
    assert decoder.max_frame_bytes == 16 * 1024 * 1024
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_data(header(16 * 1024 * 1024 + 1))
    assert info.value.code == "frame_too_large"


def test_oversized_frame_behind_valid_ones_is_caught_on_arrival() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_data(encode_frame(b"ok", 100) + encode_frame(b"fine", 100) + header(101))
    assert info.value.code == "frame_too_large"


def test_zero_length_frame_is_a_protocol_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_data(header(0))
    assert info.value.code == "empty_frame"


def test_decoder_stays_failed_after_an_error() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    with pytest.raises(RemoteProtocolError):
        decoder.receive_data(header(11))
    with pytest.raises(RemoteProtocolError) as again:
        decoder.receive_data(encode_frame(b"valid", 10))
    assert again.value.code == "frame_too_large"
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    with pytest.raises(RemoteProtocolError):
        decoder.receive_eof()


def test_http_request_on_the_frame_port_fails_at_once() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_data(b"GET / HTTP/1.1\r\nHost: global:5685\r\n\r\n")
    assert info.value.code == "frame_too_large"


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=30))
def test_garbage_fails_cleanly_and_never_buffers_beyond_one_frame(chunks: list[bytes]) -> None:
    limit = 256
    decoder = FrameDecoder(max_frame_bytes=limit)
    error: RemoteProtocolError | None = None
    for chunk in chunks:
        try:
            decoder.receive_data(chunk)
        except RemoteProtocolError as exc:
            error = exc
            break
        for frame in decoder.frames():
            assert 1 <= len(frame) <= limit
        # Drained: at most one incomplete frame (prefix + body short of one byte) is held.
        assert decoder.buffered_bytes < FRAME_HEADER_BYTES + limit
    if error is not None:
        assert error.code in {"frame_too_large", "empty_frame"}
        assert decoder.failed
        assert decoder.buffered_bytes == 0


def test_clean_eof_between_frames_and_with_undrained_complete_frames() -> None:
    decoder = FrameDecoder()
    decoder.receive_eof()
    decoder.receive_data(encode_frame(b"one") + encode_frame(b"two"))
    decoder.receive_eof()
    assert list(decoder.frames()) == [b"one", b"two"]


@pytest.mark.parametrize(
    ("tail", "partial"),
    [(b"\x00\x00", 2), (header(10) + b"abc", 7), (header(10), 4)],
)
def test_eof_inside_a_frame_is_truncation(tail: bytes, partial: int) -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"whole") + tail)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_eof()
    assert info.value.code == "truncated_frame"
    assert f"{partial} bytes" in str(info.value)


def test_eof_truncation_is_found_after_the_buffer_was_compacted() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"q" * 70_000) + encode_frame(b"r" * 70_000)[:1000])
    assert decoder.next_frame() == b"q" * 70_000
    with pytest.raises(RemoteProtocolError) as info:
        decoder.receive_eof()
    assert "1000 bytes" in str(info.value)


def test_encode_refuses_oversized_and_empty_bodies() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(b"x" * 11, 10)
    assert info.value.code == "frame_too_large"
    assert "11" in str(info.value)
    assert "10" in str(info.value)
    with pytest.raises(LocalProtocolError) as empty:
        encode_frame(b"")
    assert empty.value.code == "empty_frame"


@pytest.mark.parametrize("limit", [0, -1, 2**32])
def test_limits_the_prefix_cannot_express_are_rejected(limit: int) -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameDecoder(limit)
    with pytest.raises(ValueError, match="max_frame_bytes"):
        encode_frame(b"x", limit)
