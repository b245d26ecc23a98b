"""The proxy's counters: per listener and per cluster, read by the admin endpoints and the tests.

Rules:
- A counter is a plain ``int`` attribute bumped inline on the data path (no locks: one event loop owns a
  proxy); gauges (``cx_active``) go up and down. Nothing here allocates per byte or per chunk.
- Counters survive config changes: a listener or cluster that goes away and comes back under the same name
  keeps counting where it was, as Envoy's stats do, so rates computed by a scraper never go backwards.
- ``snapshot()`` is the JSON of ``/stats``; :mod:`kmesh.proxy._admin` renders the same numbers as
  Prometheus text. Names are stable: dashboards and tests depend on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, final

__all__ = ["ClusterStats", "ListenerStats", "ProxyStats"]


@final
@dataclass(slots=True)
class ListenerStats:
    """One listener (``outbound:127.0.0.1:10001``, ``inbound:8080``, ``ingress``, ``egress``).

    ``denied``: connections refused by MeshTrafficPermission; ``identity_rejected``: peers whose
    certificate names no valid SPIFFE identity; ``no_route``: ingress/egress connections whose SNI matched
    no route (or carried none); ``not_tls``: connections that did not start with a TLS ClientHello;
    ``sniff_timeouts``: ClientHellos not complete in time; ``tls_errors``: failed handshakes;
    ``upstream_failures``: connections closed because no upstream (app or endpoint) could be reached.
    """

    cx_total: int = 0
    cx_active: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    denied: int = 0
    shadow_denied: int = 0
    identity_rejected: int = 0
    no_route: int = 0
    not_tls: int = 0
    sniff_timeouts: int = 0
    tls_errors: int = 0
    upstream_failures: int = 0


@final
@dataclass(slots=True)
class ClusterStats:
    """One cluster (a destination service or subset, or an ingress/egress route).

    ``lb_picks`` counts picks per endpoint (``address:port``); ``connect_failures`` dials that failed
    (refused, timed out, TLS failed); ``identity_mismatch`` peers that presented another SPIFFE id than
    the endpoint's; ``no_healthy_endpoint`` connections for which the cluster had nothing to pick;
    ``cx_overflow`` connections refused because the cluster had its circuit breaker's ``max_connections``
    open; ``health_checks_passed`` and ``health_checks_failed`` active health-check probes
    (MeshHealthCheck, :mod:`kmesh.proxy._healthcheck`) by outcome, ``health_check_changes`` endpoints whose
    verdict changed (healthy to unhealthy or back).
    """

    cx_total: int = 0
    cx_active: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    connect_failures: int = 0
    identity_mismatch: int = 0
    no_healthy_endpoint: int = 0
    cx_overflow: int = 0
    health_checks_passed: int = 0
    health_checks_failed: int = 0
    health_check_changes: int = 0
    lb_picks: dict[str, int] = field(default_factory=dict)

    def picked(self, endpoint: str) -> None:
        self.lb_picks[endpoint] = self.lb_picks.get(endpoint, 0) + 1


@final
class ProxyStats:
    """Every listener's and cluster's counters, by name, created on first use and never dropped."""

    def __init__(self) -> None:
        self.listeners: dict[str, ListenerStats] = {}
        self.clusters: dict[str, ClusterStats] = {}
        # Proxy-wide: configs applied and refused, certificates received.
        self.configs_applied = 0
        self.configs_refused = 0
        self.certificates = 0

    def listener(self, name: str) -> ListenerStats:
        stats = self.listeners.get(name)
        if stats is None:
            stats = self.listeners[name] = ListenerStats()
        return stats

    def cluster(self, name: str) -> ClusterStats:
        stats = self.clusters.get(name)
        if stats is None:
            stats = self.clusters[name] = ClusterStats()
        return stats

    def snapshot(self) -> dict[str, Any]:
        """The JSON body of ``/stats``: ``{"proxy": {...}, "listeners": {...}, "clusters": {...}}``."""
        return {
            "proxy": {
                "configs_applied": self.configs_applied,
                "configs_refused": self.configs_refused,
                "certificates": self.certificates,
            },
            "listeners": {name: asdict(s) for name, s in sorted(self.listeners.items())},
            "clusters": {name: asdict(s) for name, s in sorted(self.clusters.items())},
        }
