"""Resource <-> Record for each side of a connection: origin labels, zone pinning, owners, refusals, and the
invariant behind "only differences flow": the hash a receiver recomputes from what it stored equals the
hash the sender sent."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmesh.kds import Record, Role, content_hash, record_id
from kmesh.kds._convert import RecordMapper, RecordRefused
from kmesh.model import Resource, ResourceKey, decode_spec, encode_spec, new_resource, parse_resource
from kmesh.model.types.insight import DiscoverySubscription
from kmesh.model.types.secret import SecretSpec

ORIGIN, ZONE_LABEL = "kuma.io/origin", "kuma.io/zone"


def stored(resource: Resource) -> Resource:
    """What a store gives back: the spec through its encoding (SQLite keeps encode_spec's bytes)."""
    return Resource(meta=resource.meta, spec=decode_spec(resource.meta.type, encode_spec(resource.spec)))


def with_meta(resource: Resource, **changes: object) -> Resource:
    return Resource(meta=msgspec.structs.replace(resource.meta, **changes), spec=resource.spec)


def dataplane(name: str = "web-1", *, labels: dict[str, str] | None = None, port: int = 8080) -> Resource:
    doc = {
        "type": "Dataplane",
        "name": name,
        "mesh": "default",
        "labels": labels or {},
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": port, "tags": {"kuma.io/service": "web"}}],
        },
    }
    return parse_resource(doc)


def insight(name: str = "web-1") -> Resource:
    sub = DiscoverySubscription(
        id="s-1",
        control_plane_instance_id="cp-1",
        connect_time=dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
    )
    resource = new_resource("DataplaneInsight", name, mesh="default")
    spec = msgspec.structs.replace(resource.spec, subscriptions=[sub])
    return Resource(
        meta=msgspec.structs.replace(resource.meta, owner=ResourceKey("Dataplane", name, "default")),
        spec=spec,
    )


def policy(name: str = "allow") -> Resource:
    return parse_resource(
        {
            "type": "MeshTrafficPermission",
            "name": name,
            "mesh": "default",
            "spec": {
                "targetRef": {"kind": "Mesh"},
                "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
            },
        }
    )


def ingress(zone: str = "") -> Resource:
    resource = parse_resource(
        {"type": "ZoneIngress", "name": "ingress", "networking": {"address": "192.0.2.1", "port": 10001}}
    )
    return with_meta(resource, zone=zone)


def test_a_zone_sends_its_own_resources_with_its_zone_and_origin_labels() -> None:
    record = RecordMapper(Role.ZONE, "zone-a").to_record(stored(dataplane(labels={"team": "a"})))
    assert record is not None
    assert record.id == record_id("Dataplane", "default", "web-1", "zone-a")
    assert record.zone == "zone-a"
    assert record.labels == {"team": "a", ORIGIN: "zone", ZONE_LABEL: "zone-a"}
    assert record.owner is None
    assert record.hash == content_hash(record.labels, record.spec, None)


def test_the_global_sends_its_resources_with_the_global_origin() -> None:
    record = RecordMapper(Role.GLOBAL, "zone-a").to_record(stored(policy()))
    assert record is not None
    assert (record.zone, record.labels) == ("", {ORIGIN: "global"})


def test_a_zone_never_sends_back_what_it_received() -> None:
    mapper = RecordMapper(Role.ZONE, "zone-a")
    assert mapper.to_record(stored(ingress("zone-b"))) is None  # another zone's ingress, relayed down
    assert mapper.to_record(stored(policy())) is None  # a global type
    assert mapper.to_record(stored(ingress(""))) is not None  # its own ingress


def test_the_global_relays_an_ingress_to_other_zones_only_and_without_its_zone_owner() -> None:
    pinned = with_meta(stored(ingress("zone-b")), owner=ResourceKey("Zone", "zone-b"))
    assert RecordMapper(Role.GLOBAL, "zone-b").to_record(pinned) is None
    record = RecordMapper(Role.GLOBAL, "zone-a").to_record(pinned)
    assert record is not None
    assert (record.zone, record.owner) == ("zone-b", None)
    assert record.labels == {ORIGIN: "zone", ZONE_LABEL: "zone-b"}
    assert RecordMapper(Role.GLOBAL, "zone-a").to_record(stored(ingress(""))) is None


def test_the_global_pins_records_to_the_connections_zone_whatever_they_claim() -> None:
    claimed = RecordMapper(Role.ZONE, "zone-a").to_record(stored(dataplane()))
    assert claimed is not None
    resource = RecordMapper(Role.GLOBAL, "zone-b").incoming(claimed, "Dataplane")
    assert resource.key == ResourceKey("Dataplane", "web-1", "default", "zone-b")
    assert resource.meta.labels == {ORIGIN: "zone", ZONE_LABEL: "zone-b"}
    assert resource.meta.owner == ResourceKey("Zone", "zone-b")


def test_an_owned_record_keeps_its_owner_re_keyed_into_the_zone() -> None:
    record = RecordMapper(Role.ZONE, "zone-a").to_record(stored(insight()))
    assert record is not None
    assert record.owner == record_id("Dataplane", "default", "web-1", "zone-a")
    resource = RecordMapper(Role.GLOBAL, "zone-a").incoming(record, "DataplaneInsight")
    assert resource.meta.owner == ResourceKey("Dataplane", "web-1", "default", "zone-a")


def _round_trip(
    sender: RecordMapper, receiver: RecordMapper, resource: Resource
) -> tuple[Record, tuple[str, str]]:
    record = sender.to_record(stored(resource))
    assert record is not None
    kept = stored(receiver.incoming(record, record.type))
    entry = receiver.known_entry(kept)
    assert entry is not None
    return record, entry[:2]


@pytest.mark.parametrize(
    ("sender", "receiver", "resource"),
    [
        (
            RecordMapper(Role.ZONE, "zone-a"),
            RecordMapper(Role.GLOBAL, "zone-a"),
            dataplane(labels={"a": "b"}),
        ),
        (RecordMapper(Role.ZONE, "zone-a"), RecordMapper(Role.GLOBAL, "zone-a"), insight()),
        (RecordMapper(Role.ZONE, "zone-a"), RecordMapper(Role.GLOBAL, "zone-a"), ingress("")),
        (RecordMapper(Role.GLOBAL, "zone-a"), RecordMapper(Role.ZONE, "zone-a"), policy()),
        (
            RecordMapper(Role.GLOBAL, "zone-a"),
            RecordMapper(Role.ZONE, "zone-a"),
            new_resource("Mesh", "default"),
        ),
        (
            RecordMapper(Role.GLOBAL, "zone-a"),
            RecordMapper(Role.ZONE, "zone-a"),
            new_resource("Secret", "ca", SecretSpec.from_bytes(b"\x00" * 300), mesh="default"),
        ),
        (
            RecordMapper(Role.GLOBAL, "zone-a"),
            RecordMapper(Role.ZONE, "zone-a"),
            with_meta(ingress("zone-b"), owner=ResourceKey("Zone", "zone-b")),
        ),
    ],
    ids=["dataplane", "insight", "ingress-up", "policy", "mesh", "secret", "ingress-relayed"],
)
def test_the_receiver_recomputes_the_senders_hash_from_what_it_stored(
    sender: RecordMapper, receiver: RecordMapper, resource: Resource
) -> None:
    record, (rid, digest) = _round_trip(sender, receiver, resource)
    assert (rid, digest) == (record.id, record.hash)


_label_key = st.from_regex(
    r"[a-z]{1,8}(\.[a-z]{1,5})?/[a-z][a-z0-9-]{0,10}[a-z0-9]|[a-z][a-z0-9]{0,10}", fullmatch=True
)
_label_value = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.dictionaries(_label_key, _label_value, max_size=5),
    port=st.integers(min_value=1, max_value=65535),
    name=st.from_regex(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", fullmatch=True),
)
def test_hashes_are_stable_across_encode_and_decode_for_any_labels_and_specs(
    labels: dict[str, str], port: int, name: str
) -> None:
    labels = {k: v for k, v in labels.items() if k not in (ORIGIN, ZONE_LABEL)}
    up = (RecordMapper(Role.ZONE, "zone-a"), RecordMapper(Role.GLOBAL, "zone-a"))
    record, entry = _round_trip(*up, dataplane(name, labels=labels, port=port))
    assert entry == (record.id, record.hash)
    # Label order never matters to the hash.
    assert content_hash(dict(reversed(record.labels.items())), record.spec, record.owner) == record.hash


def _record(resource: Resource, *, zone: str = "", **changes: object) -> Record:
    labels = dict(resource.meta.labels)
    spec = encode_spec(resource.spec)
    base = Record(
        id=record_id(resource.meta.type, resource.meta.mesh, resource.meta.name, zone),
        type=resource.meta.type,
        name=resource.meta.name,
        mesh=resource.meta.mesh,
        zone=zone,
        labels=labels,
        spec=spec,
        hash=content_hash(labels, spec, None),
    )
    updated = msgspec.structs.replace(base, **changes)
    if "hash" not in changes:
        updated = msgspec.structs.replace(
            updated, hash=content_hash(updated.labels, updated.spec, updated.owner)
        )
    return updated


@pytest.mark.parametrize(
    ("role", "record", "chunk_type", "reason"),
    [
        (Role.ZONE, _record(policy()), "Mesh", "in a chunk of Mesh"),
        (Role.ZONE, _record(policy(), id="MeshTrafficPermission/default/other/"), None, "id does not match"),
        (Role.ZONE, _record(policy(), hash="0" * 32), None, "hash does not match"),
        (Role.ZONE, _record(policy(), zone="zone-b"), None, "has no zone"),
        (Role.ZONE, _record(ingress(), zone="zone-a"), None, "must come from another zone"),
        (Role.ZONE, _record(ingress(), zone=""), None, "must come from another zone"),
        (Role.ZONE, _record(policy(), spec=b'{"from": 3}'), None, "not a valid MeshTrafficPermission"),
        (Role.ZONE, _record(policy(), owner=record_id("Dataplane", "default", "x", "zone-b")), None, "owner"),
        (
            Role.GLOBAL,
            _record(dataplane(), owner=record_id("Mesh", "", "default", "")),
            None,
            "owned by a Mesh",
        ),
        (
            Role.GLOBAL,
            _record(dataplane(), name="not valid!", id=record_id("Dataplane", "default", "not valid!", "")),
            None,
            "name",
        ),
    ],
    ids=[
        "type",
        "id",
        "hash",
        "global-with-zone",
        "own-ingress",
        "ingress-no-zone",
        "spec",
        "zone-owner",
        "global-owner",
        "name",
    ],
)
def test_bad_records_are_refused_with_a_reason(
    role: Role, record: Record, chunk_type: str | None, reason: str
) -> None:
    with pytest.raises(RecordRefused, match=reason):
        RecordMapper(role, "zone-a").incoming(record, chunk_type or record.type)


def test_removals_are_pinned_on_the_global_and_checked_on_a_zone() -> None:
    rid = record_id("Dataplane", "default", "web-1", "zone-x")
    assert RecordMapper(Role.GLOBAL, "zone-a").removal_key(rid, "Dataplane") == ResourceKey(
        "Dataplane", "web-1", "default", "zone-a"
    )
    with pytest.raises(RecordRefused, match="chunk of Mesh"):
        RecordMapper(Role.GLOBAL, "zone-a").removal_key(rid, "Mesh")
    with pytest.raises(RecordRefused, match="another zone"):
        RecordMapper(Role.ZONE, "zone-a").removal_key(
            record_id("ZoneIngress", "", "ingress", "zone-a"), "ZoneIngress"
        )
    with pytest.raises(RecordRefused, match="not a KDS record id"):
        RecordMapper(Role.ZONE, "zone-a").removal_key("garbage", "Mesh")


@pytest.mark.parametrize(
    ("role", "key"),
    [
        (Role.ZONE, ResourceKey("Dataplane", "web-1", "default", "")),
        (Role.ZONE, ResourceKey("ZoneIngress", "ingress", "", "")),
        (Role.GLOBAL, ResourceKey("Mesh", "default")),
        (Role.GLOBAL, ResourceKey("ZoneIngress", "ingress", "", "zone-b")),
    ],
)
def test_sent_key_inverts_sent_id(role: Role, key: ResourceKey) -> None:
    mapper = RecordMapper(role, "zone-a")
    rid = mapper.sent_id(key)
    assert rid is not None
    assert mapper.sent_key(rid) == key


def test_keys_this_side_never_sends_have_no_id() -> None:
    assert (
        RecordMapper(Role.ZONE, "zone-a").sent_id(ResourceKey("ZoneIngress", "ingress", "", "zone-b")) is None
    )
    assert (
        RecordMapper(Role.GLOBAL, "zone-a").sent_id(ResourceKey("ZoneIngress", "ingress", "", "zone-a"))
        is None
    )
    assert RecordMapper(Role.GLOBAL, "zone-a").sent_id(ResourceKey("Zone", "zone-a")) is None
    assert (
        RecordMapper(Role.ZONE, "zone-a").sent_key(record_id("Dataplane", "default", "web-1", "zone-b"))
        is None
    )


def test_a_mapper_needs_the_zone_of_its_connection() -> None:
    with pytest.raises(ValueError, match="zone"):
        RecordMapper(Role.GLOBAL, "")
