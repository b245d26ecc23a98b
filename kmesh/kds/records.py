"""The unit KDS moves: an opaque resource record, its identity, its content hash and its encoded size.

KDS never interprets a resource: the sync layer encodes a resource's spec into bytes before handing it to
the session, and decodes (and validates) it after receiving it. A :class:`Record` is therefore the resource
envelope plus ``spec`` as opaque bytes, plus ``hash``, the content hash the receiver announces back in a
``Subscribe`` after a reconnect so that unchanged resources are not sent again.

Rules:

- ``id`` is :func:`record_id` of ``(type, mesh, name, zone)``: the store's identity of a resource
  (DESIGN.md, "Resources"). Components are percent-escaped, so ids never collide, whatever the names hold.
- ``hash`` is :func:`content_hash` of what a replica must reproduce: labels, spec bytes and owner. It leaves
  out ``version`` and the times, which each store sets for itself: a write that changes nothing on the
  source does not make every zone rewrite the resource. The encoding behind it is canonical and pinned by a
  test, because hashes computed by different kmesh versions are compared with each other.
- :func:`encoded_size` is an upper bound of a record's msgpack size, computed without encoding it, so that
  the session can cut a large state into frames under ``max_frame_bytes`` in one pass.
- Records are wire structs: they only ever gain fields with defaults (see :mod:`kmesh.wire.codec`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, unquote

import msgspec

__all__ = [
    "Record",
    "RecordError",
    "content_hash",
    "encoded_size",
    "record_id",
    "split_record_id",
]

# blake2b-128: collisions between two versions of one resource are what would hide a change, and 128
# bits keeps that out of reach while halving the bytes every Subscribe carries per record.
_HASH_BYTES: Final = 16
# Bumped only if the canonical encoding below ever has to change; a new prefix makes every old hash
# differ, which costs one full resync and never a missed change.
_HASH_PERSON: Final = b"kmesh-kds-rec-v1"
_ID_SEP: Final = "/"


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One resource as KDS carries it; ``spec`` is the caller's encoding of the resource spec."""

    id: str
    type: str
    name: str
    mesh: str = ""
    zone: str = ""
    labels: dict[str, str] = {}
    spec: bytes = b""
    hash: str = ""
    version: int = 0
    creation_time: float | None = None
    modification_time: float | None = None
    # record_id of the resource this one belongs to (a DataplaneInsight's Dataplane), or None.
    owner: str | None = None


class RecordError(msgspec.Struct, frozen=True, kw_only=True):
    """Why the receiver refused one record of a Resources chunk (carried in a Nack)."""

    id: str
    reason: str


_PLAIN: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def _escape(part: str) -> str:
    # safe="" escapes "/" (the separator) and "%" (the escape character itself), so the id is injective.
    # Resource names are nearly always plain (letters, digits, "-", ".", "_"), which quote() leaves as
    # they are; checking that first skips quote()'s per-character work on the resync path.
    if _PLAIN.fullmatch(part):
        return part
    return quote(part, safe="")


def record_id(type: str, mesh: str, name: str, zone: str = "") -> str:
    """Return the id of the resource ``(type, mesh, name, zone)``: ``type/mesh/name/zone``, escaped."""
    return _ID_SEP.join((_escape(type), _escape(mesh), _escape(name), _escape(zone)))


def split_record_id(rid: str) -> tuple[str, str, str, str]:
    """Return ``(type, mesh, name, zone)`` of an id made by :func:`record_id`.

    Raises ``ValueError`` if ``rid`` was not made by :func:`record_id`.
    """
    parts = rid.split(_ID_SEP)
    if len(parts) != 4:
        raise ValueError(f"not a KDS record id (want type/mesh/name/zone): {rid[:200]!r}")
    type_, mesh, name, zone = (unquote(p, errors="strict") for p in parts)
    if record_id(type_, mesh, name, zone) != rid:
        raise ValueError(f"not a canonical KDS record id: {rid[:200]!r}")
    return type_, mesh, name, zone


_hash_encoder: Final = msgspec.msgpack.Encoder()


def content_hash(labels: Mapping[str, str], spec: bytes, owner: str | None = None) -> str:
    """Return the hex content hash of a record's labels, encoded spec and owner.

    The input is one msgpack array ``[sorted label pairs, spec, owner]``: msgpack is self-delimiting, so no
    two different inputs share an encoding, and sorting makes label order irrelevant.
    """
    canonical = _hash_encoder.encode([sorted(labels.items()), spec, owner])
    return hashlib.blake2b(canonical, digest_size=_HASH_BYTES, person=_HASH_PERSON).hexdigest()


def _utf8_len(text: str) -> int:
    # ASCII is the common case (names, label keys) and needs no encoding pass.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# msgpack headers: a str or map grows from 1 byte (empty) to at most 5; a bin from 2 to at most 5.
_STR_GROWTH: Final = 4
_BIN_GROWTH: Final = 3
_MAP_GROWTH: Final = 4
# Size of a record with every variable field empty and every number at its widest msgpack form.
_FIXED: Final = len(
    msgspec.msgpack.encode(
        Record(
            id="",
            type="",
            name="",
            version=2**64 - 1,
            creation_time=0.0,
            modification_time=0.0,
            owner="",
        )
    )
)
_STRINGS_IN_RECORD: Final = 7  # id, type, name, mesh, zone, hash, owner


def encoded_size(record: Record) -> int:
    """Return an upper bound of the bytes ``record`` takes inside a msgpack frame, without encoding it."""
    size = _FIXED + _STRINGS_IN_RECORD * _STR_GROWTH + _BIN_GROWTH + _MAP_GROWTH
    size += len(record.spec)
    size += _utf8_len(record.id) + _utf8_len(record.type) + _utf8_len(record.name)
    size += _utf8_len(record.mesh) + _utf8_len(record.zone) + _utf8_len(record.hash)
    if record.owner is not None:
        size += _utf8_len(record.owner)
    for key, value in record.labels.items():
        # Each label is two strings, each with a header of at most 5 bytes.
        size += _utf8_len(key) + _utf8_len(value) + 10
    return size
