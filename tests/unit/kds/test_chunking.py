"""Cutting batches into frame-sized pieces: every piece fits, nothing is lost, nothing is reordered."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.errors import LocalProtocolError
from kmesh.kds._chunking import (
    Batch,
    Oversized,
    cut_bytes,
    plan_resources,
    resources_overhead,
    split_known,
    subscribe_overhead,
)
from kmesh.kds.messages import Resources, Subscribe
from kmesh.kds.records import Record, encoded_size

from .peers import make_record

LIMIT = 4096
TYPE = "MeshTrafficPermission"


def _records(specs: list[bytes]) -> list[Record]:
    return [make_record(TYPE, f"r{i}", spec, labels={"k": "v" * (i % 7)}) for i, spec in enumerate(specs)]


@given(
    st.lists(st.integers(min_value=0, max_value=2 * LIMIT), max_size=25),
    st.lists(st.text(min_size=1, max_size=60), max_size=60, unique=True),
)
def test_every_planned_chunk_fits_the_frame(spec_sizes: list[int], removals: list[str]) -> None:
    upserts = _records([b"x" * n for n in spec_sizes])
    budget = LIMIT - resources_overhead(TYPE)
    pieces = list(plan_resources(upserts, removals, budget))
    assert pieces, "a batch always yields at least one piece"
    sent_upserts, sent_removals = [], []
    for piece in pieces:
        if isinstance(piece, Oversized):
            # Only a record that cannot be sure to fit alone goes as SpecParts.
            assert encoded_size(piece.record) > budget
            sent_upserts.append(piece.record)
            continue
        message = Resources(
            type=TYPE, nonce="9" * 24, upserts=piece.upserts, removals=piece.removals, chunk=2**40, last=True
        )
        assert len(msgspec.msgpack.encode(message)) <= LIMIT
        sent_upserts += piece.upserts
        sent_removals += piece.removals
    # Order inside one batch does not matter (ids are distinct); each record goes exactly once.
    assert sorted(r.id for r in sent_upserts) == sorted(r.id for r in upserts)
    assert sent_removals == removals


def test_an_empty_batch_is_one_empty_chunk() -> None:
    assert list(plan_resources([], [], 1000)) == [Batch()]


def test_small_records_fill_chunks_greedily() -> None:
    upserts = _records([b"x" * 100] * 100)
    pieces = list(plan_resources(upserts, [], LIMIT - resources_overhead(TYPE)))
    assert all(isinstance(p, Batch) for p in pieces)
    # ~230 bytes each: a 4 KiB frame holds well over ten, so 100 records take far fewer than 100 frames.
    assert 3 <= len(pieces) <= 10


def test_a_record_whose_metadata_alone_exceeds_a_frame_is_refused() -> None:
    huge_labels = make_record(TYPE, "r", b"", labels={"k": "v" * LIMIT})
    with pytest.raises(LocalProtocolError, match="without its spec") as info:
        list(plan_resources([huge_labels], [], LIMIT))
    assert info.value.code == "record_too_large"


@given(st.dictionaries(st.text(max_size=80), st.text(max_size=40), max_size=300))
def test_known_pieces_fit_and_merge_back(known: dict[str, str]) -> None:
    budget = LIMIT - subscribe_overhead(TYPE)
    pieces = list(split_known(known, budget))
    assert pieces
    merged: dict[str, str] = {}
    for piece in pieces:
        message = Subscribe(type=TYPE, known=piece, chunk=2**40, last=False)
        assert len(msgspec.msgpack.encode(message)) <= LIMIT
        merged.update(piece)
    assert merged == known


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_cut_bytes_reassembles(data: bytes, piece: int) -> None:
    parts = list(cut_bytes(data, piece))
    assert b"".join(parts) == data
    assert all(0 < len(p) <= piece for p in parts) or parts == [b""]
