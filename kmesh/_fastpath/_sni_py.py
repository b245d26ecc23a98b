"""Reads the server name (SNI) and ALPN list from a TLS ClientHello, without decrypting: the reference.

This is the pure-Python twin of ``_sni_c.pyx`` and the specification of its behaviour: the two must return
equal results for every input (the tests check it on real handshakes and with Hypothesis). Change both, or
neither. The zone ingress calls it on the first bytes of a connection to learn where to send the still
encrypted stream (DESIGN.md, "Cross-zone routing").

Sans-IO and stateless: pass everything received so far; ``NEED_MORE`` means "read more and call again".
A ClientHello may be split across reads and across several TLS records (RFC 8446 5.1 lets a handshake
message span records, even its 4-byte header); whatever follows it, in its last record or after, is
ignored. Calling again with a longer buffer re-parses from the start, which costs little for a message
that is almost always one read.

What is checked, in stream order, so that a prefix of a stream never gives a different final answer than
the whole stream (a prefix may only say ``NEED_MORE`` where the stream says something definite):

- Records (RFC 8446 5.1): content type 22 (handshake), version major 3, length 1..2^14. Only complete
  records are read; every record until the ClientHello is complete must be a handshake record.
- The handshake message is a ClientHello (type 1). Its body is parsed once complete: legacy version major
  3, a session id of at most 32 bytes, a non-empty even-length cipher-suite list, at least one
  compression method, and an extension block (optional, as in TLS 1.0-1.2) that exactly fills the
  message. Bytes after the ClientHello are not looked at.
- ``server_name`` (RFC 6066 3): at most once; a non-empty list of ``(type, opaque<1..2^16-1>)`` entries
  that fills the extension exactly; at most one ``host_name`` (type 0) entry, other types skipped (as Go's
  crypto/tls does). The host name must be a DNS name: ASCII letters, digits, ``-`` and ``_`` (seen in
  real service names), labels of 1..63 bytes not starting or ending with ``-``, at most 253 bytes, and a
  last label that is not all digits (an IPv4 literal, forbidden by RFC 6066). One trailing dot is removed
  first: RFC 6066 forbids it, but OpenSSL clients (Python's ``ssl`` among them) send the name exactly as
  the application gave it, and ``example.com.`` is the same name. It is returned lowercased. Anything
  else makes the whole ClientHello malformed: ``NOT_TLS``.
- ``application_layer_protocol_negotiation`` (RFC 7301 3.1): at most once; a non-empty list of non-empty
  names that fills the extension exactly; returned as ``bytes`` in the client's order.
- Size: only the first ``max_bytes`` bytes of ``data`` are considered. The answer is ``TOO_LARGE`` as
  soon as a complete record header or the handshake header shows that the ClientHello (with the whole
  record that ends it) needs more than ``max_bytes`` bytes of the stream, and in any case when
  ``max_bytes`` bytes are in and the ClientHello is still incomplete.

It never raises for any content of ``data`` and never indexes past what it has checked; it raises
``TypeError`` only when ``data`` is not a bytes-like object or ``max_bytes`` is not an integer.
"""

from __future__ import annotations

import operator
import re
import struct
from typing import Final

from kmesh._fastpath._sni_types import (
    RESULT_NEED_MORE,
    RESULT_NO_SNI,
    RESULT_NOT_TLS,
    RESULT_TOO_LARGE,
    SniResult,
    SniStatus,
)

__all__ = ["parse_client_hello"]

_RECORD_HANDSHAKE: Final = 22
_CLIENT_HELLO: Final = 1
_MAX_RECORD_LEN: Final = 1 << 14  # RFC 8446 5.1: a plaintext fragment is at most 2^14 bytes
_EXT_SERVER_NAME: Final = 0
_EXT_ALPN: Final = 16
_NAME_TYPE_HOST: Final = 0
_MAX_HOST_NAME: Final = 253

# One label: 1..63 of [A-Za-z0-9_-], not starting or ending with "-". Length is checked before matching,
# so the backtracking of the inner repeat is bounded.
_LABEL: Final = rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_match_host_name: Final = re.compile(_LABEL + rb"(?:\." + _LABEL + rb")*").fullmatch
# Two big-endian uint16s (an extension's type and length) in one call: faster than four index operations.
_read_u16_pair: Final = struct.Struct(">HH").unpack_from


class _Malformed(Exception):
    """Internal: an extension is malformed. Never leaves this module."""


def parse_client_hello(data: bytes | bytearray | memoryview, max_bytes: int = 16384) -> SniResult:
    """Parses the start of a TLS stream; see the module docstring for what is checked.

    Raises ``TypeError`` if ``data`` is not bytes-like or ``max_bytes`` is not an integer; never for the
    content of ``data``.
    """
    limit = operator.index(max_bytes)
    buf = data if type(data) is bytes else memoryview(data).tobytes()
    n = len(buf)
    if n > limit:
        n = max(limit, 0)

    # The common case, taken without the general walk below (which gives the same answer for it): one
    # complete record that holds the whole ClientHello.
    if n >= 9 and buf[0] == _RECORD_HANDSHAKE and buf[1] == 3 and buf[5] == _CLIENT_HELLO:
        end = 5 + (buf[3] << 8 | buf[4])
        total = 4 + (buf[6] << 16 | buf[7] << 8 | buf[8])
        if 5 < end <= n and end <= 5 + _MAX_RECORD_LEN and total <= end - 5:
            return _parse_body(buf, 9, 5 + total)

    pos = 0
    got = 0  # handshake bytes in the complete records read so far
    total = -1  # length of the handshake message with its 4-byte header, once that header is read
    header = b""  # the handshake header, collected while it may still be split across records
    spans: list[tuple[int, int]] = []
    while True:
        if n - pos < 5:
            # A partial record header: reject what its first bytes already rule out.
            if pos < n and buf[pos] != _RECORD_HANDSHAKE:
                return RESULT_NOT_TLS
            if pos + 1 < n and buf[pos + 1] != 3:
                return RESULT_NOT_TLS
            # Its remaining bytes may still make this NOT_TLS, so TOO_LARGE must wait until they can no
            # longer arrive: a prefix never contradicts the whole stream.
            return RESULT_TOO_LARGE if n >= limit else RESULT_NEED_MORE
        if buf[pos] != _RECORD_HANDSHAKE or buf[pos + 1] != 3:
            return RESULT_NOT_TLS
        rlen = buf[pos + 3] << 8 | buf[pos + 4]
        if rlen == 0 or rlen > _MAX_RECORD_LEN:
            return RESULT_NOT_TLS
        start = pos + 5
        end = start + rlen
        # The fewest stream bytes that can complete the message: this whole record, and if the message
        # does not end in it, at least one more record holding the rest.
        need = end
        if total >= 0 and total - got > rlen:
            need = end + 5 + (total - got - rlen)
        if need > limit:
            return RESULT_TOO_LARGE
        if end > n:
            return RESULT_NEED_MORE
        spans.append((start, end))
        got += rlen
        if total < 0:
            header += buf[start : min(end, start + 4 - len(header))]
            if header[0] != _CLIENT_HELLO:
                return RESULT_NOT_TLS
            if len(header) == 4:
                total = 4 + (header[1] << 16 | header[2] << 8 | header[3])
                if got < total and end + 5 + (total - got) > limit:
                    return RESULT_TOO_LARGE
        if 0 <= total <= got:
            break
        pos = end

    if len(spans) == 1:
        return _parse_body(buf, 9, 5 + total)
    message = b"".join([buf[s:e] for s, e in spans])
    return _parse_body(message, 4, total)


def _parse_body(b: bytes, p: int, end: int) -> SniResult:
    """Parses the ClientHello body ``b[p:end]`` (RFC 8446 4.1.2, RFC 5246 7.4.1.2)."""
    if end - p < 35 or b[p] != 3:  # legacy_version, random, session id length
        return RESULT_NOT_TLS
    p += 34
    session_id_len = b[p]
    if session_id_len > 32:
        return RESULT_NOT_TLS
    p += 1 + session_id_len
    if p + 2 > end:
        return RESULT_NOT_TLS
    suites_len = b[p] << 8 | b[p + 1]
    if suites_len < 2 or suites_len & 1:
        return RESULT_NOT_TLS
    p += 2 + suites_len
    if p >= end:
        return RESULT_NOT_TLS
    methods_len = b[p]
    if methods_len == 0:
        return RESULT_NOT_TLS
    p += 1 + methods_len
    if p == end:
        return RESULT_NO_SNI  # no extension block at all (TLS 1.0-1.2 allow it)
    if p + 2 > end or p + 2 + (b[p] << 8 | b[p + 1]) != end:
        return RESULT_NOT_TLS
    p += 2

    name: str | None = None
    alpn: tuple[bytes, ...] = ()
    seen_sni = seen_alpn = False
    try:
        while p < end:
            if p + 4 > end:
                return RESULT_NOT_TLS
            ext_type, ext_len = _read_u16_pair(b, p)
            ext_end = p + 4 + ext_len
            if ext_end > end:
                return RESULT_NOT_TLS
            if ext_type == _EXT_SERVER_NAME:
                if seen_sni:
                    return RESULT_NOT_TLS
                seen_sni = True
                name = _server_name(b, p + 4, ext_end)
            elif ext_type == _EXT_ALPN:
                if seen_alpn:
                    return RESULT_NOT_TLS
                seen_alpn = True
                alpn = _alpn(b, p + 4, ext_end)
            p = ext_end
    except _Malformed:
        return RESULT_NOT_TLS
    if name is not None:
        return SniResult(SniStatus.FOUND, name, alpn)
    if alpn:
        return SniResult(SniStatus.NO_SNI, None, alpn)
    return RESULT_NO_SNI


def _server_name(b: bytes, p: int, end: int) -> str | None:
    """The host name in a ``server_name`` extension body ``b[p:end]``, or None if it has no host_name."""
    if end - p < 3 or p + 2 + (b[p] << 8 | b[p + 1]) != end:
        raise _Malformed
    p += 2
    name: str | None = None
    while p < end:
        if p + 3 > end:
            raise _Malformed
        name_len = b[p + 1] << 8 | b[p + 2]
        name_end = p + 3 + name_len
        if name_len == 0 or name_end > end:
            raise _Malformed
        if b[p] == _NAME_TYPE_HOST:
            if name is not None:
                raise _Malformed  # RFC 6066: at most one name of each type
            name = _host_name(b[p + 3 : name_end])
        p = name_end
    return name


def _host_name(raw: bytes) -> str:
    """Validates a host name (see the module docstring) and returns it lowercased."""
    if raw[-1:] == b".":
        raw = raw[:-1]
    if len(raw) > _MAX_HOST_NAME or _match_host_name(raw) is None:
        raise _Malformed
    if raw.rpartition(b".")[2].isdigit():
        raise _Malformed
    return raw.decode("ascii").lower()


def _alpn(b: bytes, p: int, end: int) -> tuple[bytes, ...]:
    """The protocol names in an ALPN extension body ``b[p:end]``."""
    if end - p < 3 or p + 2 + (b[p] << 8 | b[p + 1]) != end:
        raise _Malformed
    p += 2
    names: list[bytes] = []
    while p < end:
        name_end = p + 1 + b[p]
        if name_end == p + 1 or name_end > end:
            raise _Malformed
        names.append(b[p + 1 : name_end])
        p = name_end
    return tuple(names)
