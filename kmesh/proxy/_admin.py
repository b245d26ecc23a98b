"""The proxy's admin server (Envoy's ``:9901``): readiness, counters, Prometheus metrics and the config.

Endpoints (GET, and HEAD for each):
- ``/ready``: ``200 ready`` when the ``ready()`` hook says so, else ``503`` with its reason as the body
  (Envoy's ``/ready`` answers ``LIVE``/``PRE_INITIALIZING`` the same way, by status code first);
- ``/stats``: the JSON of :meth:`ProxyStats.snapshot`;
- ``/metrics``: the same numbers in the Prometheus text format (see :class:`StatsCollector` for names);
- ``/config_dump``: the JSON of the ``config_dump()`` hook;
- anything else, including another method on these paths: ``404`` listing the endpoints.

Rules:
- Nothing here builds what it serves: the proxy passes hooks, so this module knows no config types and
  never sees a private key (``config_dump`` is built by the caller, without keys).
- Metrics go through a private ``CollectorRegistry`` per server, never prometheus_client's global one: two
  proxies in one process (tests) must not share or collide on metrics, and nothing else in the process
  leaks into a proxy's scrape.
- aiohttp's access log is off: scrapers and probes hit these endpoints every few seconds.
- Bind to loopback by default: the admin API is not for the network (Envoy's advice for its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any, Final, final

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kmesh.proxy._stats import ClusterStats, ListenerStats, ProxyStats

__all__ = ["AdminServer", "StatsCollector"]

ENDPOINTS: Final = ("/ready", "/stats", "/metrics", "/config_dump")
# Admin requests are small and quick; a scrape in flight at shutdown gets this long.
_SHUTDOWN_TIMEOUT_S: Final = 1.0
# Gauges go up and down; every other int field of a stats dataclass is a counter.
_GAUGES: Final = frozenset({"cx_active"})

_HELP: Final[dict[str, str]] = {
    "cx_total": "Connections accepted (listener) or opened (cluster).",
    "cx_active": "Connections open now.",
    "bytes_received": "Bytes received from downstream (listener) or upstream (cluster).",
    "bytes_sent": "Bytes sent to downstream (listener) or upstream (cluster).",
    "denied": "Connections refused by MeshTrafficPermission.",
    "shadow_denied": "Connections a shadow MeshTrafficPermission rule would have refused.",
    "identity_rejected": "Peers whose certificate names no valid SPIFFE identity.",
    "no_route": "Ingress/egress connections whose SNI matched no route.",
    "not_tls": "Connections that did not start with a TLS ClientHello.",
    "sniff_timeouts": "ClientHellos not complete in time.",
    "tls_errors": "Failed TLS handshakes.",
    "upstream_failures": "Connections closed because no upstream could be reached.",
    "connect_failures": "Upstream dials that failed (refused, timed out, TLS failed).",
    "identity_mismatch": "Upstream peers that presented another SPIFFE id than the endpoint's.",
    "no_healthy_endpoint": "Connections for which the cluster had no endpoint to pick.",
    "cx_overflow": "Connections refused because the cluster had its circuit breaker's max_connections open.",
    "health_checks_passed": "Active health-check probes that passed.",
    "health_checks_failed": "Active health-check probes that failed.",
    "health_check_changes": "Endpoints that turned healthy or unhealthy by active health checks.",
}
_PROXY_COUNTERS: Final = (
    ("configs_applied", "Proxy configs received and applied."),
    ("configs_refused", "Proxy configs received and refused."),
    ("certificates", "Certificates received from the control plane."),
)


def _int_fields(cls: type[ListenerStats] | type[ClusterStats]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.type in ("int", int))


_LISTENER_FIELDS: Final = _int_fields(ListenerStats)
_CLUSTER_FIELDS: Final = _int_fields(ClusterStats)


@final
class StatsCollector(Collector):
    """Renders a :class:`ProxyStats` as Prometheus metric families, read afresh on every scrape.

    Names (counters get ``_total`` appended in the text format, as Prometheus requires):
    - ``kmesh_listener_<field>{listener}`` for each ``ListenerStats`` field, e.g.
      ``kmesh_listener_cx_total``, ``kmesh_listener_bytes_received_total``; ``cx_active`` is a gauge;
    - ``kmesh_cluster_<field>{cluster}`` for each ``ClusterStats`` int field, and
      ``kmesh_cluster_lb_picks_total{cluster,endpoint}``;
    - ``kmesh_proxy_configs_applied_total``, ``kmesh_proxy_configs_refused_total``,
      ``kmesh_proxy_certificates_total``.
    Every family is emitted on every scrape, with no samples when no listener or cluster exists yet.
    """

    def __init__(self, stats: ProxyStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        for name, help_text in _PROXY_COUNTERS:
            yield CounterMetricFamily(f"kmesh_proxy_{name}", help_text, value=getattr(stats, name))
        listeners = sorted(stats.listeners.items())
        for field in _LISTENER_FIELDS:
            family = _family("listener", field, ["listener"])
            for name, listener in listeners:
                family.add_metric([name], getattr(listener, field))
            yield family
        clusters = sorted(stats.clusters.items())
        for field in _CLUSTER_FIELDS:
            family = _family("cluster", field, ["cluster"])
            for name, cluster in clusters:
                family.add_metric([name], getattr(cluster, field))
            yield family
        picks = CounterMetricFamily(
            "kmesh_cluster_lb_picks",
            "Times the load balancer picked each endpoint (address:port).",
            labels=["cluster", "endpoint"],
        )
        for name, cluster in clusters:
            for endpoint, count in sorted(cluster.lb_picks.items()):
                picks.add_metric([name, endpoint], count)
        yield picks


def _family(scope: str, field: str, labels: list[str]) -> CounterMetricFamily | GaugeMetricFamily:
    name = f"kmesh_{scope}_{field}"
    help_text = _HELP.get(field, f"{scope} counter {field}.")
    if field in _GAUGES:
        return GaugeMetricFamily(name, help_text, labels=labels)
    return CounterMetricFamily(name, help_text, labels=labels)


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_INDENT_2), content_type="application/json")


@final
class AdminServer:
    """The admin endpoints of one proxy on ``host:port`` (see the module docstring).

    ``ready()`` returns ``(True, _)`` once the proxy serves traffic, else ``(False, reason)``;
    ``config_dump()`` returns the proxy's current config as JSON-able data, without private keys. Both are
    called on every request to their endpoint, on the event loop: they must be quick and not block.
    """

    def __init__(
        self,
        stats: ProxyStats,
        *,
        ready: Callable[[], tuple[bool, str]],
        config_dump: Callable[[], dict[str, Any]],
        host: str = "127.0.0.1",
        port: int = 9901,
    ) -> None:
        self._stats = stats
        self._ready = ready
        self._config_dump = config_dump
        self._host = host
        self._requested_port = port
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(StatsCollector(stats))
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ready", self._handle_ready)
        app.router.add_get("/stats", self._handle_stats)
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/config_dump", self._handle_config_dump)
        # Last: aiohttp tries routes in order, so this answers every other path and method.
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        return app

    async def start(self) -> None:
        """Listen and serve.

        Raises OSError naming ``host:port`` when the address cannot be bound (in use, not local, no
        permission), RuntimeError when already started.
        """
        if self._runner is not None:
            raise RuntimeError("AdminServer already started")
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._requested_port).start()
        except OSError as exc:
            await runner.cleanup()
            host = f"[{self._host}]" if ":" in self._host else self._host
            # asyncio's own message repeats the address as a tuple; the errno's text says it plainly.
            problem = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(
                exc.errno, f"cannot listen for the admin server on {host}:{self._requested_port}: {problem}"
            ) from None
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when constructed with port 0). Raises if not started."""
        if self._port is None:
            raise RuntimeError("AdminServer not started")
        return self._port

    async def close(self) -> None:
        """Stop listening and close every connection. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle_ready(self, request: web.Request) -> web.Response:
        ok, reason = self._ready()
        if ok:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"{reason or 'not ready'}\n")

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return _json(self._stats.snapshot())

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _handle_config_dump(self, request: web.Request) -> web.Response:
        return _json(self._config_dump())

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return web.Response(
            status=404, text=f"not found: {request.method} {request.path}; endpoints: {' '.join(ENDPOINTS)}\n"
        )
