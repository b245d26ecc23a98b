"""Subscriptions and resource flow: only differences travel, large states arrive whole and in order,
no frame exceeds the limit, and every chunk is answered and counted."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from kmesh.errors import LocalProtocolError
from kmesh.kds import Acked, Nacked, Record, ResourcesReceived, SubscriptionRequested
from kmesh.kds.messages import KdsMessage, Resources, SpecPart, Subscribe
from kmesh.wire.codec import MessageCodec
from kmesh.wire.framing import FrameDecoder

from .peers import BAD_SPEC, Node, Splitter, State, established, known_of, make_record, pump, zone_and_global

MIB = 1 << 20


def state_of(type_: str, records: list[Record]) -> State:
    return {type_: {r.id: r for r in records}}


def meshes(n: int, spec: bytes = b'{"mtls":{}}') -> list[Record]:
    return [make_record("Mesh", f"mesh-{i}", spec, mesh="") for i in range(n)]


def tap(split_into: list[bytes]) -> Splitter:
    """A splitter for pump() that also records every byte sent zone<->global."""

    def split(data: bytes) -> Iterable[bytes]:
        if data:
            split_into.append(data)
        return (data,)

    return split


def test_initial_sync_flows_both_directions() -> None:
    dataplanes = [make_record("Dataplane", f"web-{i}", zone="zone-1") for i in range(30)]
    zone, glob = established(
        global_source=state_of("Mesh", meshes(12)), zone_source=state_of("Dataplane", dataplanes)
    )
    assert zone.replica == glob.source
    assert glob.replica == zone.source
    assert zone.complete == {"Mesh"}
    assert glob.complete == {"Dataplane"}


def test_reconnect_sends_only_the_differences() -> None:
    source = meshes(10)
    held = {r.id: r for r in source[:8]}
    # The zone holds a stale mesh-3 and a mesh-gone that the global deleted meanwhile.
    stale = make_record("Mesh", "mesh-3", b'{"old":true}', mesh="")
    gone = make_record("Mesh", "mesh-gone", mesh="")
    held[stale.id] = stale
    held[gone.id] = gone
    announced = known_of(held)
    zone, glob = established(global_source=state_of("Mesh", source), zone_replica={"Mesh": dict(held)})
    (request,) = [e for e in glob.events if isinstance(e, SubscriptionRequested)]
    assert request.known == announced
    upserted = {r.name for chunk in zone.received for r in chunk.upserts}
    removed = [rid for chunk in zone.received for rid in chunk.removals]
    assert upserted == {"mesh-3", "mesh-8", "mesh-9"}
    assert removed == [gone.id]
    assert zone.replica == glob.source


def test_reconnect_with_nothing_changed_sends_one_empty_last_chunk() -> None:
    source = meshes(50)
    zone, _glob = established(
        global_source=state_of("Mesh", source), zone_replica=state_of("Mesh", source), global_wants=()
    )
    assert [(c.upserts, c.removals, c.last) for c in zone.received] == [([], [], True)]
    assert zone.complete == {"Mesh"}


def test_a_large_known_set_is_chunked_and_merged() -> None:
    held = meshes(3000)
    wire: list[bytes] = []
    zone, glob = zone_and_global(
        zone_replica=state_of("Mesh", held),
        global_source=state_of("Mesh", held),
        zone_kwargs={"max_frame_bytes": 16384},
        global_kwargs={"max_frame_bytes": 16384},
    )
    pump(zone, glob, split=tap(wire))
    codec = MessageCodec[KdsMessage](KdsMessage, max_frame_bytes=16384)
    messages = [m for data in wire for m in codec.feed(data)]
    subscribes = [m for m in messages if isinstance(m, Subscribe) and m.type == "Mesh"]
    # 3,000 entries of ~70 bytes do not fit one 16 KiB frame.
    assert len(subscribes) > 5
    assert [s.chunk for s in subscribes] == list(range(len(subscribes)))
    assert [s.last for s in subscribes] == [False] * (len(subscribes) - 1) + [True]
    (request,) = [e for e in glob.events if isinstance(e, SubscriptionRequested)]
    assert request.known == known_of(zone.replica["Mesh"])
    assert all(not c.upserts and not c.removals for c in zone.received)


def test_a_large_state_arrives_complete_and_in_order_in_frames_under_the_limit() -> None:
    limit = 64 * 1024
    small = meshes(2000)
    big = [make_record("Mesh", f"huge-{i}", bytes([i]) * (3 * MIB + i), mesh="") for i in range(3)]
    source = small[:700] + big[:1] + small[700:1500] + big[1:] + small[1500:]
    wire: list[bytes] = []
    zone, glob = zone_and_global(
        global_source=state_of("Mesh", source),
        zone_kwargs={"max_frame_bytes": limit},
        global_kwargs={"max_frame_bytes": 1 << 24},
        page=400,
    )
    pump(zone, glob, split=tap(wire))
    assert zone.replica == glob.source
    # The global adopted the zone's smaller limit: every frame on the wire fits it.
    frames = FrameDecoder(limit)
    for data in wire:
        frames.receive_data(data)
    assert all(len(body) <= limit for body in frames.frames())
    chunks = zone.received
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.nonce for c in chunks] == sorted((c.nonce for c in chunks), key=int)
    # Records arrive in the order the source listed them, except that a SpecPart record is its own chunk.
    arrived = [r.name for c in chunks for r in c.upserts]
    assert sorted(arrived) == sorted(r.name for r in source)
    assert [n for n in arrived if n.startswith("mesh-")] == [r.name for r in small]
    assert [n for n in arrived if n.startswith("huge-")] == ["huge-0", "huge-1", "huge-2"]


def test_spec_parts_carry_a_record_larger_than_a_frame() -> None:
    limit = 8192
    record = make_record("Mesh", "big", bytes(range(256)) * 400, mesh="")  # 100 KiB
    wire: list[bytes] = []
    zone, glob = zone_and_global(
        global_source=state_of("Mesh", [record]),
        zone_kwargs={"max_frame_bytes": limit},
        global_kwargs={"max_frame_bytes": limit},
    )
    pump(zone, glob, split=tap(wire))
    assert zone.replica["Mesh"][record.id] == record
    codec = MessageCodec[KdsMessage](KdsMessage, max_frame_bytes=limit)
    to_zone = [m for data in wire for m in codec.feed(data) if isinstance(m, (SpecPart, Resources))]
    parts = [m for m in to_zone if isinstance(m, SpecPart)]
    assert len(parts) >= 100 * 1024 // limit
    head = to_zone[-1]
    assert isinstance(head, Resources)
    assert head.spec_parts == len(parts)
    assert head.upserts[0].spec == b""


def test_fifty_mebibytes_of_state_stay_within_the_memory_contract() -> None:
    limit, window, page = 256 * 1024, 4, 4
    records = [make_record("Mesh", f"blob-{i}", bytes([i % 251]) * MIB, mesh="") for i in range(50)]
    zone, glob = zone_and_global(
        global_source=state_of("Mesh", records),
        global_wants=(),
        zone_kwargs={"max_frame_bytes": limit, "max_unacked": window},
        global_kwargs={"max_frame_bytes": limit, "max_unacked": window},
        page=page,
    )
    pump(zone, glob)
    assert zone.replica == glob.source
    # The global held at most one page queued plus what the window lets out, never the whole state.
    # A record larger than a frame is one chunk (SpecParts and its Resources), so a chunk in flight may be
    # as large as the record it carries.
    assert glob.max_pending_bytes <= page * (MIB + limit) + window * (MIB + limit)
    assert glob.max_pending_bytes < 10 * MIB


def test_acks_and_nacks_are_counted_per_type() -> None:
    good = meshes(5)
    bad = make_record("Mesh", "broken", BAD_SPEC, mesh="")
    zone, glob = established(global_source=state_of("Mesh", [*good, bad]), page=3)
    nacks = [e for e in glob.events if isinstance(e, Nacked)]
    acks = [e for e in glob.events if isinstance(e, Acked)]
    assert len(nacks) == 1
    assert len(acks) == 1
    assert [(e.id, e.reason) for e in nacks[0].errors] == [(bad.id, "spec does not validate")]
    # Valid records of the nacked chunk were applied.
    assert set(zone.replica["Mesh"]) == {r.id for r in good}
    assert glob.session.stats["Mesh"].sent == 2
    assert glob.session.stats["Mesh"].acked == 1
    assert glob.session.stats["Mesh"].nacked == 1
    assert zone.session.stats["Mesh"].received == 2
    assert zone.session.unanswered == frozenset()


def test_a_nack_too_large_for_a_frame_is_summarised() -> None:
    limit = 8192
    bad = [make_record("Mesh", f"bad-{i:04}", BAD_SPEC, mesh="") for i in range(400)]
    zone, glob = established(
        error_reason="spec.rules[0].default.action: must be one of Allow, Deny, AllowWithShadowDeny " * 6,
        global_source=state_of("Mesh", bad),
        zone_kwargs={"max_frame_bytes": limit},
        global_kwargs={"max_frame_bytes": limit},
        page=400,
    )
    errors = [err for e in glob.events if isinstance(e, Nacked) for err in e.errors]
    listed = [err for err in errors if err.id]
    summaries = [err.reason for err in errors if not err.id]
    assert summaries
    assert all("more refused records not listed" in s for s in summaries)
    dropped = sum(int(s.split()[0]) for s in summaries)
    assert len(listed) + dropped == 400
    assert glob.closed is None
    assert zone.closed is None


def test_changes_after_the_initial_sync_flow_as_new_chunks() -> None:
    zone, glob = established(global_source=state_of("Mesh", meshes(3)))
    before = len(zone.received)
    added = make_record("Mesh", "mesh-new", mesh="")
    removed = next(iter(glob.source["Mesh"]))
    glob.change("Mesh", [added], [removed])
    pump(zone, glob)
    assert zone.replica == glob.source
    (chunk,) = zone.received[before:]
    assert isinstance(chunk, ResourcesReceived)
    assert (chunk.chunk, chunk.last, chunk.removals) == (0, True, [removed])


def test_stream_commands_refuse_misuse_and_change_nothing() -> None:
    zone, glob = established(global_source=state_of("Mesh", meshes(1)))
    with pytest.raises(LocalProtocolError, match="has not subscribed") as info:
        zone.session.send_resources("Mesh", [])
    assert info.value.code == "unsubscribed_type"
    with pytest.raises(LocalProtocolError, match="already subscribed"):
        zone.session.subscribe("Mesh", {})
    with pytest.raises(LocalProtocolError, match="not a 'Mesh'"):
        glob.session.send_resources("Mesh", [make_record("Dataplane", "x")])
    record = meshes(1)[0]
    with pytest.raises(LocalProtocolError, match="appears twice"):
        glob.session.send_resources("Mesh", [record], [record.id])
    with pytest.raises(LocalProtocolError, match="awaits an answer"):
        zone.session.ack("12345")
    with pytest.raises(LocalProtocolError, match="awaits an answer"):
        zone.session.nack("12345", [])
    assert zone.session.data_to_send() == glob.session.data_to_send() == b""
    assert zone.closed is None
    assert glob.closed is None


def test_nothing_may_be_sent_before_the_handshake() -> None:
    zone, glob = zone_and_global()
    with pytest.raises(LocalProtocolError, match="cannot send Subscribe in state hello_sent"):
        zone.session.subscribe("Mesh", {})
    with pytest.raises(LocalProtocolError, match="cannot send Resources in state awaiting_hello"):
        glob.session.send_resources("Mesh", [])


def test_every_resources_chunk_gets_its_own_nonce() -> None:
    zone, glob = established(
        global_source=state_of("Mesh", meshes(400)),
        zone_kwargs={"max_frame_bytes": 8192},
        global_wants=(),
    )
    nonces = [c.nonce for c in zone.received]
    assert len(nonces) > 3
    assert len(set(nonces)) == len(nonces)
    acked = [e.nonce for e in glob.events if isinstance(e, Acked)]
    assert acked == nonces


def test_node_helper_is_quiet_after_pump() -> None:
    # The harness itself: after pump() returns, neither side has anything left to do or say.
    zone, glob = established(global_source=state_of("Mesh", meshes(20)))
    for node in (zone, glob):
        assert isinstance(node, Node)
        assert not node.work
        assert node.session.next_event() is None
        assert node.session.data_to_send() == b""
        assert node.session.in_flight == 0
        assert node.session.writable
