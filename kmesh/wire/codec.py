"""Typed wire messages over frames: each frame body is one msgpack-encoded msgspec Struct.

A protocol (KDS, the DP protocol) declares its messages as a tagged union of Structs, usually subclasses
of :class:`WireMessage`, and builds one :class:`MessageCodec` per connection. The codec owns a
:class:`~kmesh.wire.framing.FrameDecoder` and one msgspec Encoder/Decoder pair, built once because msgspec
compiles the type on construction. It does no I/O (sans-IO): the adapter writes what :meth:`encode`
returns and feeds what it reads to :meth:`MessageCodec.feed`.

Compatibility rules, which every wire message type must keep:

- Messages only ever *gain* fields, and every added field has a default. A peer running an older kmesh
  ignores fields it does not know (wire Structs never set ``forbid_unknown_fields``), and a newer peer
  reading an older message gets the default. Fields are never removed, renamed, retyped, or given a new
  default value; a field that is no longer used keeps being accepted.
- Fields are keyed by name (never ``array_like``), so adding a field cannot shift another.
- Every message carries its tag in the ``kind`` field. A peer refuses a tag it does not know, so a new
  message kind may only be sent to a peer that announced the matching feature in its ``Hello``.

The constructor enforces what it can of these rules on the union it is given.
"""

from __future__ import annotations

import functools
from typing import Any, Final, Generic, TypeVar, final

import msgspec

from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encode_frame

__all__ = ["MessageCodec", "WireMessage"]

T = TypeVar("T")

# msgspec error texts can quote the offending value (an unknown tag, a wrong-typed string); a peer controls
# that value, so it is cut short before it reaches a log line or a close reason.
_MAX_DETAIL_CHARS: Final = 200


class WireMessage(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="kind"):
    """Base for wire messages: frozen, keyword-only, tagged with the class name in ``kind``.

    Subclasses repeat ``frozen=True, kw_only=True`` (msgspec does not inherit ``kw_only``, and type checkers
    refuse a non-frozen subclass of a frozen one) and follow the module's compatibility rules.
    """


def _shorten(text: str) -> str:
    # Keep both ends: msgspec puts the quoted value in the middle and the field path (`$.kind`) last.
    if len(text) <= _MAX_DETAIL_CHARS:
        return text
    head = _MAX_DETAIL_CHARS * 2 // 3
    tail = _MAX_DETAIL_CHARS - head
    return f"{text[:head]}...({len(text) - head - tail} chars cut)...{text[-tail:]}"


@functools.cache
def _struct_members(message_type: Any) -> tuple[type[msgspec.Struct], ...]:
    """Return the Struct classes of ``message_type``; raise ``TypeError`` if a rule above is broken.

    Cached: inspecting a union costs milliseconds, and every connection builds a codec for the same one.
    """
    info = msgspec.inspect.type_info(message_type)
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    classes: list[type[msgspec.Struct]] = []
    for member in members:
        if not isinstance(member, msgspec.inspect.StructType):
            raise TypeError(f"wire messages must be msgspec Structs, got {member!r}")
        name = member.cls.__qualname__
        if member.tag is None or member.tag_field is None:
            raise TypeError(f"wire message {name} has no tag: declare it with tag=True (or a tag value)")
        if member.forbid_unknown_fields:
            raise TypeError(
                f"wire message {name} sets forbid_unknown_fields: it could not read messages of newer peers"
            )
        if member.array_like:
            raise TypeError(f"wire message {name} is array_like: fields must be keyed by name")
        classes.append(member.cls)
    return tuple(classes)


@functools.cache
def _decoder_for(message_type: Any) -> msgspec.msgpack.Decoder[Any]:
    # Decoders are immutable and thread-safe, so one per union serves every connection.
    return msgspec.msgpack.Decoder(message_type)


@final
class MessageCodec(Generic[T]):
    """Encodes messages of one tagged union into frames and decodes received bytes back into messages.

    Build it as ``MessageCodec[KdsMessage](KdsMessage)`` where ``KdsMessage = Hello | Welcome | ...``.
    Raises ``TypeError`` if the union breaks the module's compatibility rules.

    Decoding raises :class:`RemoteProtocolError`: the framing codes (``frame_too_large``, ``empty_frame``,
    ``truncated_frame``) or ``bad_message`` for a body that is not msgpack, has an unknown tag, or does
    not match the message's fields. After such an error the codec stays failed.
    """

    __slots__ = ("_classes", "_decoder", "_encoder", "_error", "_frames")

    def __init__(self, message_type: Any, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._classes = _struct_members(message_type)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[T] = _decoder_for(message_type)
        self._frames = FrameDecoder(max_frame_bytes)
        self._error: RemoteProtocolError | None = None

    @property
    def max_frame_bytes(self) -> int:
        return self._frames.max_frame_bytes

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet decoded into messages."""
        return self._frames.buffered_bytes

    def encode(self, message: T) -> bytes:
        """Return ``message`` as one whole frame, ready to write.

        Raises :class:`LocalProtocolError`: ``bad_message`` if it is not a member of the union or holds a
        value msgpack cannot carry, ``frame_too_large`` if it encodes to more than ``max_frame_bytes``
        (send a large state as several messages instead).
        """
        if not isinstance(message, self._classes):
            raise LocalProtocolError(
                f"{type(message).__qualname__} is not a message of this protocol", code="bad_message"
            )
        try:
            body = self._encoder.encode(message)
        except (TypeError, OverflowError, msgspec.EncodeError) as exc:
            raise LocalProtocolError(
                f"cannot encode {type(message).__qualname__}: {_shorten(str(exc))}", code="bad_message"
            ) from exc
        return encode_frame(body, self._frames.max_frame_bytes)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes; raises :class:`RemoteProtocolError` on a bad frame length."""
        self._raise_if_failed()
        self._frames.receive_data(data)

    def receive_eof(self) -> None:
        """Note the peer closed; raises :class:`RemoteProtocolError` if it stopped inside a frame."""
        self._raise_if_failed()
        self._frames.receive_eof()

    def next_message(self) -> T | None:
        """Return the next decoded message, or ``None`` until more data arrives."""
        self._raise_if_failed()
        body = self._frames.next_frame()
        if body is None:
            return None
        try:
            return self._decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # DecodeError: not msgpack at all; ValidationError: msgpack of the wrong shape (unknown tag,
            # missing or mistyped field). Both mean the stream is no longer trustworthy.
            self._error = RemoteProtocolError(
                f"undecodable message in a {len(body)}-byte frame: {_shorten(str(exc))}", code="bad_message"
            )
            raise self._error from exc

    def feed(self, data: bytes | bytearray | memoryview) -> list[T]:
        """Add received bytes and return every message completed by them, in order."""
        self.receive_data(data)
        messages: list[T] = []
        while (message := self.next_message()) is not None:
            messages.append(message)
        return messages

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(
                f"message codec already failed: {self._error}", code=self._error.code
            ) from self._error
