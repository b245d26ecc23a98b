"""Builds TLS ClientHellos for the SNI parser tests: real ones from Python's ``ssl``, and hand-made ones.

Hand-made hellos follow RFC 8446 4.1.2 byte for byte, with every field overridable, so a test can break
exactly one thing. ``reframe`` cuts a handshake message into records of chosen sizes (RFC 8446 5.1 lets
a handshake message, even its header, span records).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence

HANDSHAKE = 22
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_PADDING = 21

# A few real TLS 1.3 and 1.2 suites; the parser never looks inside this list, only at its length.
DEFAULT_SUITES = bytes.fromhex("130113021303c02bc02fc02cc030")


def ssl_client_hello(
    server_hostname: str | None,
    *,
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    alpn: Sequence[str] | None = None,
) -> bytes:
    """The first flight of a real client (OpenSSL through Python's ssl), as it would reach the ingress."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = version
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # the client has written its ClientHello and now waits for the server
    else:
        raise AssertionError("a handshake cannot complete without a server")
    return outgoing.read()


def record(payload: bytes, *, content_type: int = HANDSHAKE, version: bytes = b"\x03\x01") -> bytes:
    return bytes([content_type]) + version + len(payload).to_bytes(2, "big") + payload


def handshake_message(stream: bytes) -> bytes:
    """The concatenated payloads of the records of ``stream`` (which must hold whole records only)."""
    out = bytearray()
    pos = 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos + 3 : pos + 5], "big")
        out += stream[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return bytes(out)


def reframe(message: bytes, sizes: int | Iterable[int]) -> bytes:
    """``message`` cut into handshake records of ``sizes`` bytes (the last size repeats)."""
    size_list = [sizes] if isinstance(sizes, int) else list(sizes)
    out = bytearray()
    pos = 0
    i = 0
    while pos < len(message):
        size = size_list[min(i, len(size_list) - 1)]
        out += record(message[pos : pos + size])
        pos += size
        i += 1
    return bytes(out)


def vec(data: bytes, length_bytes: int) -> bytes:
    """A TLS vector: its length in ``length_bytes`` big-endian bytes, then the data."""
    return len(data).to_bytes(length_bytes, "big") + data


def extension(ext_type: int, body: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + vec(body, 2)


def server_name_ext(*names: bytes | tuple[int, bytes]) -> bytes:
    """A server_name extension; a bare name is a host_name (type 0) entry."""
    entries = b"".join(
        bytes([0]) + vec(n, 2) if isinstance(n, bytes) else bytes([n[0]]) + vec(n[1], 2) for n in names
    )
    return extension(EXT_SERVER_NAME, vec(entries, 2))


def alpn_ext(*protocols: bytes) -> bytes:
    return extension(EXT_ALPN, vec(b"".join(vec(p, 1) for p in protocols), 2))


def padding_ext(length: int) -> bytes:
    return extension(EXT_PADDING, bytes(length))


def client_hello_body(
    *,
    extensions: Sequence[bytes] | None = (),
    legacy_version: bytes = b"\x03\x03",
    random: bytes = bytes(range(32)),
    session_id: bytes = bytes(32),
    suites: bytes = DEFAULT_SUITES,
    methods: bytes = b"\x00",
    raw_extensions: bytes | None = None,
) -> bytes:
    """A ClientHello body. ``extensions=None`` leaves out the extension block entirely (TLS 1.0-1.2);
    ``raw_extensions`` replaces the whole block, length prefix included."""
    body = legacy_version + random + vec(session_id, 1) + vec(suites, 2) + vec(methods, 1)
    if raw_extensions is not None:
        return body + raw_extensions
    if extensions is None:
        return body
    return body + vec(b"".join(extensions), 2)


def handshake(body: bytes, *, msg_type: int = 1) -> bytes:
    return bytes([msg_type]) + vec(body, 3)


def client_hello(*extensions: bytes, **fields: bytes) -> bytes:
    """A complete single-record ClientHello with these extensions."""
    return record(handshake(client_hello_body(extensions=list(extensions), **fields)))
