"""The SNI parser, case by case, over both twins (the ``parser`` fixture runs each test for py and c)."""

from __future__ import annotations

import array
import ssl

import pytest

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
    client_hello,
    client_hello_body,
    extension,
    handshake,
    handshake_message,
    padding_ext,
    record,
    reframe,
    server_name_ext,
    ssl_client_hello,
    vec,
)
from .twins import Parser

H2 = (b"h2", b"http/1.1")
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
# The shape of name kmesh puts in SNI: hash, service, mesh (DESIGN.md, Cross-zone routing).
KMESH_NAME = "9f86d081884c7d65." + "backend-api-v2" * 4 + ".payments-prod.kmesh"


def found(name: str, alpn: tuple[bytes, ...] = ()) -> SniResult:
    return SniResult(SniStatus.FOUND, name, alpn)


# --- real ClientHellos, from Python's ssl (OpenSSL) -----------------------------------------------


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(
    ("alpn", "expected_alpn"), [(None, ()), (["h2", "http/1.1"], H2), (["kmesh/1"], (b"kmesh/1",))]
)
@pytest.mark.parametrize(
    ("hostname", "expected_name"),
    [
        ("example.com", "example.com"),
        ("Backend.Example.COM", "backend.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("redis_cache.mesh", "redis_cache.mesh"),
        ("example.com.", "example.com"),
        ("localhost", "localhost"),
        (KMESH_NAME, KMESH_NAME),
    ],
)
def test_real_client_hello(
    parser: Parser,
    version: ssl.TLSVersion,
    alpn: list[str] | None,
    expected_alpn: tuple[bytes, ...],
    hostname: str,
    expected_name: str,
) -> None:
    data = ssl_client_hello(hostname, version=version, alpn=alpn)
    assert parser(data) == found(expected_name, expected_alpn)


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("hostname", [None, "10.1.2.3", "fd00::1"])
def test_real_client_hello_without_sni(parser: Parser, version: ssl.TLSVersion, hostname: str | None) -> None:
    # Python's ssl sends no server_name for an IP address.
    assert parser(ssl_client_hello(hostname, version=version)) is RESULT_NO_SNI
    with_alpn = ssl_client_hello(hostname, version=version, alpn=["h2", "http/1.1"])
    assert parser(with_alpn) == SniResult(SniStatus.NO_SNI, None, H2)


def test_the_common_hello_is_one_517_byte_record(parser: Parser) -> None:
    # OpenSSL pads a TLS 1.3 hello to 512 bytes: the size the benchmark and BENCH.md use.
    data = ssl_client_hello("example.com", alpn=["h2"])
    assert len(data) == 517
    assert parser(data) == found("example.com", (b"h2",))


# --- incomplete input: every byte boundary, several records, several reads ------------------------


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
def test_every_proper_prefix_needs_more(parser: Parser, version: ssl.TLSVersion) -> None:
    data = ssl_client_hello("split.example", version=version, alpn=["h2", "http/1.1"])
    results = {parser(data[:cut]) for cut in range(len(data))}
    assert results == {RESULT_NEED_MORE}
    assert parser(data) == found("split.example", H2)


def test_every_record_size(parser: Parser) -> None:
    message = handshake_message(ssl_client_hello("records.example", alpn=["h2", "http/1.1"]))
    for size in range(1, len(message) + 2):
        data = reframe(message, size)
        assert parser(data) == found("records.example", H2), size


@pytest.mark.parametrize("sizes", [[1], [2], [3], [4, 1], [1, 1, 1, 7], [300, 5]])
def test_every_prefix_of_many_records(parser: Parser, sizes: list[int]) -> None:
    # Small records split the 4-byte handshake header and the record headers themselves.
    message = handshake_message(ssl_client_hello("many.example", version=TLS12, alpn=["h2"]))
    data = reframe(message, sizes)
    assert {parser(data[:cut]) for cut in range(len(data))} == {RESULT_NEED_MORE}
    assert parser(data) == found("many.example", (b"h2",))


@pytest.mark.parametrize("read_size", [1, 5, 6, 100, 4096])
def test_reads_accumulated_in_a_bytearray(parser: Parser, read_size: int) -> None:
    # What the ingress does: append each read to a buffer and parse the whole buffer again.
    data = reframe(handshake_message(ssl_client_hello("reads.example", alpn=["h2"])), [10, 200, 1000])
    buffer = bytearray()
    results = []
    for start in range(0, len(data), read_size):
        buffer += data[start : start + read_size]
        results.append(parser(buffer))
    assert results[-1] == found("reads.example", (b"h2",))
    assert set(results[:-1]) <= {RESULT_NEED_MORE}


def test_bytes_after_the_client_hello_are_ignored(parser: Parser) -> None:
    data = ssl_client_hello("trailing.example", alpn=["h2"])
    message = handshake_message(data)
    expected = found("trailing.example", (b"h2",))
    # What follows the hello's records: early data, garbage, another partial record.
    assert parser(data + record(b"early", content_type=23)) == expected
    assert parser(data + b"\x00\xff garbage") == expected
    assert parser(data + b"\x16\x03") == expected
    # Extra bytes inside the record that ends the hello.
    assert parser(record(message + b"\x00\x01\x02")) == expected
    assert parser(reframe(message + b"\x00" * 10, 100)) == expected


def test_other_record_between_fragments_is_not_tls(parser: Parser) -> None:
    message = handshake_message(ssl_client_hello("interleaved.example"))
    data = record(message[:100]) + record(b"\x01", content_type=20) + record(message[100:])
    assert parser(data) is RESULT_NOT_TLS
    assert parser(data[:105]) is RESULT_NEED_MORE


def test_empty_input_needs_more(parser: Parser) -> None:
    assert parser(b"") is RESULT_NEED_MORE
    assert parser(b"\x16") is RESULT_NEED_MORE
    assert parser(b"\x16\x03\x01\x02\x00") is RESULT_NEED_MORE


# --- not TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", id="http"),
        pytest.param(b"G", id="http-first-byte"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", id="h2-preface"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="ssh"),
        pytest.param(bytes.fromhex("8046010301002d0000001000"), id="sslv2-hello"),
        pytest.param(b"\x16\x02", id="record-version-2"),
        pytest.param(b"\x16\x04\x00\x00\x05", id="record-version-4"),
        pytest.param(record(b"\x01", content_type=23), id="application-data"),
        pytest.param(record(b"\x02\x00", content_type=21), id="alert"),
        pytest.param(b"\x16\x03\x01\x00\x00", id="record-length-0"),
        pytest.param(b"\x16\x03\x01\x40\x01" + bytes(0x4001), id="record-length-2^14+1"),
        pytest.param(b"\x16\x03\x01\xff\xff", id="record-length-65535"),
        pytest.param(record(handshake(client_hello_body(), msg_type=2)), id="server-hello"),
        pytest.param(record(b"\x0b"), id="certificate-type-alone"),
        pytest.param(record(b"\x01\x00\x00\x04\x03\x03\x00\x00"), id="body-too-short"),
        pytest.param(bytes(64), id="zeros"),
    ],
)
def test_not_tls(parser: Parser, data: bytes) -> None:
    assert parser(data) is RESULT_NOT_TLS


def test_a_hello_split_before_its_type_byte_is_checked_once_it_arrives(parser: Parser) -> None:
    data = reframe(handshake(client_hello_body(), msg_type=2), [1, 1000])
    assert parser(data[:6]) is RESULT_NOT_TLS
    assert parser(data[:5]) is RESULT_NEED_MORE


SNI = server_name_ext(b"ok.example")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(client_hello(SNI, legacy_version=b"\x02\x00"), id="legacy-version-2"),
        pytest.param(client_hello(SNI, session_id=bytes(33)), id="session-id-33"),
        pytest.param(client_hello(SNI, suites=b""), id="no-cipher-suites"),
        pytest.param(client_hello(SNI, suites=b"\x13\x01\x13"), id="odd-cipher-suites"),
        pytest.param(client_hello(SNI, methods=b""), id="no-compression-methods"),
        pytest.param(
            record(handshake(client_hello_body(raw_extensions=vec(SNI, 2) + b"\x00"))), id="ext-block-short"
        ),
        pytest.param(
            record(handshake(client_hello_body(raw_extensions=vec(SNI, 2)[:-1]))), id="ext-block-long"
        ),
        pytest.param(record(handshake(client_hello_body(raw_extensions=b"\x00"))), id="ext-block-1-byte"),
        pytest.param(
            record(handshake(client_hello_body(raw_extensions=vec(b"\x00\x17\x00", 2)))),
            id="ext-header-truncated",
        ),
        pytest.param(
            record(handshake(client_hello_body(raw_extensions=vec(b"\x00\x17\x00\x05\x00", 2)))),
            id="ext-overruns-block",
        ),
        pytest.param(
            record(handshake(client_hello_body(session_id=b"")[:40])), id="body-ends-in-cipher-suites"
        ),
        pytest.param(record(handshake(client_hello_body(extensions=None)[:-1])), id="body-ends-in-methods"),
        pytest.param(client_hello(SNI, SNI), id="two-server-name-exts"),
        pytest.param(client_hello(SNI, alpn_ext(b"h2"), alpn_ext(b"h2")), id="two-alpn-exts"),
        pytest.param(client_hello(server_name_ext(b"a.example", b"b.example")), id="two-host-names"),
        pytest.param(client_hello(extension(0, b"")), id="sni-empty-ext"),
        pytest.param(client_hello(extension(0, vec(b"", 2))), id="sni-empty-list"),
        pytest.param(
            client_hello(extension(0, vec(b"\x00" + vec(b"a.b", 2), 2) + b"\x00")), id="sni-list-short"
        ),
        pytest.param(client_hello(extension(0, vec(b"\x00" + vec(b"a.b", 2), 2)[:-1])), id="sni-list-long"),
        pytest.param(client_hello(extension(0, vec(b"\x00\x00", 2))), id="sni-entry-truncated"),
        pytest.param(client_hello(server_name_ext(b"")), id="sni-empty-name"),
        pytest.param(client_hello(server_name_ext((7, b""))), id="sni-other-type-empty"),
        pytest.param(client_hello(extension(16, b"")), id="alpn-empty-ext"),
        pytest.param(client_hello(extension(16, vec(b"", 2))), id="alpn-empty-list"),
        pytest.param(client_hello(alpn_ext(b"h2", b"")), id="alpn-empty-name"),
        pytest.param(client_hello(extension(16, vec(b"\x05h2", 2))), id="alpn-name-overruns"),
        pytest.param(client_hello(extension(16, vec(b"\x02h2", 2) + b"x")), id="alpn-list-short"),
        pytest.param(client_hello(SNI, alpn_ext(b"")), id="alpn-bad-after-good-sni"),
    ],
)
def test_malformed_client_hello_is_not_tls(parser: Parser, data: bytes) -> None:
    assert parser(data) is RESULT_NOT_TLS


def test_malformed_hello_still_needs_more_until_complete(parser: Parser) -> None:
    # The body is judged only once the whole message is in: a prefix stays NEED_MORE.
    data = client_hello(SNI, SNI)
    assert {parser(data[:cut]) for cut in range(len(data))} == {RESULT_NEED_MORE}
    assert parser(data) is RESULT_NOT_TLS


# --- server names ----------------------------------------------------------------------------------


LABEL_63 = b"a" * 63
NAME_253 = b".".join([b"b" * 63] * 3 + [b"c" * 61])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"example.com", "example.com"),
        (b"EXAMPLE.Com", "example.com"),
        (b"x", "x"),
        (b"a-b.c-d", "a-b.c-d"),
        (b"_srv._tcp.example", "_srv._tcp.example"),
        (b"a_.b_", "a_.b_"),
        (b"1.2.3.com", "1.2.3.com"),
        (b"10.0.0.1a", "10.0.0.1a"),
        (b"123abc", "123abc"),
        (b"xn--bcher-kva.example", "xn--bcher-kva.example"),
        (LABEL_63 + b".example", "a" * 63 + ".example"),
        (NAME_253, NAME_253.decode()),
        (NAME_253 + b".", NAME_253.decode()),
        (b"trailing.dot.", "trailing.dot"),
        (b"0-9.AZ-az", "0-9.az-az"),
    ],
)
def test_valid_host_names(parser: Parser, name: bytes, expected: str) -> None:
    assert parser(client_hello(server_name_ext(name))) == found(expected)


@pytest.mark.parametrize(
    "name",
    [
        b".",
        b"..",
        b".example.com",
        b"example..com",
        b"example.com..",
        b"-example.com",
        b"example-.com",
        b"example.-com",
        b"example.com-",
        b"a" * 64 + b".example",
        b"x" + NAME_253,
        b"x" + NAME_253 + b".",
        b"1.2.3.4",
        b"1.2.3.4.",
        b"example.123",
        b"0",
        b"exa mple.com",
        b"example.com\x00evil.com",
        b"ex@mple.com",
        b"example.com:443",
        b"[::1]",
        b"b\xc3\xbccher.example",
        b"caf\xe9.example",
        b"\x80",
        b"a/b",
        b"a*b",
        b"*.example.com",
    ],
)
def test_invalid_host_names_are_not_tls(parser: Parser, name: bytes) -> None:
    assert parser(client_hello(server_name_ext(name))) is RESULT_NOT_TLS


def test_other_name_types_are_skipped(parser: Parser) -> None:
    assert parser(client_hello(server_name_ext((1, b"\xff opaque")))) is RESULT_NO_SNI
    assert parser(client_hello(server_name_ext((1, b"x"), b"Real.Example", (2, b"y")))) == found(
        "real.example"
    )


def test_no_extensions_and_empty_extensions(parser: Parser) -> None:
    assert parser(record(handshake(client_hello_body(extensions=None)))) is RESULT_NO_SNI
    assert parser(client_hello()) is RESULT_NO_SNI
    assert parser(client_hello(padding_ext(0), extension(0xFF01, b"\x00"))) is RESULT_NO_SNI


def test_extension_order_does_not_matter(parser: Parser) -> None:
    alpn = alpn_ext(b"h2", b"http/1.1")
    other = extension(43, b"\x02\x03\x04")
    expected = found("order.example", H2)
    assert parser(client_hello(alpn, other, server_name_ext(b"order.example"))) == expected
    assert parser(client_hello(other, server_name_ext(b"order.example"), alpn)) == expected


def test_sslv3_and_tls10_hellos(parser: Parser) -> None:
    for version in (b"\x03\x00", b"\x03\x01"):
        data = record(handshake(client_hello_body(extensions=[SNI], legacy_version=version)), version=version)
        assert parser(data) == found("ok.example")


# --- ALPN ------------------------------------------------------------------------------------------


def test_alpn_keeps_order_and_bytes(parser: Parser) -> None:
    protocols = (b"http/1.1", b"h2", b"\x00\xffbinary", b"x" * 255)
    result = parser(client_hello(alpn_ext(*protocols), server_name_ext(b"alpn.example")))
    assert result == found("alpn.example", protocols)
    assert all(type(p) is bytes for p in result.alpn)


def test_alpn_lists_in_turn(parser: Parser) -> None:
    # The compiled twin reuses the tuple of the last list it saw: a different list must not get it.
    lists = [(b"h2",), (b"h3",), (b"h2",), (b"h2", b"http/1.1"), (b"h2", b"http/1.0"), (b"h2",), (b"h",)]
    for protocols in lists * 2:
        assert parser(client_hello(SNI, alpn_ext(*protocols))) == found("ok.example", protocols)
        assert parser(client_hello(SNI)) == found("ok.example")


def test_alpn_without_sni(parser: Parser) -> None:
    assert parser(client_hello(alpn_ext(b"h2"))) == SniResult(SniStatus.NO_SNI, None, (b"h2",))


# --- size limit ------------------------------------------------------------------------------------


def test_max_bytes_boundary(parser: Parser) -> None:
    data = ssl_client_hello("limit.example")
    assert parser(data, max_bytes=len(data)) == found("limit.example")
    assert parser(data, len(data) - 1) is RESULT_TOO_LARGE
    # Only the first max_bytes bytes count: more data than that is fine if the hello fits.
    assert parser(data + bytes(100_000), max_bytes=len(data)) == found("limit.example")


def test_too_large_is_known_from_the_first_header(parser: Parser) -> None:
    data = ssl_client_hello("limit.example")
    for cut in range(5, len(data) + 1):
        assert parser(data[:cut], max_bytes=300) is RESULT_TOO_LARGE
    # Before the record length is known, a short prefix could still fit.
    assert parser(data[:4], max_bytes=300) is RESULT_NEED_MORE


def test_too_large_is_known_from_the_handshake_header_across_records(parser: Parser) -> None:
    message = handshake(client_hello_body(extensions=[SNI, padding_ext(6000)]))
    data = reframe(message, 1000)
    assert parser(data, max_bytes=20_000) == found("ok.example")
    assert parser(data, max_bytes=6100) is RESULT_TOO_LARGE
    # The first record alone says the message is ~6 KB, hence at least 7 records.
    assert parser(data[:1005], max_bytes=6100) is RESULT_TOO_LARGE
    assert parser(data[:1005], max_bytes=6200) is RESULT_NEED_MORE
    # A header split over records: known once its 4th byte arrives.
    split = reframe(message, [2, 2, 1000])
    assert parser(split[:7], max_bytes=6100) is RESULT_NEED_MORE
    assert parser(split[:14], max_bytes=6100) is RESULT_TOO_LARGE


def test_hello_larger_than_one_record(parser: Parser) -> None:
    # A ClientHello over 2^14 bytes must span records: legal, but over the default limit.
    message = handshake(client_hello_body(extensions=[padding_ext(20_000), SNI]))
    data = reframe(message, 16384)
    assert parser(data) is RESULT_TOO_LARGE
    assert parser(data[:6]) is RESULT_TOO_LARGE
    assert parser(data, max_bytes=65536) == found("ok.example")


def test_claimed_length_beyond_limit(parser: Parser) -> None:
    huge = b"\x16\x03\x01\x00\x04\x01\xff\xff\xff"
    assert parser(huge) is RESULT_TOO_LARGE
    assert parser(huge, max_bytes=1 << 30) is RESULT_NEED_MORE
    assert parser(b"\x16\x03\x01" + bytes(20_000)) is RESULT_NOT_TLS  # record length 0


@pytest.mark.parametrize("max_bytes", [0, -1, -(1 << 70)])
def test_non_positive_limit_is_too_large(parser: Parser, max_bytes: int) -> None:
    assert parser(b"", max_bytes=max_bytes) is RESULT_TOO_LARGE
    assert parser(ssl_client_hello("x.example"), max_bytes=max_bytes) is RESULT_TOO_LARGE


def test_huge_limit(parser: Parser) -> None:
    assert parser(ssl_client_hello("x.example"), max_bytes=1 << 80) == found("x.example")
    assert parser(b"\x16\x03\x01", max_bytes=1 << 80) is RESULT_NEED_MORE


# --- argument types --------------------------------------------------------------------------------


def test_bytes_like_inputs(parser: Parser) -> None:
    data = ssl_client_hello("types.example", alpn=["h2"])
    expected = found("types.example", (b"h2",))
    assert parser(bytearray(data)) == expected
    assert parser(memoryview(data)) == expected
    assert parser(memoryview(b"xx" + data)[2:]) == expected
    assert parser(memoryview(bytes(x for b in data for x in (b, 0)))[::2]) == expected  # non-contiguous
    assert parser(array.array("B", data)) == expected
    assert parser(memoryview(data + bytes(-len(data) % 4)).cast("I")) == expected


def test_wrong_argument_types_raise_type_error(parser: Parser) -> None:
    with pytest.raises(TypeError):
        parser("\x16\x03\x01")
    with pytest.raises(TypeError):
        parser(517)
    with pytest.raises(TypeError):
        parser(b"\x16", max_bytes=1.5)


def test_results_without_data_are_shared(parser: Parser) -> None:
    assert parser(b"\x16\x03") is RESULT_NEED_MORE
    assert parser(b"\x17") is RESULT_NOT_TLS
    assert SniResult(SniStatus.NEED_MORE) == RESULT_NEED_MORE
    result = parser(client_hello(SNI))
    with pytest.raises(AttributeError):
        result.server_name = "other"  # type: ignore[misc]
    assert hash(result) == hash(found("ok.example"))
