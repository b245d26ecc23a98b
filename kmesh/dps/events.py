"""What a :class:`~kmesh.dps.session.DpSession` reports to its caller, one event at a time.

Events are facts about the connection, produced while the session reads bytes or fires timers, and taken
out with ``next_event()``. The caller's duties for each are written on the class. Every way a session ends
(a Close from either side, a Reject, a protocol error, a timeout, a lost transport) produces exactly one
:class:`ConnectionClosed`, always the last event of the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, final

from kmesh.dps.messages import CertificateIssued, Hello, InboundHealth, Welcome

__all__ = [
    "CertificateDenied",
    "CertificateReceived",
    "CertificateRequested",
    "ConfigAcked",
    "ConfigNacked",
    "ConfigReceived",
    "ConnectionClosed",
    "Event",
    "HealthReported",
    "HeartbeatReceived",
    "HelloReceived",
    "Rejected",
    "Welcomed",
]


@final
@dataclass(frozen=True, slots=True)
class HelloReceived:
    """Server side: a proxy introduced itself. Check its document and token, then ``accept()`` or
    ``reject()``."""

    hello: Hello


@final
@dataclass(frozen=True, slots=True)
class Welcomed:
    """Proxy side: the control plane admitted the proxy; send a CSR and the inbounds' health."""

    welcome: Welcome


@final
@dataclass(frozen=True, slots=True)
class Rejected:
    """Proxy side: the control plane refused the proxy. A :class:`ConnectionClosed` follows."""

    code: str
    reason: str


@final
@dataclass(frozen=True, slots=True)
class CertificateRequested:
    """Server side: sign ``csr_pem`` and answer with ``issue_certificate`` or ``refuse_certificate``."""

    csr_pem: bytes
    request_id: str
    mesh: str


@final
@dataclass(frozen=True, slots=True)
class CertificateReceived:
    """Proxy side: a certificate for the key of the CSR ``issued.request_id``."""

    issued: CertificateIssued


@final
@dataclass(frozen=True, slots=True)
class CertificateDenied:
    """Proxy side: the CSR ``request_id`` was refused. With ``retry`` the server will send the certificate
    by itself once it can; without, the proxy must change something (a new key, a new CSR)."""

    code: str
    reason: str
    request_id: str
    mesh: str
    retry: bool


@final
@dataclass(frozen=True, slots=True)
class ConfigReceived:
    """Proxy side: a whole config (all its chunks). Apply it, then ``ack(version)`` or ``nack(...)``."""

    version: str
    config: bytes


@final
@dataclass(frozen=True, slots=True)
class ConfigAcked:
    """Server side: the proxy applied the config ``version``."""

    version: str


@final
@dataclass(frozen=True, slots=True)
class ConfigNacked:
    """Server side: the proxy refused the config ``version`` and keeps its previous one."""

    version: str
    reason: str


@final
@dataclass(frozen=True, slots=True)
class HealthReported:
    """Server side: the readiness of the proxy's inbounds, by port."""

    inbounds: tuple[InboundHealth, ...]


@final
@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """The peer is alive; ``sent_at`` is its own clock (for display, never compared with ours)."""

    sent_at: float


@final
@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session is over. ``by_peer`` tells whether the peer ended it (Close, Reject, lost transport) or
    this side did (``close()``, ``reject()``, or a protocol error or timeout it detected, whose ``code`` and
    ``reason`` were sent to the peer in a Close). ``graceful`` is true only for a Close with code ``normal``
    from the peer: a proxy shutting down on purpose. Flush ``data_to_send()``, then close the transport.
    """

    code: str
    reason: str
    by_peer: bool
    graceful: bool = False


Event: TypeAlias = (
    HelloReceived
    | Welcomed
    | Rejected
    | CertificateRequested
    | CertificateReceived
    | CertificateDenied
    | ConfigReceived
    | ConfigAcked
    | ConfigNacked
    | HealthReported
    | HeartbeatReceived
    | ConnectionClosed
)
