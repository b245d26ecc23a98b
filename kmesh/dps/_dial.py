"""What a proxy needs to dial its control plane and to speak of it: the DP server address, the service its
CSRs name, and connection failures in words.

Rules: addresses are ``dps://HOST:PORT`` (``kmesh-proxy run --cp-address``), ``HOST:PORT`` or ``HOST``
(port 5678), IPv6 hosts in brackets; anything else is a ValueError naming the input. A failure's words say
what failed (TCP, TLS, the certificate check) without a traceback, for a log line an operator reads.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from kmesh.dps.messages import DEFAULT_DP_PORT

__all__ = ["csr_service", "parse_dp_address"]


def parse_dp_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``dps://HOST:PORT``, ``HOST:PORT`` or ``HOST`` (port 5678); IPv6 in brackets.
    Raises ValueError for anything else."""
    text = address if "://" in address else f"dps://{address}"
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme != "dps" or not parsed.hostname or parsed.path not in ("", "/"):
        raise ValueError(f"{address!r} is not a DP server address (dps://HOST:PORT)")
    try:
        port = parsed.port or DEFAULT_DP_PORT
    except ValueError:
        raise ValueError(f"{address!r}: the port must be a number from 1 to 65535") from None
    return parsed.hostname, port


def csr_service(doc: Mapping[str, Any]) -> str:
    """The service a CSR names (informational: the signer sets the real names): the first inbound's (or
    the gateway's) ``kuma.io/service`` of a Dataplane document, ``zone-egress`` for an egress, else
    ``proxy``."""
    networking = doc.get("networking")
    if isinstance(networking, Mapping):
        inbound = networking.get("inbound")
        candidates = list(inbound) if isinstance(inbound, list) else []
        gateway = networking.get("gateway")
        if isinstance(gateway, Mapping):
            candidates.append(gateway)
        for entry in candidates:
            tags = entry.get("tags") if isinstance(entry, Mapping) else None
            service = tags.get("kuma.io/service") if isinstance(tags, Mapping) else None
            if isinstance(service, str) and service:
                return service
    return "zone-egress" if doc.get("type") == "ZoneEgress" else "proxy"
