"""KDS, the discovery service between the global control plane and each zone control plane.

The protocol core here is sans-IO (no ``asyncio``, no ``socket``): :mod:`kmesh.kds.messages` holds the
wire messages, :mod:`kmesh.kds.records` the opaque resource records they carry, and
:class:`~kmesh.kds.session.KdsSession` the state machine of one connection, which takes bytes and gives
events (:mod:`kmesh.kds.events`).

On top of it: :class:`~kmesh.kds.transport.KdsConnection`, the asyncio adapter of one session over TLS;
:class:`~kmesh.kds.sync.ResourceSync`, the exchange of resources between a store and a peer over one
connection; :class:`~kmesh.kds.global_server.KdsGlobalServer`, the global's listener with the zone
lifecycle; and :class:`~kmesh.kds.zone_client.KdsZoneClient`, the zone's connection to the global.
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
from kmesh.kds.global_server import Authenticator, KdsGlobalServer
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
from kmesh.kds.sync import ResourceSync, SyncSettings, TypeSyncStats
from kmesh.kds.transport import KdsConnection
from kmesh.kds.zone_client import KdsZoneClient

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_MAX_UNACKED",
    "PROTOCOL",
    "Ack",
    "Acked",
    "Authenticator",
    "Close",
    "CloseCode",
    "ConnectionClosed",
    "Drained",
    "Event",
    "Heartbeat",
    "HeartbeatReceived",
    "Hello",
    "HelloReceived",
    "KdsConnection",
    "KdsGlobalServer",
    "KdsMessage",
    "KdsSession",
    "KdsZoneClient",
    "Nack",
    "Nacked",
    "Record",
    "RecordError",
    "Reject",
    "Rejected",
    "ResourceSync",
    "Resources",
    "ResourcesReceived",
    "Role",
    "SpecPart",
    "State",
    "Subscribe",
    "SubscriptionRequested",
    "SyncSettings",
    "TypeStats",
    "TypeSyncStats",
    "Welcome",
    "Welcomed",
    "content_hash",
    "encoded_size",
    "record_id",
    "split_record_id",
]
