"""The DP protocol's wire messages (protocol ``dp/1``) and its close codes; see DESIGN.md, "Wire".

One connection, dialled by a proxy (sidecar, zone ingress or zone egress) to its zone control plane::

    proxy                                        zone control plane
    Hello{protocol, proxy_type, dataplane,   ->
          token, version, instance_id, ...}
                                             <-  Welcome{heartbeat_interval_s, mesh, name, zone, ...}
                                                 | Reject{code, reason}
    CertificateRequest{request_id, csr_pem}  ->
                                             <-  CertificateIssued{request_id, cert_pem, ca_bundle_pem,
                                                                   not_after, renew_at}
                                                 | CertificateRefused{request_id, code, reason, retry}
                                             <-  ConfigUpdate{version, config, chunk, last}*
    Ack{version} | Nack{version, reason}     ->
    HealthReport{inbounds: [{port, ready}]}  ->  (whenever the readiness of an inbound changes)
    Heartbeat{sent_at}                       <-> (every heartbeat_interval_s, both ways)
    Close{code, reason}                      <-> (either side, then the connection ends)

Rules:

- The Hello's wire tag is ``Hello``, as KDS's: a proxy that dials the global's KDS port by mistake is
  refused there with a reason naming the DP protocol, and a zone control plane that dials a DP port is
  refused here the same way. So every field of :class:`Hello` has a default (a KDS Hello must decode).
- ``dataplane`` is the proxy's resource document as its operator wrote it (Kuma's Universal form of a
  Dataplane, ZoneIngress or ZoneEgress); the control plane validates it.
- ``ConfigUpdate.config`` is the msgpack encoding of a :class:`kmesh.proxyconfig.ProxyConfig`, cut into
  chunks that each fit a frame (``chunk`` counts from 0, ``last`` ends the config), so no config is limited
  by the frame size. ``version`` is the config's content digest. The proxy answers each complete config
  with one ``Ack`` or ``Nack`` naming its version.
- The proxy makes its key pair and sends only a CSR; the private key never crosses the wire. The server
  may also send a ``CertificateIssued`` unasked, re-signing the proxy's last CSR when the mesh's CA
  changes; ``request_id`` then names that CSR, so the proxy knows which of its keys the certificate is for.
  ``mesh`` names the mesh a zone egress wants a certificate for (it serves every mesh); empty for a
  sidecar, whose mesh is its dataplane's.
- ``Hello.max_frame_bytes`` and ``Welcome.max_frame_bytes`` say the largest frame each side accepts; each
  side sends within the smaller of the two. ``Hello.window`` says how many configs the proxy accepts
  unanswered; the server never has more in flight. The session fills these in.
- Every message keeps the compatibility rules of :mod:`kmesh.wire.codec`: fields are only ever added, with
  defaults; a new message kind is only sent to a peer that announced it in ``features``.
"""

from __future__ import annotations

import enum
from typing import Any, Final, TypeAlias, final

import msgspec

from kmesh.wire.codec import WireMessage
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES

__all__ = [
    "DEFAULT_CONFIG_WINDOW",
    "DEFAULT_DP_PORT",
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "PROTOCOL",
    "Ack",
    "CertificateIssued",
    "CertificateRefused",
    "CertificateRequest",
    "Close",
    "CloseCode",
    "ConfigUpdate",
    "DpMessage",
    "HealthReport",
    "Heartbeat",
    "Hello",
    "InboundHealth",
    "Nack",
    "Reject",
    "Welcome",
]

PROTOCOL: Final = "dp/1"
DEFAULT_DP_PORT: Final = 5678
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 10.0
# How many configs a proxy accepts unanswered (its Hello says; the server sends within it).
DEFAULT_CONFIG_WINDOW: Final = 16


class CloseCode(enum.StrEnum):
    """The codes a ``Close``, ``Reject`` or ``CertificateRefused`` carries (a peer may send others; they are
    passed through). Token refusals carry the token error's own code (``token_expired``, ...), certificate
    refusals the PKI error's (``ca_unavailable``, ``csr_invalid``, ...)."""

    NORMAL = "normal"
    # A proxy that stops but comes back (a restart): its resource stays registered.
    GOING_AWAY = "going_away"
    # Bytes that are not DP: the codes of kmesh.wire's framing and codec.
    BAD_MESSAGE = "bad_message"
    FRAME_TOO_LARGE = "frame_too_large"
    EMPTY_FRAME = "empty_frame"
    TRUNCATED_FRAME = "truncated_frame"
    # Well-formed messages that break the protocol.
    UNEXPECTED_MESSAGE = "unexpected_message"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    BAD_HELLO = "bad_hello"
    BAD_WELCOME = "bad_welcome"
    BAD_CONFIG_CHUNK = "bad_config_chunk"
    CONFIG_TOO_LARGE = "config_too_large"
    UNKNOWN_VERSION = "unknown_version"
    FLOW_CONTROL = "flow_control"
    # Admission (Reject) and the server's decisions.
    BAD_DATAPLANE = "bad_dataplane"
    MESH_NOT_FOUND = "mesh_not_found"
    NOT_ALLOWED = "dataplane_not_allowed"
    UNAUTHENTICATED = "unauthenticated"
    REPLACED = "replaced"
    RESOURCE_DELETED = "resource_deleted"
    STORE_UNAVAILABLE = "store_unavailable"
    INTERNAL_ERROR = "internal_error"
    # Certificates (CertificateRefused), beside the PKI error codes.
    MTLS_DISABLED = "mtls_disabled"
    NO_CERTIFICATE_NEEDED = "no_certificate_needed"
    # Liveness and the transport.
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    CONNECTION_LOST = "connection_lost"


class Hello(WireMessage, frozen=True, kw_only=True):
    """Proxy -> zone control plane, first message of a connection.

    ``proxy_type`` is ``sidecar``, ``ingress`` or ``egress``; ``dataplane`` the proxy's resource document;
    ``token`` its dataplane token; ``version`` the proxy's kmesh version; ``instance_id`` tells two runs of
    one proxy apart. Every field has a default so that a KDS Hello decodes too and can be refused.
    """

    protocol: str = PROTOCOL
    proxy_type: str = ""
    dataplane: dict[str, Any] = {}
    token: str = ""
    version: str = ""
    instance_id: str = ""
    features: list[str] = []
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    window: int = DEFAULT_CONFIG_WINDOW

    def __repr__(self) -> str:
        # The dataplane token is a credential: a Hello in a log line or a test failure must not show it.
        return (
            f"Hello(protocol={self.protocol!r}, proxy_type={self.proxy_type!r}, "
            f"dataplane={self.dataplane!r}, token=<redacted>, version={self.version!r}, "
            f"instance_id={self.instance_id!r}, features={self.features!r}, "
            f"max_frame_bytes={self.max_frame_bytes}, window={self.window})"
        )


class Welcome(WireMessage, frozen=True, kw_only=True):
    """Zone control plane -> proxy: admitted as ``name`` in ``mesh`` ("" for a zone ingress or egress) of
    ``zone``. Both sides beat every ``heartbeat_interval_s``."""

    protocol: str = PROTOCOL
    cp_instance_id: str = ""
    cp_version: str = ""
    features: list[str] = []
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S
    mesh: str = ""
    name: str = ""
    zone: str = ""
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


class Reject(WireMessage, frozen=True, kw_only=True):
    """Zone control plane -> proxy: the handshake failed, and why; the connection closes after it."""

    code: str
    reason: str = ""


class CertificateRequest(WireMessage, frozen=True, kw_only=True):
    """Proxy -> server: sign the key in ``csr_pem`` (PEM). ``request_id`` is the proxy's name for this CSR
    (and its key); ``mesh`` is for a zone egress only (see the module rules)."""

    csr_pem: bytes
    request_id: str = ""
    mesh: str = ""


class CertificateIssued(WireMessage, frozen=True, kw_only=True):
    """Server -> proxy: the workload certificate for the CSR ``request_id``, the PEM bundle of CAs the proxy
    must trust, and (Unix seconds) when it expires and when the proxy should renew it."""

    cert_pem: bytes
    ca_bundle_pem: bytes
    not_after: float
    renew_at: float
    request_id: str = ""
    mesh: str = ""
    backend: str = ""


class CertificateRefused(WireMessage, frozen=True, kw_only=True):
    """Server -> proxy: the CSR ``request_id`` was not signed. With ``retry`` the server keeps the CSR and
    sends the certificate by itself once it can (the mesh's CA arrives, mTLS is enabled)."""

    code: str
    reason: str = ""
    request_id: str = ""
    mesh: str = ""
    retry: bool = False


class ConfigUpdate(WireMessage, frozen=True, kw_only=True):
    """Server -> proxy: one chunk of the config ``version`` (see the module rules)."""

    version: str
    config: bytes = b""
    chunk: int = 0
    last: bool = True


class Ack(WireMessage, frozen=True, kw_only=True):
    """Proxy -> server: the config ``version`` is applied."""

    version: str


class Nack(WireMessage, frozen=True, kw_only=True):
    """Proxy -> server: the config ``version`` was refused, and why; the proxy keeps its previous one."""

    version: str
    reason: str = ""


@final
class InboundHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Readiness of the proxy's inbound on ``port``, as its probes of the application see it."""

    port: int
    ready: bool


class HealthReport(WireMessage, frozen=True, kw_only=True):
    """Proxy -> server: the readiness of its inbounds (every inbound it probes, each time)."""

    inbounds: list[InboundHealth] = []


class Heartbeat(WireMessage, frozen=True, kw_only=True):
    """Liveness; ``sent_at`` is the sender's clock, for display only (clocks of two hosts differ)."""

    sent_at: float = 0.0


class Close(WireMessage, frozen=True, kw_only=True):
    """The sender is ending the connection, and says why. A proxy's ``Close`` with code ``normal`` is a
    graceful shutdown: the control plane deregisters the proxy's resource (after a short delay)."""

    code: str = CloseCode.NORMAL
    reason: str = ""


DpMessage: TypeAlias = (
    Hello
    | Welcome
    | Reject
    | CertificateRequest
    | CertificateIssued
    | CertificateRefused
    | ConfigUpdate
    | Ack
    | Nack
    | HealthReport
    | Heartbeat
    | Close
)
