"""The listing KDS reads (StoredRows: specs as stored, never decoded) against the Resource path: the same
records and hashes, so that a resync hashing stored bytes on both ends rewrites nothing, whatever store
each end uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmesh.kds._convert import RecordMapper
from kmesh.kds._state import Role
from kmesh.model import Resource, ResourceKey, decode_spec, encode_spec, new_resource
from kmesh.model.types.secret import SecretSpec
from kmesh.store import Create, MemoryStore, SqliteStore, Upsert
from kmesh.store._base import StoreBase, StoredRow

from .test_convert_records import dataplane, ingress, insight, policy

ZONE = "zone-a"


def _samples() -> list[Resource]:
    return [
        dataplane(labels={"b": "2", "a": "1"}),
        insight(),
        ingress(""),
        policy(),
        new_resource("Mesh", "default"),
        new_resource("Secret", "ca", SecretSpec.from_bytes(b"\x00\xff" * 200), mesh="default"),
    ]


@pytest.mark.parametrize("resource", _samples(), ids=lambda r: r.meta.type)
def test_decoding_and_encoding_a_stored_spec_gives_its_bytes_back(resource: Resource) -> None:
    # What lets both ends hash stored bytes: the receiver stores encode_spec(decode_spec(sent bytes)).
    stored = encode_spec(resource.spec)
    assert encode_spec(decode_spec(resource.meta.type, stored)) == stored


@pytest.mark.parametrize("resource", _samples(), ids=lambda r: r.meta.type)
@pytest.mark.parametrize("role", [Role.ZONE, Role.GLOBAL])
def test_a_row_maps_to_the_record_of_its_resource(resource: Resource, role: Role) -> None:
    mapper = RecordMapper(role, ZONE)
    row = StoredRow.of(resource)
    assert mapper.row_record(row) == mapper.to_record(resource)
    sent = mapper.row_sent(row)
    record = mapper.to_record(resource)
    assert (sent is None) == (record is None)
    if sent is not None and record is not None:
        assert (sent.id, sent.zone, sent.hash, sent.owner) == (
            record.id,
            record.zone,
            record.hash,
            record.owner,
        )
    assert mapper.row_known_entry(row) == mapper.known_entry(resource)


def _store(kind: str, path: Path) -> StoreBase:
    return MemoryStore() if kind == "memory" else SqliteStore(path)


@pytest.mark.parametrize(
    ("zone_kind", "global_kind"), [("sqlite", "sqlite"), ("memory", "sqlite"), ("sqlite", "memory")]
)
async def test_stored_rows_on_both_ends_hash_alike(zone_kind: str, global_kind: str, tmp_path: Path) -> None:
    zone_store = _store(zone_kind, tmp_path / "zone.db")
    global_store = _store(global_kind, tmp_path / "global.db")
    up = RecordMapper(Role.ZONE, ZONE), RecordMapper(Role.GLOBAL, ZONE)
    try:
        await zone_store.commit(
            [
                Create(new_resource("Mesh", "default")),
                *(
                    Create(dataplane(f"web-{i}", labels={"team": "t", "z": str(i)}, port=8000 + i))
                    for i in range(5)
                ),
                Create(insight("web-0")),
            ]
        )
        await global_store.commit(
            [Create(new_resource("Mesh", "default")), Create(new_resource("Zone", ZONE))]
        )
        sent: dict[str, str] = {}
        for type_ in ("Dataplane", "DataplaneInsight"):
            rows = await zone_store.list_stored(type_, zone="")
            records = [r for r in map(up[0].row_record, rows) if r is not None]
            sent.update((r.id, r.hash) for r in records)
            await global_store.commit([Upsert(up[1].incoming(r, type_)) for r in records])
        known: dict[str, str] = {}
        for type_ in ("Dataplane", "DataplaneInsight"):
            for row in await global_store.list_stored(type_, zone=ZONE):
                entry = up[1].row_known_entry(row)
                assert entry is not None
                known[entry[0]] = entry[1]
        assert known == sent
        assert len(known) == 6
        # The insight's owner crossed as a record id and came back the same.
        (row,) = await global_store.list_stored("DataplaneInsight", zone=ZONE)
        assert row.owner == ResourceKey("Dataplane", "web-0", "default", ZONE)
    finally:
        await zone_store.close()
        await global_store.close()
