"""KDS, the discovery service between the global control plane and each zone control plane.

The protocol core here is sans-IO (no ``asyncio``, no ``socket``): :mod:`kmesh.kds.messages` holds the
wire messages, :mod:`kmesh.kds.records` the opaque resource records they carry, and
:class:`~kmesh.kds.session.KdsSession` the state machine of one connection, which takes bytes and gives
events (:mod:`kmesh.kds.events`). Transport and store-facing sync logic sit on top of it.
"""

from __future__ import annotations

from kmesh.kds._state import Role, State
from kmesh.kds.events import (
    Acked,
    ConnectionClosed,
    Drained,
    Event,
    HeartbeatReceived,
    HelloReceived,
    Nacked,
    Rejected,
    ResourcesReceived,
    SubscriptionRequested,
    Welcomed,
)
from kmesh.kds.messages import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_MAX_UNACKED,
    PROTOCOL,
    Ack,
    Close,
    CloseCode,
    Heartbeat,
    Hello,
    KdsMessage,
    Nack,
    Reject,
    Resources,
    SpecPart,
    Subscribe,
    Welcome,
)
from kmesh.kds.records import Record, RecordError, content_hash, encoded_size, record_id, split_record_id
from kmesh.kds.session import KdsSession, TypeStats

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_MAX_UNACKED",
    "PROTOCOL",
    "Ack",
    "Acked",
    "Close",
    "CloseCode",
    "ConnectionClosed",
    "Drained",
    "Event",
    "Heartbeat",
    "HeartbeatReceived",
    "Hello",
    "HelloReceived",
    "KdsMessage",
    "KdsSession",
    "Nack",
    "Nacked",
    "Record",
    "RecordError",
    "Reject",
    "Rejected",
    "Resources",
    "ResourcesReceived",
    "Role",
    "SpecPart",
    "State",
    "Subscribe",
    "SubscriptionRequested",
    "TypeStats",
    "Welcome",
    "Welcomed",
    "content_hash",
    "encoded_size",
    "record_id",
    "split_record_id",
]
