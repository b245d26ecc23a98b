"""What crosses a KDS connection and in what form: which types flow each way, and Resource <-> Record for
one side (origin labels, zone pinning, owners, record ids, the content hashes both ends compute alike).

Types come from the descriptor table only (STYLE.md: the table drives KDS, nothing lists types by hand):
global -> zones are the descriptors with ``kds is GLOBAL_TO_ZONES`` (meshes, policies, mesh secrets), the
``kds NONE`` types with ``kds_name_prefixes`` (GlobalSecret), of which only the resources named with one
of those prefixes flow (:func:`carried`: the zone-token public keys and revocation list, never a private
key), plus the ``kds_to_other_zones`` types (ZoneIngress), which the global relays from each zone to
every *other* zone; zone -> global are those with ``kds is ZONE_TO_GLOBAL``. A relayed type therefore
flows both ways on one connection. Types are subscribed to, sent and applied in the order of the
descriptor table, which registers a Mesh before anything inside a mesh and a resource before its
insight; as a connection delivers in order and each side applies in order, a receiver never sees a
resource before the Mesh or owner it refers to when both come in the same sync.

A :class:`RecordMapper` is made per connection with this side's role and ``zone``: on a zone control plane
its own zone name, on the global the zone at the other end of the connection.

Rules (DESIGN.md, "Resources" and "Wire"):

- Identity is ``(type, mesh, name, zone of origin)``. A zone stores its own resources with zone ``""`` and
  sends them with its zone name; the global stores them with that zone, so two zones may each have a
  ``web-1``. Global resources travel and are stored with zone ``""``; another zone's ingress travels and is
  stored on a zone with that other zone.
- The sender sets ``kuma.io/origin`` (``global`` or ``zone``) and, for zone resources, ``kuma.io/zone``
  before hashing; the receiver stores exactly those labels. The hash is ``content_hash(labels, spec,
  owner)`` over the canonical spec encoding, so a receiver recomputes, from what it stored, the hash the
  sender computes from its own copy: that is what ``known`` announces after a reconnect. Both ends hash
  the spec bytes as their store holds them (a :class:`~kmesh.store.StoredRow`), without decoding:
  a store keeps exactly ``encode_spec``'s output, and the receiver stored ``encode_spec`` of the decoded
  record, which is the sender's bytes again (``encode_spec(decode_spec(b)) == b`` for any ``b`` that
  ``encode_spec`` made; a test pins it). Equal bytes mean equal content, so a hash can only ever differ
  too often (a resend), never match a change.
- The global pins every record of a connection to that connection's zone, whatever zone or labels the
  record claims; a record without an owner gets the zone's ``Zone`` as owner, and an owned one (a
  DataplaneInsight) keeps its owner re-keyed into the zone, so deleting the Zone deletes everything the
  zone sent, through the store's owner cascade.
- An owner crosses the wire only when the receiver can hold it under the same rules (same direction, same
  origin); any other owner is dropped by the sender, so the receiver's hash still matches.
- The name selection (:func:`carried`) applies on both ends, in the one mapper: the global sends, lists
  and diffs only carried names, and a zone announces as ``known``, accepts and deletes only carried names,
  so a zone's own GlobalSecrets (its DP server certificate, its zone-proxy keys) are never announced to
  the global nor removed by it.
- A record is refused (:class:`RecordRefused`, whose reason goes into the Nack) when its type is not the
  chunk's, its id or hash does not match its fields, its zone is not one this side accepts from the peer,
  its spec does not decode, or the resource does not validate.

Sans-IO: no asyncio, no socket.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Final, NamedTuple, final

import msgspec

from kmesh.errors import InvalidResource
from kmesh.kds._state import Role
from kmesh.kds.records import Record, content_hash, record_id, split_record_id
from kmesh.model import (
    LABEL_ORIGIN,
    LABEL_ZONE,
    KdsDirection,
    Meta,
    Resource,
    ResourceDescriptor,
    ResourceKey,
    all_descriptors,
    decode_spec,
    descriptor,
    validate_resource,
)
from kmesh.store import StoredRow

__all__ = [
    "ORIGIN_GLOBAL",
    "ORIGIN_ZONE",
    "ZONE_TYPE",
    "RecordMapper",
    "RecordRefused",
    "Sent",
    "carried",
    "global_to_zones",
    "origin_labels",
    "rank",
    "received_by",
    "sent_by",
    "to_other_zones",
    "zone_to_global",
]

ORIGIN_GLOBAL: Final = "global"
ORIGIN_ZONE: Final = "zone"
ZONE_TYPE: Final = "Zone"


def _names(descriptors: list[ResourceDescriptor]) -> tuple[str, ...]:
    return tuple(d.name for d in descriptors)


@functools.cache
def global_to_zones() -> tuple[str, ...]:
    """Types the global sends to every zone (resources made on the global)."""
    return _names(
        [
            d
            for d in all_descriptors()
            if d.kds is KdsDirection.GLOBAL_TO_ZONES or (d.kds is KdsDirection.NONE and d.kds_name_prefixes)
        ]
    )


@functools.cache
def _name_prefixes(type_name: str) -> tuple[str, ...] | None:
    """The name prefixes a type flows by, or None when every resource of the type flows."""
    desc = descriptor(type_name)
    return desc.kds_name_prefixes if desc.kds is KdsDirection.NONE else None


def carried(type_name: str, name: str) -> bool:
    """Whether KDS carries the resource ``name`` of a type that flows: all of them, except for a type that
    flows by name (``kds_name_prefixes``), of which only those whose name starts with a prefix."""
    prefixes = _name_prefixes(type_name)
    return prefixes is None or name.startswith(prefixes)


@functools.cache
def zone_to_global() -> tuple[str, ...]:
    """Types each zone sends to the global (resources made in the zone)."""
    return _names([d for d in all_descriptors() if d.kds is KdsDirection.ZONE_TO_GLOBAL])


@functools.cache
def to_other_zones() -> tuple[str, ...]:
    """Zone-to-global types that the global also sends on to every other zone."""
    return _names(
        [d for d in all_descriptors() if d.kds is KdsDirection.ZONE_TO_GLOBAL and d.kds_to_other_zones]
    )


@functools.cache
def rank(type_name: str) -> int:
    """Position of ``type_name`` in the descriptor table: the order in which types are synced."""
    for index, desc in enumerate(all_descriptors()):
        if desc.name == type_name:
            return index
    raise KeyError(type_name)


def sent_by(role: Role) -> tuple[str, ...]:
    """Types the ``role`` side of a connection sends, in sync order."""
    if role is Role.ZONE:
        return zone_to_global()
    return tuple(sorted({*global_to_zones(), *to_other_zones()}, key=rank))


def received_by(role: Role) -> tuple[str, ...]:
    """Types the ``role`` side of a connection receives (subscribes to), in sync order."""
    return sent_by(Role.GLOBAL if role is Role.ZONE else Role.ZONE)


class Sent(NamedTuple):
    """A stored resource as this side sends it, short of the record itself (see ``row_sent``)."""

    id: str
    zone: str
    labels: dict[str, str]
    owner: str | None
    hash: str


class RecordRefused(Exception):
    """A received record or removal this side does not apply; the message is the Nack's reason."""


def origin_labels(zone: str) -> dict[str, str]:
    """The origin labels of a resource whose zone of origin is ``zone`` (``""``: the global)."""
    if not zone:
        return {LABEL_ORIGIN: ORIGIN_GLOBAL}
    return {LABEL_ORIGIN: ORIGIN_ZONE, LABEL_ZONE: zone}


def _timestamp(stored: str) -> float | None:
    """Seconds since the epoch of a stored ISO 8601 time ("" when the resource has none yet)."""
    return datetime.fromisoformat(stored).timestamp() if stored else None


@final
class RecordMapper:
    """Conversions for one connection; ``zone`` is this zone (role ZONE) or the peer zone (role GLOBAL)."""

    def __init__(self, role: Role, zone: str) -> None:
        if not zone:
            raise ValueError("a KDS connection always concerns one zone: zone must not be empty")
        self.role = role
        self.zone = zone
        self._sent = frozenset(sent_by(role))
        self._received = frozenset(received_by(role))
        self._relayed = frozenset(to_other_zones())
        self._from_global = frozenset(global_to_zones())
        self._from_zones = frozenset(zone_to_global())
        self._zone_key = ResourceKey(ZONE_TYPE, zone)

    # -- sending ------------------------------------------------------------------------------------------

    def sent_scope(self, type_: str) -> str | None:
        """The ``zone`` filter that lists what this side may send of ``type_`` (None: every zone)."""
        if self.role is Role.GLOBAL and type_ in self._relayed:
            return None
        return ""

    def _sent_zone(self, type_: str, name: str, stored_zone: str) -> str | None:
        """The zone a stored resource travels with, or None when this side does not send it to the peer."""
        if type_ not in self._sent or not carried(type_, name):
            return None
        if self.role is Role.ZONE:
            # Only the zone's own resources go up; other zones' ingresses came from the global.
            return self.zone if stored_zone == "" else None
        if type_ in self._relayed:
            # Every other zone's ingresses, never the peer's own, never a global-made one.
            return stored_zone if stored_zone not in ("", self.zone) else None
        return "" if stored_zone == "" else None

    def sent_id(self, key: ResourceKey) -> str | None:
        """The record id under which this side sends the stored ``key``, or None if it never sends it."""
        zone = self._sent_zone(key.type, key.name, key.zone)
        return None if zone is None else record_id(key.type, key.mesh, key.name, zone)

    def sent_key(self, rid: str) -> ResourceKey | None:
        """The stored key that this side sends as ``rid``, or None if no stored key maps to it."""
        try:
            type_, mesh, name, zone = split_record_id(rid)
        except ValueError:
            return None
        if self.role is Role.ZONE:
            if zone != self.zone:
                return None
            zone = ""
        key = ResourceKey(type_, name, mesh, zone)
        return key if self.sent_id(key) == rid else None

    def _sent_owner(self, type_: str, owner: ResourceKey | None) -> str | None:
        if owner is None:
            return None
        if self.role is Role.ZONE:
            if owner.type in self._from_zones and owner.zone == "":
                return record_id(owner.type, owner.mesh, owner.name, self.zone)
            return None
        if type_ in self._relayed:
            return None  # a relayed ingress is owned by its Zone on the global, which zones do not hold
        if owner.type in self._from_global and owner.zone == "":
            return record_id(owner.type, owner.mesh, owner.name, "")
        return None

    def to_record(self, resource: Resource) -> Record | None:
        """The record this side sends for a stored resource, or None if it does not send it to the peer."""
        return self.row_record(StoredRow.of(resource))

    def row_record(self, row: StoredRow) -> Record | None:
        """The record this side sends for a stored row, or None if it does not send it to the peer."""
        sent = self.row_sent(row)
        return None if sent is None else self.record_of(row, sent)

    def row_sent(self, row: StoredRow) -> Sent | None:
        """What identifies the record of a stored row (id, zone, labels, owner, hash), or None if this side
        does not send it: enough to compare with the peer's copy before building the record."""
        zone = self._sent_zone(row.type, row.name, row.zone)
        if zone is None:
            return None
        labels = dict(row.labels)
        labels.update(origin_labels(zone))
        owner = self._sent_owner(row.type, row.owner)
        return Sent(
            record_id(row.type, row.mesh, row.name, zone),
            zone,
            labels,
            owner,
            content_hash(labels, row.spec, owner),
        )

    def record_of(self, row: StoredRow, sent: Sent) -> Record:
        """The record of a stored row, from its :meth:`row_sent`."""
        return Record(
            id=sent.id,
            type=row.type,
            name=row.name,
            mesh=row.mesh,
            zone=sent.zone,
            labels=sent.labels,
            spec=row.spec,
            hash=sent.hash,
            version=row.version,
            creation_time=_timestamp(row.creation_time),
            modification_time=_timestamp(row.modification_time),
            owner=sent.owner,
        )

    # -- receiving ----------------------------------------------------------------------------------------

    def received_scope(self, type_: str) -> str | None:
        """The ``zone`` filter that lists what this side holds of ``type_`` from the peer (None: any)."""
        if self.role is Role.GLOBAL:
            return self.zone
        return None if type_ in self._relayed else ""

    def _from_peer(self, type_: str, name: str, stored_zone: str) -> bool:
        if type_ not in self._received or not carried(type_, name):
            return False
        if self.role is Role.GLOBAL:
            return stored_zone == self.zone
        if type_ in self._relayed:
            return stored_zone not in ("", self.zone)
        return stored_zone == ""

    def known_entry(self, resource: Resource) -> tuple[str, str, int] | None:
        """``(record id, content hash, spec bytes)`` of a stored resource as the peer sent it, or None if
        it did not come from the peer. The hash equals the one the peer computes from its own copy."""
        return self.row_known_entry(StoredRow.of(resource))

    def row_known_entry(self, row: StoredRow) -> tuple[str, str, int] | None:
        """:meth:`known_entry` of a stored row, hashing its spec bytes as stored."""
        if not self._from_peer(row.type, row.name, row.zone):
            return None
        owner = row.owner
        owner_id: str | None = None
        if owner is not None and owner != self._zone_key:
            owner_id = record_id(owner.type, owner.mesh, owner.name, owner.zone)
        spec = row.spec
        digest = content_hash(row.labels, spec, owner_id)
        return record_id(row.type, row.mesh, row.name, row.zone), digest, len(spec)

    def _check_carried(self, type_: str, name: str) -> None:
        if not carried(type_, name):
            raise RecordRefused(f"{type_} {name[:64]!r} never leaves the control plane that holds it")

    def _received_zone(self, type_: str, claimed: str) -> str:
        if self.role is Role.GLOBAL:
            return self.zone  # pinned: a zone speaks only for itself
        if type_ in self._relayed:
            if claimed in ("", self.zone):
                raise RecordRefused(
                    f"a {type_} relayed by the global must come from another zone, not {claimed or 'none'!r}"
                )
            return claimed
        if claimed:
            raise RecordRefused(f"a {type_} from the global control plane has no zone, got {claimed!r}")
        return ""

    def _received_owner(self, owner: str | None) -> ResourceKey | None:
        if owner is None:
            return self._zone_key if self.role is Role.GLOBAL else None
        try:
            type_, mesh, name, zone = split_record_id(owner)
        except ValueError as exc:
            raise RecordRefused(f"owner: {exc}") from None
        if self.role is Role.GLOBAL:
            if type_ not in self._from_zones:
                raise RecordRefused(f"owner: a zone resource cannot be owned by a {type_}")
            return ResourceKey(type_, name, mesh, self.zone)
        if type_ not in self._from_global or zone:
            raise RecordRefused(f"owner: a global resource cannot be owned by {owner!r}")
        return ResourceKey(type_, name, mesh, "")

    def incoming(self, record: Record, chunk_type: str) -> Resource:
        """The resource to store for a received record. Raises RecordRefused saying why not."""
        if record.type != chunk_type:
            raise RecordRefused(f"a {record.type} record in a chunk of {chunk_type}")
        if record.id != record_id(record.type, record.mesh, record.name, record.zone):
            raise RecordRefused("the record id does not match its type, mesh, name and zone")
        self._check_carried(record.type, record.name)
        if record.hash != content_hash(record.labels, record.spec, record.owner):
            raise RecordRefused("the content hash does not match the record's labels, spec and owner")
        zone = self._received_zone(record.type, record.zone)
        owner = self._received_owner(record.owner)
        try:
            spec = decode_spec(record.type, record.spec)
        except msgspec.DecodeError as exc:
            raise RecordRefused(f"the spec is not a valid {record.type}: {exc}") from None
        labels = dict(record.labels)
        labels.update(origin_labels(zone))
        meta = Meta(
            type=record.type, name=record.name, mesh=record.mesh, zone=zone, labels=labels, owner=owner
        )
        resource = Resource(meta=meta, spec=spec)
        try:
            validate_resource(resource)
        except InvalidResource as exc:
            raise RecordRefused(exc.describe()) from None
        return resource

    def removal_key(self, rid: str, chunk_type: str) -> ResourceKey:
        """The stored key a received removal deletes. Raises RecordRefused saying why not."""
        try:
            type_, mesh, name, zone = split_record_id(rid)
        except ValueError as exc:
            raise RecordRefused(str(exc)) from None
        if type_ != chunk_type:
            raise RecordRefused(f"a removal of a {type_} in a chunk of {chunk_type}")
        self._check_carried(type_, name)
        return ResourceKey(type_, name, mesh, self._received_zone(type_, zone))
