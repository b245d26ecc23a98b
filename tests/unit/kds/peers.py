"""Two KDS sessions talking in memory, with a minimal sync layer on each side (aioquic's
``client_and_server()`` pattern): no sockets, no sleeps, no clock but the one the tests pass in.

A :class:`Node` plays the caller of one session the way the real sync layer must: it serves ``source``
(what this side owns) for every type the peer subscribes to, answering with the differences only and
pulling pages of at most ``page`` records while the session is ``writable``; it applies every received
chunk to ``replica`` and acks it (or nacks records whose spec is ``b"bad"``, applying the rest).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kmesh.kds import (
    Acked,
    ConnectionClosed,
    Drained,
    Event,
    HeartbeatReceived,
    HelloReceived,
    KdsSession,
    Nacked,
    Record,
    RecordError,
    Rejected,
    ResourcesReceived,
    Role,
    SubscriptionRequested,
    Welcomed,
    content_hash,
    record_id,
)
from kmesh.kds.messages import Hello, Welcome

ZONE_TOKEN = "zone-token-for-tests"
BAD_SPEC = b"bad"

State = dict[str, dict[str, Record]]


def make_record(
    type_: str,
    name: str,
    spec: bytes = b"{}",
    *,
    mesh: str = "default",
    zone: str = "",
    labels: Mapping[str, str] | None = None,
    version: int = 1,
) -> Record:
    labels = dict(labels or {})
    return Record(
        id=record_id(type_, mesh, name, zone),
        type=type_,
        mesh=mesh,
        name=name,
        zone=zone,
        labels=labels,
        spec=spec,
        hash=content_hash(labels, spec),
        version=version,
        creation_time=1_700_000_000.0,
        modification_time=1_700_000_000.0 + version,
    )


def known_of(records: Mapping[str, Record]) -> dict[str, str]:
    return {rid: record.hash for rid, record in records.items()}


@dataclass
class Node:
    session: KdsSession
    source: State = field(default_factory=dict)
    replica: State = field(default_factory=dict)
    # Types this node subscribes to once established.
    wants: tuple[str, ...] = ()
    page: int = 50
    auto_ack: bool = True
    hello: Hello | None = None
    welcome: Welcome | None = None
    expected_token: str = ZONE_TOKEN
    error_reason: str = "spec does not validate"
    events: list[Event] = field(default_factory=list)
    received: list[ResourcesReceived] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)
    closed: ConnectionClosed | None = None
    # Pages of (type, upserts, removals, last) not yet handed to the session.
    work: deque[tuple[str, list[Record], list[str], bool]] = field(default_factory=deque)
    max_pending_bytes: int = 0

    def start(self) -> None:
        if self.hello is not None:
            self.session.connect(self.hello)

    def process(self) -> bool:
        """React to every available event and push work; return whether anything happened."""
        progressed = False
        while (event := self.session.next_event()) is not None:
            progressed = True
            assert self.closed is None, f"event {event!r} after {self.closed!r}"
            self.events.append(event)
            self._react(event)
        return self.push() or progressed

    def push(self) -> bool:
        pushed = False
        while self.work and self.session.writable and not self.session.closed:
            type_, upserts, removals, last = self.work.popleft()
            self.session.send_resources(type_, upserts, removals, last=last)
            self.max_pending_bytes = max(self.max_pending_bytes, self.session.pending_bytes)
            pushed = True
        return pushed

    def change(self, type_: str, upserts: Iterable[Record] = (), removals: Iterable[str] = ()) -> None:
        """Commit a change to ``source`` and, if the peer subscribed to ``type_``, send it."""
        ups, rms = list(upserts), list(removals)
        state = self.source.setdefault(type_, {})
        for record in ups:
            state[record.id] = record
        for rid in rms:
            state.pop(rid, None)
        if type_ in self.session.peer_subscriptions:
            self.work.append((type_, ups, rms, True))

    def _react(self, event: Event) -> None:
        session = self.session
        match event:
            case HelloReceived(hello=hello):
                if hello.token == self.expected_token:
                    session.accept(self.welcome or Welcome(global_instance_id="global-1"))
                    self._subscribe_all()
                else:
                    session.reject("unauthorized", f"zone {hello.zone!r} presented an invalid token")
            case Welcomed():
                self._subscribe_all()
            case SubscriptionRequested(type=type_, known=known):
                self.work.extend(self._diff(type_, known))
            case ResourcesReceived() as chunk:
                self.received.append(chunk)
                errors = self._apply(chunk)
                if chunk.last:
                    self.complete.add(chunk.type)
                if self.auto_ack:
                    self.answer(chunk.nonce, errors)
            case ConnectionClosed():
                self.closed = event
            case Acked() | Nacked() | Drained() | Rejected() | HeartbeatReceived():
                # Recorded in self.events; Drained needs nothing more since process() ends with push().
                pass

    def answer(self, nonce: str, errors: list[RecordError]) -> None:
        if errors:
            self.session.nack(nonce, errors)
        else:
            self.session.ack(nonce)

    def _subscribe_all(self) -> None:
        for type_ in self.wants:
            self.session.subscribe(type_, known_of(self.replica.get(type_, {})))

    def _diff(
        self, type_: str, known: Mapping[str, str]
    ) -> Iterator[tuple[str, list[Record], list[str], bool]]:
        state = self.source.get(type_, {})
        upserts = [r for rid, r in state.items() if known.get(rid) != r.hash]
        removals = [rid for rid in known if rid not in state]
        pages: list[tuple[list[Record], list[str]]]
        pages = [(upserts[i : i + self.page], []) for i in range(0, len(upserts), self.page)]
        pages += [([], removals[i : i + self.page]) for i in range(0, len(removals), self.page)]
        if not pages:
            pages = [([], [])]
        for i, (ups, rms) in enumerate(pages):
            yield type_, ups, rms, i == len(pages) - 1

    def _apply(self, chunk: ResourcesReceived) -> list[RecordError]:
        state = self.replica.setdefault(chunk.type, {})
        errors = []
        for record in chunk.upserts:
            if record.spec == BAD_SPEC:
                errors.append(RecordError(id=record.id, reason=self.error_reason))
            else:
                state[record.id] = record
        for rid in chunk.removals:
            state.pop(rid, None)
        return errors


Splitter = Callable[[bytes], Iterable[bytes]]


def whole(data: bytes) -> Iterable[bytes]:
    return (data,)


def pump(a: Node, b: Node, *, split: Splitter = whole, max_rounds: int = 100_000) -> int:
    """Move bytes both ways and let both nodes react until nothing happens; return the rounds used.

    Fails if the pair is still busy after ``max_rounds``: a protocol that never goes quiet is a bug.
    """
    for rounds in range(max_rounds):
        progressed = a.process() | b.process()
        to_b, to_a = a.session.data_to_send(), b.session.data_to_send()
        for piece in split(to_b):
            b.session.receive_data(piece)
        for piece in split(to_a):
            a.session.receive_data(piece)
        if not (progressed or to_a or to_b):
            return rounds
    raise AssertionError(f"sessions still busy after {max_rounds} rounds")


def zone_and_global(
    *,
    now: float = 0.0,
    zone_source: State | None = None,
    zone_replica: State | None = None,
    global_source: State | None = None,
    global_replica: State | None = None,
    zone_wants: tuple[str, ...] = ("Mesh",),
    global_wants: tuple[str, ...] = ("Dataplane",),
    token: str = ZONE_TOKEN,
    zone_kwargs: Mapping[str, object] | None = None,
    global_kwargs: Mapping[str, object] | None = None,
    page: int = 50,
    welcome: Welcome | None = None,
    error_reason: str = "spec does not validate",
) -> tuple[Node, Node]:
    """A zone node and a global node whose sessions are ready to talk; the zone has sent its Hello."""
    zone = Node(
        KdsSession(Role.ZONE, now=now, **dict(zone_kwargs or {})),  # type: ignore[arg-type]
        source=zone_source if zone_source is not None else {},
        replica=zone_replica if zone_replica is not None else {},
        wants=zone_wants,
        page=page,
        hello=Hello(zone="zone-1", cp_version="test", instance_id="zone-cp-1", token=token),
        error_reason=error_reason,
    )
    glob = Node(
        KdsSession(Role.GLOBAL, now=now, **dict(global_kwargs or {})),  # type: ignore[arg-type]
        source=global_source if global_source is not None else {},
        replica=global_replica if global_replica is not None else {},
        wants=global_wants,
        page=page,
        welcome=welcome,
    )
    zone.start()
    return zone, glob


def established(**kwargs: object) -> tuple[Node, Node]:
    zone, glob = zone_and_global(**kwargs)  # type: ignore[arg-type]
    pump(zone, glob)
    assert zone.closed is None
    assert glob.closed is None
    return zone, glob
