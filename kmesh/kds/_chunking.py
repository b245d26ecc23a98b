"""Cutting a batch of records, removals or known hashes into pieces that each fit one frame.

Everything here works from :func:`~kmesh.kds.records.encoded_size`, an upper bound, plus the size of the
message around the pieces measured once by encoding it with its variable numbers at their widest, so a
piece planned here can never encode to more than the budget. Nothing is encoded twice.

Rules:

- A batch always yields at least one piece, possibly empty: an empty chunk still carries ``last``, which
  is how a receiver learns that nothing differs.
- Within one batch ids are distinct, so the order of application does not matter and a record that fits
  no frame (sent as SpecParts by the session) does not end the piece being filled.
- Only something that could never fit is refused: a single removal id, known entry, or record's metadata
  larger than a whole frame. That raises :class:`~kmesh.errors.LocalProtocolError` (``record_too_large``).
- A Nack's errors are not refused but trimmed: reasons are shortened, and errors beyond the frame are
  counted in one last entry, since the refusal itself must reach the sender.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, final

import msgspec

from kmesh.errors import LocalProtocolError
from kmesh.kds.messages import CloseCode, Nack, Resources, SpecPart, Subscribe
from kmesh.kds.records import Record, RecordError, encoded_size

__all__ = [
    "MAX_REASON_CHARS",
    "Batch",
    "Oversized",
    "check_batch",
    "cut_bytes",
    "fit_nack_errors",
    "nack_overhead",
    "plan_resources",
    "resources_overhead",
    "shorten",
    "spec_part_overhead",
    "split_known",
    "subscribe_overhead",
]

# Reasons come from peers and from nested errors; they go into logs and frames, so they stay short.
MAX_REASON_CHARS: Final = 512
_NACK_SUMMARY: Final = "{} more refused records not listed: the Nack would not fit a frame"

# Widest msgpack forms: a uint64 is 9 bytes; str/bin/array/map headers grow by at most 4 bytes from empty.
_WIDE_INT: Final = 2**64 - 1
_HEADER_GROWTH: Final = 4
# Per string inside a list or a map: its header of at most 5 bytes.
_STR_HEADER: Final = 5
# The session's nonces are decimal counters; 24 characters outlast any connection.
NONCE_MAX_CHARS: Final = 24
_WIDEST_NONCE: Final = "9" * NONCE_MAX_CHARS


def _size(message: msgspec.Struct) -> int:
    return len(msgspec.msgpack.encode(message))


def _str_size(text: str) -> int:
    return (len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))) + _STR_HEADER


def resources_overhead(type_: str) -> int:
    """Bytes of a Resources message of ``type_`` around its upserts and removals."""
    empty = Resources(type=type_, nonce=_WIDEST_NONCE, chunk=_WIDE_INT, last=False, spec_parts=_WIDE_INT)
    return _size(empty) + 2 * _HEADER_GROWTH


def spec_part_overhead(type_: str) -> int:
    """Bytes of a SpecPart message of ``type_`` around its data."""
    return _size(SpecPart(type=type_, nonce=_WIDEST_NONCE, data=b"")) + _HEADER_GROWTH


def subscribe_overhead(type_: str) -> int:
    """Bytes of a Subscribe message of ``type_`` around its known entries."""
    return _size(Subscribe(type=type_, known={}, chunk=_WIDE_INT, last=False)) + _HEADER_GROWTH


def nack_overhead(nonce: str) -> int:
    """Bytes of a Nack of ``nonce`` around its errors."""
    return _size(Nack(nonce=nonce)) + _HEADER_GROWTH


def _error_size(rid: str, reason: str) -> int:
    # A RecordError is a two-entry map (1-byte header) of four strings.
    return 1 + _str_size("id") + _str_size(rid) + _str_size("reason") + _str_size(reason)


def shorten(text: str) -> str:
    """``text`` cut to at most MAX_REASON_CHARS characters."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def fit_nack_errors(errors: Iterable[RecordError], budget: int) -> list[RecordError]:
    """Return ``errors`` with short reasons, as many as fit ``budget`` bytes, then a count of the rest."""
    budget -= _error_size("", _NACK_SUMMARY.format(2**64))
    fitted: list[RecordError] = []
    dropped = 0
    for error in errors:
        short = RecordError(id=error.id, reason=shorten(error.reason))
        size = _error_size(short.id, short.reason)
        if dropped or size > budget:
            dropped += 1
            continue
        fitted.append(short)
        budget -= size
    if dropped:
        fitted.append(RecordError(id="", reason=_NACK_SUMMARY.format(dropped)))
    return fitted


def check_batch(type_: str, upserts: Sequence[Record], removals: Sequence[str]) -> None:
    """Raise LocalProtocolError unless every upsert is of ``type_`` and every id appears once."""
    ids: set[str] = set()
    for record in upserts:
        if record.type != type_:
            raise LocalProtocolError(f"record {record.id!r} is a {record.type!r}, not a {type_!r}")
        ids.add(record.id)
    ids.update(removals)
    if len(ids) != len(upserts) + len(removals):
        raise LocalProtocolError("an id appears twice among the upserts and removals of one call")


@final
@dataclass(slots=True)
class Batch:
    """Records and removals that fit one Resources frame together."""

    upserts: list[Record] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)


@final
@dataclass(frozen=True, slots=True)
class Oversized:
    """A record that fits no frame with its spec: sent as SpecParts and a Resources of its own."""

    record: Record


def _too_large(what: str, size: int, budget: int) -> LocalProtocolError:
    return LocalProtocolError(
        f"{what} takes {size} bytes, more than a whole frame holds ({budget} bytes for its contents)",
        code=CloseCode.RECORD_TOO_LARGE,
    )


def plan_resources(
    upserts: Iterable[Record], removals: Iterable[str], budget: int
) -> Iterator[Batch | Oversized]:
    """Yield the pieces of one batch; each Batch's contents take at most ``budget`` bytes."""
    current = Batch()
    used = 0
    yielded = False
    for record in upserts:
        size = encoded_size(record)
        if size > budget:
            meta = size - len(record.spec)
            if meta > budget:
                raise _too_large(f"record {record.id!r} without its spec", meta, budget)
            yield Oversized(record)
            yielded = True
            continue
        if used + size > budget:
            yield current
            yielded = True
            current, used = Batch(), 0
        current.upserts.append(record)
        used += size
    for rid in removals:
        size = _str_size(rid)
        if size > budget:
            raise _too_large(f"the id of removal {rid[:200]!r}", size, budget)
        if used + size > budget:
            yield current
            yielded = True
            current, used = Batch(), 0
        current.removals.append(rid)
        used += size
    if current.upserts or current.removals or not yielded:
        yield current


def split_known(known: Mapping[str, str], budget: int) -> Iterator[dict[str, str]]:
    """Yield ``known`` in pieces whose entries take at most ``budget`` bytes; at least one piece."""
    current: dict[str, str] = {}
    used = 0
    for rid, digest in known.items():
        size = _str_size(rid) + _str_size(digest)
        if size > budget:
            raise _too_large(f"the known entry {rid[:200]!r}", size, budget)
        if used + size > budget:
            yield current
            current, used = {}, 0
        current[rid] = digest
        used += size
    yield current


def cut_bytes(data: bytes, piece: int) -> Iterator[bytes]:
    """Yield ``data`` in slices of at most ``piece`` bytes (one empty slice for empty data)."""
    if not data:
        yield b""
        return
    with memoryview(data) as view:
        for start in range(0, len(data), piece):
            yield bytes(view[start : start + piece])
