"""Properties of the SNI parser on generated input: never raises, both twins agree, prefixes never
contradict the whole stream, and host names are judged exactly as an independent oracle judges them."""

from __future__ import annotations

import ssl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmesh._fastpath._sni_types import (
    RESULT_NEED_MORE,
    RESULT_NO_SNI,
    RESULT_NOT_TLS,
    RESULT_TOO_LARGE,
    SniResult,
    SniStatus,
)

from .tls_hello import (
    alpn_ext,
    client_hello_body,
    extension,
    handshake,
    handshake_message,
    padding_ext,
    record,
    reframe,
    server_name_ext,
    ssl_client_hello,
)
from .twins import Parser

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REAL_HELLOS = [
    ssl_client_hello("example.com", alpn=["h2", "http/1.1"]),
    ssl_client_hello("Mixed.Case.Example", version=ssl.TLSVersion.TLSv1_2, alpn=["http/1.1"]),
    ssl_client_hello(None),
]
SINGLETONS = {
    SniStatus.NEED_MORE: RESULT_NEED_MORE,
    SniStatus.NOT_TLS: RESULT_NOT_TLS,
    SniStatus.TOO_LARGE: RESULT_TOO_LARGE,
}
HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def oracle_host_name(name: bytes) -> str | None:
    """RFC 1123-style host name rules (plus ``_``), written independently of both parsers."""
    if name.endswith(b"."):
        name = name[:-1]
    if not name or len(name) > 253:
        return None
    labels = name.split(b".")
    for label in labels:
        if not 1 <= len(label) <= 63 or label[0] == ord("-") or label[-1] == ord("-"):
            return None
        if not set(label) <= HOST_BYTES:
            return None
    if labels[-1].isdigit():
        return None
    return name.decode("ascii").lower()


def parse_all(parsers: list[Parser], data: bytes, max_bytes: int = 16384) -> SniResult:
    """Runs every twin, checks they agree and that the result is well-formed, and returns it."""
    results = [parse(data, max_bytes) for parse in parsers]
    first = results[0]
    assert all(r == first for r in results), results
    for result in results:
        assert type(result) is SniResult
        assert type(result.status) is SniStatus
        if result.status in SINGLETONS:
            assert result is SINGLETONS[result.status]
        if result.status is SniStatus.FOUND:
            assert result.server_name is not None
            assert oracle_host_name(result.server_name.encode()) == result.server_name
        else:
            assert result.server_name is None
        assert type(result.alpn) is tuple
        assert all(type(p) is bytes and 1 <= len(p) <= 255 for p in result.alpn)
        if result.alpn:
            assert result.status in (SniStatus.FOUND, SniStatus.NO_SNI)
    return first


def check_prefixes(parsers: list[Parser], data: bytes, max_bytes: int = 16384) -> SniResult:
    """Every prefix says NEED_MORE or what the whole says; returns what the whole says."""
    final = parse_all(parsers, data, max_bytes)
    for cut in range(len(data)):
        assert parse_all(parsers, data[:cut], max_bytes) in (RESULT_NEED_MORE, final), cut
    return final


# --- strategies ------------------------------------------------------------------------------------

# One byte of each kind the rules tell apart (letter cases, digits, "-", "_", ".", and never-valid bytes),
# plus the alphabet so that labels are often valid and long enough to reach the 63-byte limit.
NAME_BYTES = b"aZ09-_.\x00\xff " + b"abcdefghijklmnopqrstuvwxyz"
label_bytes = st.lists(st.sampled_from(NAME_BYTES), max_size=66).map(bytes) | st.builds(
    lambda n, c: bytes([c]) * n, st.integers(60, 66), st.sampled_from(b"x7-")
)  # labels around the 63-byte limit, which also take names past 253 bytes
host_names = st.builds(
    lambda labels, dot: b".".join(labels) + (b"." if dot else b""),
    st.lists(label_bytes, min_size=1, max_size=6),
    st.booleans(),
)
valid_labels = st.from_regex(r"\A[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z").map(str.encode)
valid_host_names = (
    st.lists(valid_labels, min_size=1, max_size=4)
    .map(b".".join)
    .filter(lambda n: oracle_host_name(n) is not None)
)
alpn_lists = st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=4)
other_extensions = st.lists(
    st.builds(extension, st.integers(1, 0xFFFF).filter(lambda t: t != 16), st.binary(max_size=40)),
    max_size=5,
)


@st.composite
def client_hellos(draw: st.DrawFn) -> tuple[bytes, str, tuple[bytes, ...]]:
    """A valid ClientHello message (not yet framed), the host name it carries and its ALPN list."""
    name = draw(valid_host_names)
    alpn = tuple(draw(alpn_lists))
    extensions = [server_name_ext(name), alpn_ext(*alpn), *draw(other_extensions)]
    order = draw(st.permutations(range(len(extensions))))
    body = client_hello_body(
        extensions=[extensions[i] for i in order],
        session_id=draw(st.binary(max_size=32)),
        suites=draw(st.binary(min_size=1, max_size=40).map(lambda b: b * 2)),
        methods=draw(st.binary(min_size=1, max_size=3)),
    )
    expected = oracle_host_name(name)
    assert expected is not None
    return handshake(body), expected, alpn


record_sizes = st.lists(st.integers(1, 700), min_size=1, max_size=8)


@st.composite
def tls_shaped(draw: st.DrawFn) -> bytes:
    """Bytes that get past the record and handshake headers, so that random bodies reach the body parser."""
    body = draw(st.binary(max_size=400))
    claimed = len(body) + draw(st.sampled_from([0, 0, 0, -1, 1, 3]))
    message = b"\x01" + max(claimed, 0).to_bytes(3, "big") + body
    return reframe(message, draw(record_sizes)) + draw(st.binary(max_size=8))


@st.composite
def mutated_real_hellos(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL_HELLOS)))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


# --- properties ------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=700), max_bytes=st.integers(-2, 800) | st.just(16384))
def test_random_bytes(parsers: list[Parser], data: bytes, max_bytes: int) -> None:
    parse_all(parsers, data, max_bytes)


@SETTINGS
@given(data=st.binary(max_size=64).map(lambda b: b"\x16\x03" + b))
def test_random_bytes_after_a_handshake_record_type(parsers: list[Parser], data: bytes) -> None:
    check_prefixes(parsers, data)


@SETTINGS
@given(data=tls_shaped(), max_bytes=st.integers(0, 900) | st.just(16384))
def test_random_handshake_bodies(parsers: list[Parser], data: bytes, max_bytes: int) -> None:
    check_prefixes(parsers, data, max_bytes)


@settings(max_examples=100, deadline=None)
@given(data=mutated_real_hellos())
def test_mutated_real_hellos(parsers: list[Parser], data: bytes) -> None:
    check_prefixes(parsers, data)


@SETTINGS
@given(hello=client_hellos(), sizes=record_sizes, trailing=st.binary(max_size=20))
def test_valid_hellos_in_any_framing(
    parsers: list[Parser], hello: tuple[bytes, str, tuple[bytes, ...]], sizes: list[int], trailing: bytes
) -> None:
    message, name, alpn = hello
    data = reframe(message, sizes) + trailing
    assert parse_all(parsers, data) == SniResult(SniStatus.FOUND, name, alpn)
    assert parse_all(parsers, data, len(data) - len(trailing) - 1) is RESULT_TOO_LARGE


@SETTINGS
@given(hello=client_hellos(), sizes=record_sizes, inner=st.binary(min_size=1, max_size=20))
def test_bytes_after_the_message_in_its_records(
    parsers: list[Parser], hello: tuple[bytes, str, tuple[bytes, ...]], sizes: list[int], inner: bytes
) -> None:
    # Handshake bytes after the ClientHello, in the record that ends it or in records of their own.
    message, name, alpn = hello
    assert parse_all(parsers, reframe(message + inner, sizes)) == SniResult(SniStatus.FOUND, name, alpn)


@settings(max_examples=30, deadline=None)
@given(hello=client_hellos(), sizes=record_sizes)
def test_valid_hello_prefixes(
    parsers: list[Parser], hello: tuple[bytes, str, tuple[bytes, ...]], sizes: list[int]
) -> None:
    message, name, alpn = hello
    assert check_prefixes(parsers, reframe(message, sizes)) == SniResult(SniStatus.FOUND, name, alpn)


@SETTINGS
@given(name=host_names, alpn=st.none() | alpn_lists)
def test_host_names_match_the_oracle(parsers: list[Parser], name: bytes, alpn: list[bytes] | None) -> None:
    extensions = [server_name_ext(name)] if name else [extension(0, b"\x00\x03\x00\x00\x00")]
    protocols = tuple(alpn or ())
    if alpn is not None:
        extensions.append(alpn_ext(*alpn))
    result = parse_all(parsers, record(handshake(client_hello_body(extensions=extensions))))
    expected = oracle_host_name(name)
    if expected is None:
        assert result is RESULT_NOT_TLS
    else:
        assert result == SniResult(SniStatus.FOUND, expected, protocols)


@SETTINGS
@given(padding=st.integers(0, 40_000), max_bytes=st.integers(0, 50_000), size=st.integers(1000, 16384))
def test_size_limit(parsers: list[Parser], padding: int, max_bytes: int, size: int) -> None:
    message = handshake(client_hello_body(extensions=[padding_ext(padding)]))
    data = reframe(message, size)
    fits = len(data) <= max_bytes
    assert parse_all(parsers, data, max_bytes) is (RESULT_NO_SNI if fits else RESULT_TOO_LARGE)


def test_real_hellos_survive_reframing_and_truncation(parsers: list[Parser]) -> None:
    for data in REAL_HELLOS:
        message = handshake_message(data)
        expected = parse_all(parsers, data)
        assert expected.status in (SniStatus.FOUND, SniStatus.NO_SNI)
        assert parse_all(parsers, reframe(message, [7, 100, 3])) == expected
        # One byte missing: the message header promises more, so more is awaited.
        assert parse_all(parsers, record(message[:-1])) is RESULT_NEED_MORE
        # A message header one byte short: the extension block no longer fits the message.
        shortened = message[:1] + (len(message) - 5).to_bytes(3, "big") + message[4:]
        assert parse_all(parsers, record(shortened)) is RESULT_NOT_TLS
