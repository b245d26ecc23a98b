"""Length-prefixed frames: the one framing under both KDS and the DP protocol (DESIGN.md, "Wire").

A frame is a 4-byte big-endian unsigned length followed by that many bytes of body (a msgpack document,
see :mod:`kmesh.wire.codec`). This module only cuts a byte stream into bodies and back; it knows nothing
about msgpack and does no I/O (sans-IO, as h11): the adapter hands received bytes to
:meth:`FrameDecoder.receive_data` and takes whole bodies out of :meth:`FrameDecoder.next_frame`.

Rules:

- A frame longer than ``max_frame_bytes`` is a protocol error. The decoder checks every length prefix as
  soon as its four bytes arrive, so an oversized (or garbage) length fails at once instead of waiting for,
  and buffering, a body that may never come. No payload is limited by this size: senders cut large states
  into several messages.
- A zero-length frame is a protocol error: no valid msgpack document is empty, and accepting empty frames
  would let a peer keep a connection busy without ever sending a message.
- After an error the decoder stays failed: the stream position is lost, so nothing after it can be trusted.
- Buffering is linear: received bytes go into one ``bytearray`` read through an offset, and the consumed
  prefix is dropped only once it is at least half of the buffer, so each byte is copied O(1) times however
  the stream is chunked. Once the caller has drained every complete frame, fewer than
  ``FRAME_HEADER_BYTES + max_frame_bytes`` bytes stay buffered.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, NoReturn, final

from kmesh.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "FRAME_HEADER_BYTES",
    "FrameDecoder",
    "encode_frame",
]

DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
FRAME_HEADER_BYTES: Final = 4
# The largest length the 4-byte prefix can express; no limit may exceed it.
_MAX_EXPRESSIBLE: Final = 0xFFFF_FFFF
_HEADER: Final = struct.Struct(">I")
# Below this many consumed bytes compaction is not worth a memmove: keeps tiny frames from compacting
# after every read while staying far below any limit that matters for memory.
_COMPACT_MIN_BYTES: Final = 64 * 1024


def _check_limit(max_frame_bytes: int) -> None:
    if not 1 <= max_frame_bytes <= _MAX_EXPRESSIBLE:
        raise ValueError(f"max_frame_bytes must be between 1 and {_MAX_EXPRESSIBLE}, got {max_frame_bytes}")


def _too_large(size: int, limit: int) -> str:
    return f"frame of {size} bytes exceeds the limit of {limit} bytes (max_frame_bytes)"


def encode_frame(body: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Return ``body`` with its length prefix.

    Raises :class:`LocalProtocolError` with ``code="frame_too_large"`` when the body is longer than
    ``max_frame_bytes`` (the peer would refuse it), and with ``code="empty_frame"`` for an empty body.
    Raises ``ValueError`` for a limit the prefix cannot express.
    """
    _check_limit(max_frame_bytes)
    size = len(body)
    if size > max_frame_bytes:
        raise LocalProtocolError(_too_large(size, max_frame_bytes), code="frame_too_large")
    if size == 0:
        raise LocalProtocolError("refusing to send an empty frame", code="empty_frame")
    return _HEADER.pack(size) + body


@final
class FrameDecoder:
    """Cuts a received byte stream into frame bodies.

    ``receive_data`` raises :class:`RemoteProtocolError` (``code="frame_too_large"`` or
    ``code="empty_frame"``) as soon as a bad length prefix is seen; every later call raises it again.
    """

    __slots__ = ("_buf", "_error", "_max", "_pos", "_scan")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        _check_limit(max_frame_bytes)
        self._max = max_frame_bytes
        self._buf = bytearray()
        # Start of the first frame not yet returned by next_frame.
        self._pos = 0
        # Start of the first frame whose length prefix has not been validated yet (>= _pos).
        self._scan = 0
        self._error: RemoteProtocolError | None = None

    @property
    def max_frame_bytes(self) -> int:
        return self._max

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        return len(self._buf) - self._pos

    @property
    def failed(self) -> bool:
        return self._error is not None

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes. Raises :class:`RemoteProtocolError` on a bad length prefix."""
        self._raise_if_failed()
        if not data:
            return
        self._buf += data
        self._validate_new_headers()

    def receive_eof(self) -> None:
        """Note that the peer closed the stream.

        Raises :class:`RemoteProtocolError` with ``code="truncated_frame"`` if the stream ended inside a
        frame; bytes of complete frames not yet taken out are not an error.
        """
        self._raise_if_failed()
        end = len(self._buf)
        if self._scan != end:
            # _scan < end: a length prefix is cut short; _scan > end: a body is.
            start = self._scan if self._scan < end else self._last_header_start()
            self._fail(
                RemoteProtocolError(
                    f"stream ended inside a frame ({end - start} bytes of an incomplete frame)",
                    code="truncated_frame",
                )
            )

    def next_frame(self) -> bytes | None:
        """Return the next complete frame body, or ``None`` until more data arrives."""
        self._raise_if_failed()
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < FRAME_HEADER_BYTES:
            return None
        (size,) = _HEADER.unpack_from(buf, pos)
        end = pos + FRAME_HEADER_BYTES + size
        if end > len(buf):
            return None
        # One copy straight out of the buffer (slicing the bytearray itself would copy twice); the view is
        # released at once, since a bytearray with a live export cannot be resized.
        with memoryview(buf) as view:
            body = bytes(view[pos + FRAME_HEADER_BYTES : end])
        self._pos = end
        self._compact()
        return body

    def frames(self) -> Iterator[bytes]:
        """Yield every complete frame body buffered so far."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _validate_new_headers(self) -> None:
        # Walk length prefixes that became complete with this chunk. Each prefix is read once: _scan jumps
        # over the body, so a large frame arriving in many small chunks costs O(1) per chunk here.
        buf = self._buf
        scan = self._scan
        while scan + FRAME_HEADER_BYTES <= len(buf):
            (size,) = _HEADER.unpack_from(buf, scan)
            if size > self._max:
                self._fail(RemoteProtocolError(_too_large(size, self._max), code="frame_too_large"))
            if size == 0:
                self._fail(RemoteProtocolError("peer sent an empty frame", code="empty_frame"))
            scan += FRAME_HEADER_BYTES + size
        self._scan = scan

    def _last_header_start(self) -> int:
        # The frame that _scan points past starts at the last validated prefix; find it by walking from
        # _pos. Only used on EOF, so the walk's cost does not matter.
        start = self._pos
        while True:
            (size,) = _HEADER.unpack_from(self._buf, start)
            nxt = start + FRAME_HEADER_BYTES + size
            if nxt >= self._scan:
                return start
            start = nxt

    def _compact(self) -> None:
        pos = self._pos
        if pos == len(self._buf):
            # Everything consumed: start afresh (cheap, and the common case for request/response traffic).
            self._buf.clear()
        elif pos >= _COMPACT_MIN_BYTES and pos * 2 >= len(self._buf):
            del self._buf[:pos]
        else:
            return
        self._scan -= pos
        self._pos = 0

    def _fail(self, error: RemoteProtocolError) -> NoReturn:
        # Drop the buffer: nothing in it can be trusted, and a failed decoder must not pin memory.
        self._error = error
        self._buf = bytearray()
        self._pos = self._scan = 0
        raise error

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(
                f"frame decoder already failed: {self._error}", code=self._error.code
            ) from self._error
