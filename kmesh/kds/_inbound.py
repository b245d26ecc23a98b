"""Receive-side bookkeeping of a KDS session: subscriptions, chunk order, SpecPart reassembly, the window.

The session looks every message up in the transition table first; what is left to check here is what
the table cannot see, the content of a legal message against what came before it:

- a Subscribe's chunks of one type count 0, 1, ... until ``last``; a type is subscribed once per session;
- Resources and SpecParts come only for types this side subscribed to, their chunks of one type count
  0, 1, ... until ``last``, and their nonces are not reused while unanswered;
- at most ``window`` chunks are unanswered at once (this side announced that number in its handshake
  message, so a peer sending more is broken or hostile), and a reassembled record stays below
  ``max_record_bytes``;
- SpecParts are followed by the Resources of their nonce, with nothing of another nonce in between.

Each violation raises :class:`~kmesh.errors.RemoteProtocolError` with its close code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

import msgspec

from kmesh.errors import LocalProtocolError, RemoteProtocolError
from kmesh.kds.messages import CloseCode, Resources, SpecPart, Subscribe
from kmesh.kds.records import Record

__all__ = ["Inbound"]


@dataclass(slots=True)
class _PartialSubscribe:
    next_chunk: int = 0
    known: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Assembly:
    """The SpecParts received so far of one oversize record."""

    type: str
    nonce: str
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


@final
class Inbound:
    __slots__ = (
        "_assembly",
        "_max_record",
        "_next_chunk",
        "_partial",
        "_peer_subscribed",
        "_unanswered",
        "_window",
    )

    def __init__(self, window: int, max_record_bytes: int) -> None:
        self._window = window
        self._max_record = max_record_bytes
        # Types this side subscribed to, each with the chunk number its next Resources must carry.
        self._next_chunk: dict[str, int] = {}
        self._peer_subscribed: set[str] = set()
        self._partial: dict[str, _PartialSubscribe] = {}
        # Chunks received and not yet answered by the caller: nonce -> type.
        self._unanswered: dict[str, str] = {}
        self._assembly: _Assembly | None = None

    @property
    def subscribed(self) -> frozenset[str]:
        return frozenset(self._next_chunk)

    @property
    def peer_subscribed(self) -> frozenset[str]:
        return frozenset(self._peer_subscribed)

    @property
    def unanswered(self) -> frozenset[str]:
        return frozenset(self._unanswered)

    def is_peer_subscribed(self, type_: str) -> bool:
        return type_ in self._peer_subscribed

    def add_subscription(self, type_: str) -> None:
        """Note that this side subscribed to ``type_``; raises LocalProtocolError if it already had."""
        if type_ in self._next_chunk:
            raise LocalProtocolError(
                f"already subscribed to {type_!r}", code=CloseCode.DUPLICATE_SUBSCRIPTION
            )
        self._next_chunk[type_] = 0

    def is_unanswered(self, nonce: str) -> bool:
        return nonce in self._unanswered

    def answer(self, nonce: str) -> None:
        """Settle a received chunk; raises LocalProtocolError if none with that nonce awaits an answer."""
        if self._unanswered.pop(nonce, None) is None:
            raise LocalProtocolError(
                f"no received chunk {nonce!r} awaits an answer", code=CloseCode.UNKNOWN_NONCE
            )

    def on_subscribe(self, message: Subscribe) -> dict[str, str] | None:
        """Take one Subscribe chunk; return the merged ``known`` once the last chunk arrived."""
        type_ = message.type
        if type_ in self._peer_subscribed:
            raise RemoteProtocolError(
                f"the peer subscribed to {type_!r} twice", code=CloseCode.DUPLICATE_SUBSCRIPTION
            )
        partial = self._partial.setdefault(type_, _PartialSubscribe())
        if message.chunk != partial.next_chunk:
            raise RemoteProtocolError(
                f"Subscribe chunk {message.chunk} of {type_!r} arrived, expected {partial.next_chunk}",
                code=CloseCode.BAD_CHUNK,
            )
        partial.known.update(message.known)
        partial.next_chunk += 1
        if not message.last:
            return None
        del self._partial[type_]
        self._peer_subscribed.add(type_)
        return partial.known

    def on_spec_part(self, part: SpecPart) -> None:
        self._check_subscribed(part.type)
        assembly = self._assembly
        if assembly is None:
            self._check_new_nonce(part.nonce)
            assembly = self._assembly = _Assembly(part.type, part.nonce)
        elif (assembly.type, assembly.nonce) != (part.type, part.nonce):
            raise RemoteProtocolError(
                f"a SpecPart of {part.type!r} nonce {part.nonce!r} arrived while the record of nonce "
                f"{assembly.nonce!r} was incomplete",
                code=CloseCode.BAD_SPEC_PART,
            )
        assembly.size += len(part.data)
        if assembly.size > self._max_record:
            raise RemoteProtocolError(
                f"a record of {part.type!r} exceeds max_record_bytes ({self._max_record})",
                code=CloseCode.RECORD_TOO_LARGE,
            )
        assembly.parts.append(part.data)

    def on_resources(self, message: Resources) -> list[Record]:
        """Take one Resources chunk, now unanswered; return its upserts (with a reassembled spec)."""
        type_, nonce = message.type, message.nonce
        self._check_subscribed(type_)
        upserts = message.upserts
        assembly = self._assembly
        if assembly is not None:
            if (
                (assembly.type, assembly.nonce) != (type_, nonce)
                or message.spec_parts != len(assembly.parts)
                or len(upserts) != 1
                or message.removals
                or upserts[0].spec
            ):
                raise RemoteProtocolError(
                    f"Resources {type_!r} nonce {nonce!r} does not complete the {len(assembly.parts)} "
                    f"SpecParts of nonce {assembly.nonce!r}",
                    code=CloseCode.BAD_SPEC_PART,
                )
            upserts = [msgspec.structs.replace(upserts[0], spec=b"".join(assembly.parts))]
            self._assembly = None
        elif message.spec_parts:
            raise RemoteProtocolError(
                f"Resources {type_!r} nonce {nonce!r} announces {message.spec_parts} SpecParts, none came",
                code=CloseCode.BAD_SPEC_PART,
            )
        else:
            self._check_new_nonce(nonce)
        expected = self._next_chunk[type_]
        if message.chunk != expected:
            raise RemoteProtocolError(
                f"Resources chunk {message.chunk} of {type_!r} arrived, expected {expected}",
                code=CloseCode.BAD_CHUNK,
            )
        self._next_chunk[type_] = 0 if message.last else expected + 1
        self._unanswered[nonce] = type_
        return upserts

    def clear(self) -> None:
        """Forget what is in progress: the connection is gone."""
        self._assembly = None
        self._partial.clear()
        self._unanswered.clear()

    def _check_subscribed(self, type_: str) -> None:
        if type_ not in self._next_chunk:
            raise RemoteProtocolError(
                f"the peer sent resources of {type_!r}, which this side did not subscribe to",
                code=CloseCode.UNSUBSCRIBED_TYPE,
            )

    def _check_new_nonce(self, nonce: str) -> None:
        if nonce in self._unanswered:
            raise RemoteProtocolError(
                f"the peer reused nonce {nonce!r} before it was answered", code=CloseCode.DUPLICATE_NONCE
            )
        if len(self._unanswered) >= self._window:
            raise RemoteProtocolError(
                f"the peer sent a chunk beyond the window of {self._window} unanswered chunks",
                code=CloseCode.FLOW_CONTROL,
            )
