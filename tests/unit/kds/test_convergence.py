"""Whatever the chunking of the byte stream, the interleaving of commands, or the moment the connection
drops, the receiver ends up holding exactly the sender's state; after a drop a fresh pair of sessions
resyncs from the receiver's known hashes, and only the differences travel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from kmesh.kds import Record, Welcome

from .peers import Node, State, known_of, make_record, pump, zone_and_global

FRAME = 4096


def mesh(name: str, spec: bytes) -> Record:
    return make_record("Mesh", name, spec, mesh="", labels={"kuma.io/origin": "global"})


def dataplane(name: str, spec: bytes) -> Record:
    return make_record("Dataplane", name, spec, zone="zone-1", labels={"kuma.io/zone": "zone-1"})


def as_state(records: list[Record]) -> dict[str, Record]:
    return {r.id: r for r in records}


def copy_state(state: State) -> State:
    return {type_: dict(records) for type_, records in state.items()}


@dataclass
class Link:
    """Two nodes and the bytes in transit each way, moved only when a test says so."""

    zone: Node
    glob: Node
    pipes: dict[str, bytearray] = field(default_factory=lambda: {"zone": bytearray(), "global": bytearray()})

    def node(self, side: str) -> Node:
        return self.zone if side == "zone" else self.glob

    def other(self, side: str) -> Node:
        return self.glob if side == "zone" else self.zone

    def deliver(self, side: str, limit: int) -> int:
        """Move up to ``limit`` bytes sent by ``side`` to its peer; return how many moved."""
        pipe = self.pipes[side]
        pipe += self.node(side).session.data_to_send()
        piece = bytes(pipe[:limit])
        del pipe[:limit]
        if piece:
            self.other(side).session.receive_data(piece)
        return len(piece)

    def settle(self, max_rounds: int = 100_000) -> None:
        for _ in range(max_rounds):
            progressed = self.zone.process() | self.glob.process()
            moved = self.deliver("zone", 1 << 30) + self.deliver("global", 1 << 30)
            if not (progressed or moved):
                return
        raise AssertionError("the link did not settle")


def assert_converged(zone: Node, glob: Node) -> None:
    assert zone.closed is None, zone.closed
    assert glob.closed is None, glob.closed
    assert zone.replica.get("Mesh", {}) == glob.source.get("Mesh", {})
    assert glob.replica.get("Dataplane", {}) == zone.source.get("Dataplane", {})


specs = st.one_of(st.binary(max_size=40), st.binary(min_size=FRAME, max_size=3 * FRAME))
names = st.sampled_from([f"r{i}" for i in range(8)])


@st.composite
def states(
    draw: st.DrawFn, make: Callable[[str, bytes], Record]
) -> tuple[dict[str, Record], dict[str, Record]]:
    """A source, and a replica that holds some of it, some stale records and some extras."""
    source = as_state([make(n, draw(specs)) for n in draw(st.sets(names, max_size=6))])
    replica: dict[str, Record] = {}
    for n in draw(st.sets(names, max_size=6)):
        record = make(n, b"stale") if draw(st.booleans()) else None
        match = source.get(make(n, b"").id)
        kept = match if match is not None and record is None else record or make(n, b"extra")
        replica[kept.id] = kept
    return source, replica


action = st.one_of(
    st.tuples(st.just("deliver"), st.sampled_from(["zone", "global"]), st.integers(1, 3 * FRAME)),
    st.tuples(st.just("process"), st.sampled_from(["zone", "global"]), st.just(0)),
    st.tuples(st.just("change"), st.sampled_from(["zone", "global"]), st.integers(0, 15)),
)


@settings(max_examples=100, deadline=None)
@given(states(mesh), states(dataplane), st.lists(action, max_size=40), st.integers(1, 4))
def test_any_chunking_and_interleaving_converges(
    meshes: tuple[dict[str, Record], dict[str, Record]],
    dataplanes: tuple[dict[str, Record], dict[str, Record]],
    script: list[tuple[str, str, int]],
    window: int,
) -> None:
    zone, glob = zone_and_global(
        global_source={"Mesh": meshes[0]},
        zone_replica={"Mesh": dict(meshes[1])},
        zone_source={"Dataplane": dataplanes[0]},
        global_replica={"Dataplane": dict(dataplanes[1])},
        zone_kwargs={"max_frame_bytes": FRAME, "max_unacked": window},
        global_kwargs={"max_frame_bytes": FRAME},
        page=2,
    )
    link = Link(zone, glob)
    for step, (kind, side, arg) in enumerate(script):
        node = link.node(side)
        if kind == "deliver":
            link.deliver(side, arg)
        elif kind == "process":
            node.process()
        else:
            type_, make = ("Mesh", mesh) if side == "global" else ("Dataplane", dataplane)
            name = f"r{arg % 8}"
            if arg >= 8:
                node.change(type_, removals=[make(name, b"").id])
            else:
                node.change(type_, [make(name, f"v{step}".encode() * (arg + 1))])
    link.settle()
    assert_converged(zone, glob)


def _run_until(zone: Node, glob: Node, budget: int | None) -> int:
    """Exchange until quiet or until ``budget`` bytes were delivered (then the connection drops)."""
    delivered = 0
    for _ in range(100_000):
        progressed = zone.process() | glob.process()
        moved = False
        for sender, receiver in ((zone, glob), (glob, zone)):
            data = sender.session.data_to_send()
            if budget is not None:
                data = data[: max(0, budget - delivered)]
            if data:
                receiver.session.receive_data(data)
                delivered += len(data)
                moved = True
        if budget is not None and delivered >= budget:
            for node in (zone, glob):
                node.session.receive_eof()
                node.process()
            return delivered
        if not (progressed or moved):
            return delivered
    raise AssertionError("the exchange did not settle")


GLOBAL_SOURCE = as_state([mesh(f"m{i}", f'{{"i":{i}}}'.encode()) for i in range(3)])
ZONE_SOURCE = as_state([dataplane(f"dp{i}", f'{{"port":{i}}}'.encode()) for i in range(3)])
# Before the first connection the zone holds a stale m1 and a deleted m9; the global a stale dp2.
ZONE_HELD = as_state([mesh("m0", b'{"i":0}'), mesh("m1", b"old"), mesh("m9", b"deleted")])
GLOBAL_HELD = as_state([dataplane("dp2", b"old")])


def _pair(zone_held: dict[str, Record], global_held: dict[str, Record]) -> tuple[Node, Node]:
    return zone_and_global(
        global_source={"Mesh": dict(GLOBAL_SOURCE)},
        zone_source={"Dataplane": dict(ZONE_SOURCE)},
        zone_replica={"Mesh": dict(zone_held)},
        global_replica={"Dataplane": dict(global_held)},
        welcome=Welcome(heartbeat_interval_s=5.0),
        page=1,
    )


def _differences(source: dict[str, Record], held: dict[str, Record]) -> tuple[set[str], set[str]]:
    changed = {rid for rid, r in source.items() if held.get(rid) is None or held[rid].hash != r.hash}
    return changed, set(held) - set(source)


def _resync(zone_held: dict[str, Record], global_held: dict[str, Record]) -> None:
    """A fresh pair starting from what each receiver held converges, and only the differences travel."""
    zone, glob = _pair(zone_held, global_held)
    _run_until(zone, glob, None)
    assert_converged(zone, glob)
    for receiver, source, held in ((zone, GLOBAL_SOURCE, zone_held), (glob, ZONE_SOURCE, global_held)):
        changed, extra = _differences(source, held)
        assert {r.id for c in receiver.received for r in c.upserts} == changed
        assert sum(len(c.upserts) for c in receiver.received) == len(changed)
        assert {rid for c in receiver.received for rid in c.removals} == extra


def test_a_connection_dropped_after_any_byte_resyncs_with_only_the_differences() -> None:
    zone, glob = _pair(ZONE_HELD, GLOBAL_HELD)
    total = _run_until(zone, glob, None)
    assert_converged(zone, glob)
    assert total > 1000
    resynced: set[tuple[frozenset[tuple[str, str]], ...]] = set()
    for cut in range(total + 1):
        zone, glob = _pair(ZONE_HELD, GLOBAL_HELD)
        _run_until(zone, glob, cut)
        # Every drop ends both sessions with a ConnectionClosed, whatever was in flight.
        assert zone.closed is not None, cut
        assert glob.closed is not None, cut
        assert zone.session.get_timer() is None
        assert glob.session.get_timer() is None
        # What each receiver applied before the drop is what it announces on the next connection. Many
        # cut points leave the same holdings; each distinct one is resynced once.
        zone_held, global_held = dict(zone.replica.get("Mesh", {})), dict(glob.replica.get("Dataplane", {}))
        key = (frozenset(known_of(zone_held).items()), frozenset(known_of(global_held).items()))
        if key not in resynced:
            resynced.add(key)
            _resync(zone_held, global_held)
    # The drops happened at every stage: before anything arrived, midway, after everything.
    assert len(resynced) >= 6


@settings(max_examples=60, deadline=None)
@given(states(mesh), st.integers(0, 40_000), st.lists(st.integers(1, 5000), min_size=1, max_size=8))
def test_a_drop_during_spec_parts_resyncs(
    meshes: tuple[dict[str, Record], dict[str, Record]], cut: int, pieces: list[int]
) -> None:
    def pair(held: dict[str, Record]) -> tuple[Node, Node]:
        return zone_and_global(
            global_source={"Mesh": dict(meshes[0])},
            zone_replica={"Mesh": dict(held)},
            global_wants=(),
            zone_kwargs={"max_frame_bytes": FRAME},
            page=3,
        )

    zone, glob = pair(meshes[1])
    link = Link(zone, glob)
    delivered = 0
    for i in range(100_000):
        progressed = zone.process() | glob.process()
        step = pieces[i % len(pieces)]
        moved = link.deliver("zone", step) + link.deliver("global", min(step, max(0, cut - delivered)))
        delivered += moved
        if delivered >= cut or not (progressed or moved):
            break
    zone.session.receive_eof()
    glob.session.connection_lost("reset by the test")
    zone.process()
    glob.process()
    assert zone.closed is not None
    assert glob.closed is not None
    zone2, glob2 = pair(zone.replica.get("Mesh", {}))
    pump(zone2, glob2)
    assert zone2.replica["Mesh"] == glob2.source["Mesh"]
    assert zone2.closed is None
    assert glob2.closed is None
