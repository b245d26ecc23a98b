"""The DP protocol: how proxies (sidecars, zone ingresses, zone egresses) talk to their zone control plane.

The protocol core is sans-IO (no ``asyncio``, no ``socket``): :mod:`kmesh.dps.messages` holds the wire
messages, :class:`~kmesh.dps.session.DpSession` the state machine of one connection, which takes bytes and
gives events (:mod:`kmesh.dps.events`).

On top of it: :class:`~kmesh.dps.transport.DpConnection`, the asyncio adapter of one session over TLS;
:class:`~kmesh.dps.server.DpServer`, the zone control plane's listener (admission, registration,
certificates, config pushes, insights, zone ingresses' ``availableServices``) with
:func:`~kmesh.dps.server_tls.ensure_dp_server_tls` for its certificate; :class:`~kmesh.dps.client.DpClient`,
the proxy's side; and :mod:`kmesh.dps.zone_proxy_tokens`, the tokens of a zone's ingresses and egresses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from kmesh.dps._keys import Certificate
from kmesh.dps._state import Role, State
from kmesh.dps.client import ClientCounters, ConfigApplier, DpClient, parse_dp_address
from kmesh.dps.events import (
    CertificateDenied,
    CertificateReceived,
    CertificateRequested,
    ConfigAcked,
    ConfigNacked,
    ConfigReceived,
    ConnectionClosed,
    Event,
    HealthReported,
    HeartbeatReceived,
    HelloReceived,
    Rejected,
    Welcomed,
)
from kmesh.dps.messages import (
    DEFAULT_CONFIG_WINDOW,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    PROTOCOL,
    Ack,
    CertificateIssued,
    CertificateRefused,
    CertificateRequest,
    Close,
    CloseCode,
    ConfigUpdate,
    DpMessage,
    HealthReport,
    Heartbeat,
    Hello,
    InboundHealth,
    Nack,
    Reject,
    Welcome,
)
from kmesh.dps.session import DpSession
from kmesh.dps.transport import DpConnection

if TYPE_CHECKING:
    from kmesh.dps.server import DEFAULT_DP_PORT, STANDALONE_ZONE, DpServer
    from kmesh.dps.server_tls import DP_CA_FILE, DP_TLS_SECRET, ensure_dp_server_tls
    from kmesh.dps.zone_proxy_tokens import (
        ZONE_PROXY_SIGNING_KEY_PREFIX,
        ZONE_PROXY_TOKEN_MESH,
        ZONE_PROXY_TOKEN_REVOCATIONS,
        ensure_zone_proxy_signing_key,
        issue_zone_proxy_token,
        verify_zone_proxy_token,
        zone_proxy_key_set,
        zone_proxy_revoked_ids,
        zone_proxy_signing_key_secret,
    )

# The control plane's side (server, its certificate, zone-proxy tokens) is imported on first use, so a proxy,
# which only needs the client, does not load admission, JWT and the server into memory (S5's RSS budget).
_SERVER_SIDE: Final = {
    "DEFAULT_DP_PORT": "kmesh.dps.server",
    "STANDALONE_ZONE": "kmesh.dps.server",
    "DpServer": "kmesh.dps.server",
    "DP_CA_FILE": "kmesh.dps.server_tls",
    "DP_TLS_SECRET": "kmesh.dps.server_tls",
    "ensure_dp_server_tls": "kmesh.dps.server_tls",
    **dict.fromkeys(
        (
            "ZONE_PROXY_SIGNING_KEY_PREFIX",
            "ZONE_PROXY_TOKEN_MESH",
            "ZONE_PROXY_TOKEN_REVOCATIONS",
            "ensure_zone_proxy_signing_key",
            "issue_zone_proxy_token",
            "verify_zone_proxy_token",
            "zone_proxy_key_set",
            "zone_proxy_revoked_ids",
            "zone_proxy_signing_key_secret",
        ),
        "kmesh.dps.zone_proxy_tokens",
    ),
}


def __getattr__(name: str) -> Any:
    module = _SERVER_SIDE.get(name)
    if module is None:
        raise AttributeError(f"module 'kmesh.dps' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_CONFIG_WINDOW",
    "DEFAULT_DP_PORT",
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DP_CA_FILE",
    "DP_TLS_SECRET",
    "PROTOCOL",
    "STANDALONE_ZONE",
    "ZONE_PROXY_SIGNING_KEY_PREFIX",
    "ZONE_PROXY_TOKEN_MESH",
    "ZONE_PROXY_TOKEN_REVOCATIONS",
    "Ack",
    "Certificate",
    "CertificateDenied",
    "CertificateIssued",
    "CertificateReceived",
    "CertificateRefused",
    "CertificateRequest",
    "CertificateRequested",
    "ClientCounters",
    "Close",
    "CloseCode",
    "ConfigAcked",
    "ConfigApplier",
    "ConfigNacked",
    "ConfigReceived",
    "ConfigUpdate",
    "ConnectionClosed",
    "DpClient",
    "DpConnection",
    "DpMessage",
    "DpServer",
    "DpSession",
    "Event",
    "HealthReport",
    "HealthReported",
    "Heartbeat",
    "HeartbeatReceived",
    "Hello",
    "HelloReceived",
    "InboundHealth",
    "Nack",
    "Reject",
    "Rejected",
    "Role",
    "State",
    "Welcome",
    "Welcomed",
    "ensure_dp_server_tls",
    "ensure_zone_proxy_signing_key",
    "issue_zone_proxy_token",
    "parse_dp_address",
    "verify_zone_proxy_token",
    "zone_proxy_key_set",
    "zone_proxy_revoked_ids",
    "zone_proxy_signing_key_secret",
]
