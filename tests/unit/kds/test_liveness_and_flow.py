"""Heartbeats on a fake clock, the heartbeat timeout, and the ack window with its backpressure signal."""

from __future__ import annotations

from kmesh.kds import ConnectionClosed, Drained, HeartbeatReceived, State
from kmesh.kds.messages import Ack, KdsMessage, Resources, Welcome
from kmesh.wire.codec import MessageCodec

from .peers import Node, established, make_record, pump, zone_and_global

INTERVAL = 10.0


def fire_due(node: Node, now: float) -> None:
    timer = node.session.get_timer()
    if timer is not None and timer <= now:
        node.session.handle_timer(now)


def next_deadline(*nodes: Node) -> float:
    timers = [t for n in nodes if (t := n.session.get_timer()) is not None]
    assert timers, "no timer armed"
    return min(timers)


def test_heartbeats_keep_an_idle_connection_alive() -> None:
    zone, glob = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    now = 0.0
    for _ in range(60):
        now = next_deadline(zone, glob)
        fire_due(zone, now)
        fire_due(glob, now)
        pump(zone, glob)
    assert now >= 25 * INTERVAL
    assert zone.closed is None
    assert glob.closed is None
    for node in (zone, glob):
        beats = [e for e in node.events if isinstance(e, HeartbeatReceived)]
        assert len(beats) >= 25
        assert all(b.sent_at <= now for b in beats)


def test_early_timer_calls_do_nothing() -> None:
    _zone, glob = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    timer = glob.session.get_timer()
    assert timer == INTERVAL
    glob.session.handle_timer(timer - 0.001)
    assert glob.session.data_to_send() == b""
    assert glob.session.get_timer() == timer


def test_a_silent_peer_is_dropped_after_three_missed_intervals() -> None:
    zone, glob = established(welcome=Welcome(heartbeat_interval_s=INTERVAL))
    last_heard = 0.0  # the handshake was the zone's last word; from now on nothing reaches the global
    ticks = []
    while glob.closed is None:
        now = glob.session.get_timer()
        assert now is not None
        assert now - last_heard <= 4 * INTERVAL, "a dead peer must be detected within four intervals"
        glob.session.handle_timer(now)
        glob.process()
        ticks.append(now)
        zone.session.data_to_send()  # the zone's bytes are lost
    closed = glob.closed
    assert closed.code == "heartbeat_timeout"
    assert "3 heartbeat intervals" in closed.reason
    # Never before three whole intervals of silence.
    assert ticks[-1] - last_heard >= 3 * INTERVAL
    assert glob.session.get_timer() is None
    # The zone learns why, if the Close gets through.
    zone.session.receive_data(glob.session.data_to_send())
    zone.process()
    assert zone.closed == ConnectionClosed(closed.code, closed.reason, by_peer=True)


def test_any_traffic_counts_as_life_even_without_heartbeats() -> None:
    zone, glob = established(zone_source={"Dataplane": {}}, welcome=Welcome(heartbeat_interval_s=INTERVAL))
    now = 0.0
    # Only the global's timer runs, so the zone never sends a Heartbeat; its changes keep it alive.
    for i in range(10):
        now += INTERVAL
        zone.change("Dataplane", [make_record("Dataplane", f"dp-{i}", zone="zone-1")])
        pump(zone, glob)
        glob.session.handle_timer(now)
        pump(zone, glob)
    assert glob.closed is None
    assert len(glob.replica["Dataplane"]) == 10
    for _ in range(4):
        now += INTERVAL
        glob.session.handle_timer(now)
        glob.process()
    (closed,) = [e for e in glob.events if isinstance(e, ConnectionClosed)]
    assert closed.code == "heartbeat_timeout"


def test_in_flight_never_exceeds_the_window_and_drained_reopens_the_tap() -> None:
    window = 3
    records = [make_record("Mesh", f"mesh-{i:03}", b"s" * 300, mesh="") for i in range(400)]
    zone, glob = zone_and_global(
        global_source={"Mesh": {r.id: r for r in records}},
        global_wants=(),
        zone_kwargs={"max_unacked": window, "max_frame_bytes": 8192},
        page=40,
    )
    zone.auto_ack = False
    to_zone, to_global = MessageCodec[KdsMessage](KdsMessage), MessageCodec[KdsMessage](KdsMessage)
    outstanding: set[str] = set()
    most = 0
    answered = 0
    saw_backpressure = False
    for _ in range(10_000):
        progressed = zone.process() | glob.process()
        saw_backpressure |= not glob.session.writable
        if answered < len(zone.received):
            # A slow receiver: one answer per round.
            zone.answer(zone.received[answered].nonce, [])
            answered += 1
            progressed = True
        down, up = glob.session.data_to_send(), zone.session.data_to_send()
        for message in to_zone.feed(down):
            if isinstance(message, Resources):
                outstanding.add(message.nonce)
        for message in to_global.feed(up):
            if isinstance(message, Ack):
                outstanding.discard(message.nonce)
        most = max(most, len(outstanding))
        assert glob.session.in_flight <= window
        assert len(zone.session.unanswered) <= window
        zone.session.receive_data(down)
        glob.session.receive_data(up)
        if not (progressed or down or up):
            break
    else:
        raise AssertionError("did not settle")
    assert zone.replica == glob.source
    assert most == window, "the window is used to the full but never beyond"
    assert saw_backpressure
    drained = [e for e in glob.events if isinstance(e, Drained)]
    # 400 records of ~370 bytes in pages of 40: each page is several chunks and fills the window.
    assert len(drained) >= 5
    assert glob.session.writable
    assert glob.session.pending_bytes == 0


def test_pending_bytes_report_what_waits_behind_the_window() -> None:
    records = [make_record("Mesh", f"mesh-{i:03}", b"s" * 2000, mesh="") for i in range(40)]
    zone, glob = established(global_wants=(), zone_wants=(), zone_kwargs={"max_unacked": 1})
    zone.session.subscribe("Mesh", {})
    pump(zone, glob)
    glob.session.data_to_send()
    nonces = glob.session.send_resources("Mesh", records[:20])
    nonces += glob.session.send_resources("Mesh", records[20:])
    assert len(nonces) == 2
    assert not glob.session.writable
    assert glob.session.in_flight == 1
    held = glob.session.pending_bytes
    written = glob.session.data_to_send()
    # What is left is the second chunk, encoded, waiting for the first one's answer.
    assert glob.session.pending_bytes == held - len(written) > 20 * 2000
    assert glob.session.state is State.ESTABLISHED
