"""Record identity, content hashes and the size bound that chunking relies on."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.kds import Record, content_hash, encoded_size, record_id, split_record_id

names = st.text(max_size=40)


@given(names, names, names, names)
def test_record_id_round_trips_any_names(type_: str, mesh: str, name: str, zone: str) -> None:
    assert split_record_id(record_id(type_, mesh, name, zone)) == (type_, mesh, name, zone)


@given(st.tuples(names, names, names, names), st.tuples(names, names, names, names))
def test_record_ids_of_different_resources_differ(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    if a != b:
        assert record_id(*a) != record_id(*b)


def test_record_id_keeps_zone_of_origin_apart() -> None:
    # DESIGN.md: two zones may each have a web-1, without renaming either.
    assert record_id("Dataplane", "default", "web-1", "zone-1") != record_id(
        "Dataplane", "default", "web-1", "zone-2"
    )
    # A slash inside a name cannot fake another component.
    assert record_id("Dataplane", "a/b", "c") != record_id("Dataplane", "a", "b/c")


@pytest.mark.parametrize("bad", ["", "a/b/c", "a/b/c/d/e", "A/%2f/x/", "a/%zz/c/d"])
def test_split_record_id_refuses_what_record_id_cannot_make(bad: str) -> None:
    with pytest.raises(ValueError, match="KDS record id"):
        split_record_id(bad)


def test_content_hash_is_pinned() -> None:
    # Hashes computed by different kmesh versions are compared after a reconnect, so the canonical input
    # is spelled out here byte by byte: msgpack [sorted label pairs, spec, owner] under blake2b-128 with a
    # versioned personalisation. If this fails, the change costs every zone a full resync.
    canonical = (
        b"\x93"  # [labels, spec, owner]
        b"\x92\x92\xa3env\xa4prod\x92\xafkuma.io/service\xa3web"  # sorted by key
        b"\xc4\x07" + b'{"a":1}' + b"\xa2dp"
    )
    expected = hashlib.blake2b(canonical, digest_size=16, person=b"kmesh-kds-rec-v1").hexdigest()
    assert content_hash({"kuma.io/service": "web", "env": "prod"}, b'{"a":1}', "dp") == expected
    no_owner = hashlib.blake2b(b"\x93\x90\xc4\x00\xc0", digest_size=16, person=b"kmesh-kds-rec-v1")
    assert content_hash({}, b"") == no_owner.hexdigest()


@given(st.dictionaries(names, names, max_size=5), st.binary(max_size=50), st.none() | names)
def test_content_hash_ignores_label_order(labels: dict[str, str], spec: bytes, owner: str | None) -> None:
    reordered = dict(reversed(list(labels.items())))
    assert content_hash(labels, spec, owner) == content_hash(reordered, spec, owner)


@given(
    st.tuples(st.dictionaries(names, names, max_size=3), st.binary(max_size=20), st.none() | names),
    st.tuples(st.dictionaries(names, names, max_size=3), st.binary(max_size=20), st.none() | names),
)
def test_content_hash_tells_different_contents_apart(
    a: tuple[dict[str, str], bytes, str | None], b: tuple[dict[str, str], bytes, str | None]
) -> None:
    if a != b:
        assert content_hash(*a) != content_hash(*b)


records = st.builds(
    Record,
    id=names,
    type=names,
    name=names,
    mesh=names,
    zone=names,
    labels=st.dictionaries(names, st.text(max_size=300), max_size=4),
    spec=st.binary(max_size=70_000),
    hash=names,
    version=st.integers(min_value=-(2**63), max_value=2**64 - 1),
    creation_time=st.none() | st.floats(allow_nan=False),
    modification_time=st.none() | st.floats(allow_nan=False),
    owner=st.none() | names,
)


@given(records)
def test_encoded_size_is_a_tight_upper_bound(record: Record) -> None:
    actual = len(msgspec.msgpack.encode(record))
    estimate = encoded_size(record)
    assert actual <= estimate
    # Tight enough that chunks are not wasted: headers and widest numbers only.
    assert estimate - actual <= 120 + 10 * len(record.labels)
