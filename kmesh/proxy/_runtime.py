"""``ProxyRuntime``: turns the ``ProxyConfig`` snapshots and certificates a proxy receives into listeners,
upstreams and probes, and keeps them in step.

Rules:
- ``apply(config)`` reconciles: upstreams (clusters) are created or updated in place by name; listeners
  are keyed by address and port — new ones start, kept ones get their new cluster or permissions, removed
  ones stop accepting while their connections run on. If a new listener cannot start (a port taken), the
  listeners started by this apply are closed again and the error is raised: the DP client NACKs the config
  and the previous one stays in force, whole.
- With mTLS a sidecar's inbound listeners need the certificate; a config that arrives first is kept and its
  inbounds start when the certificate does (``on_certificate`` reconciles again). Until then ``ready()``
  says what is missing.
- A zone ingress or egress listens where its own resource says (``networking.address:port``), not where
  the config says: the resource is what other zones were told.
- A cluster with ``health_check`` (MeshHealthCheck) gets one ``HealthChecker`` (``_healthcheck.py``) on its
  upstream, updated in place with the upstream; a cluster that loses it has its checker stopped and its
  endpoints marked healthy again. ``close()`` stops every checker and waits for its tasks.
- ``config_dump()`` is the proxy's config, the certificates' public facts and each upstream's endpoint
  states; never a key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import msgspec

from kmesh.dps import Certificate
from kmesh.proxy._gateway import SniGateway
from kmesh.proxy._healthcheck import HealthChecker
from kmesh.proxy._probe import AppProbe
from kmesh.proxy._sidecar import InboundListener, OutboundListener
from kmesh.proxy._stats import ProxyStats
from kmesh.proxy._tls import MeshTls
from kmesh.proxy._upstream import Mode, Upstream
from kmesh.proxyconfig import Cluster, ProxyConfig, sni_for

__all__ = ["ProxyRuntime"]

log = logging.getLogger("kmesh.proxy")

HealthReporter = Callable[[int, bool], None]
_GATEWAY_TYPES: Final = ("ingress", "egress")


def _max_connections(cluster: Cluster) -> int | None:
    breaker = cluster.circuit_breaker
    limits = breaker.connection_limits if breaker is not None else None
    return limits.max_connections if limits is not None else None


def _outlier(cluster: Cluster) -> Any:
    breaker = cluster.circuit_breaker
    return breaker.outlier_detection if breaker is not None else None


@final
class ProxyRuntime:
    """The data plane of one proxy; see the module docstring.

    ``listen_outbounds`` False (the embedded proxy) keeps clusters but opens no outbound listeners;
    ``serve_inbounds`` False opens no inbound listeners (the embedded proxy serves them itself);
    ``report_health`` receives ``(inbound port, ready)`` from the app probes (None: no probes).
    """

    def __init__(
        self,
        proxy_type: str,
        dataplane_doc: Mapping[str, Any],
        *,
        stats: ProxyStats | None = None,
        listen_outbounds: bool = True,
        serve_inbounds: bool = True,
        report_health: HealthReporter | None = None,
    ) -> None:
        self.proxy_type = proxy_type
        self.stats = stats if stats is not None else ProxyStats()
        self.tls = MeshTls()
        self.config: ProxyConfig | None = None
        self.upstreams: dict[str, Upstream] = {}
        self._doc = dict(dataplane_doc)
        self._listen_outbounds = listen_outbounds
        self._serve_inbounds = serve_inbounds
        self._report_health = report_health
        self._outbounds: dict[tuple[str, int], OutboundListener] = {}
        self._inbounds: dict[tuple[str, int], InboundListener] = {}
        self._probes: dict[tuple[str, int, int], AppProbe] = {}
        self._checkers: dict[str, HealthChecker] = {}  # by cluster name: MeshHealthCheck
        self._stopped_checkers: set[HealthChecker] = set()  # stopped, their tasks not yet awaited
        self._gateway: SniGateway | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.last_error: str | None = None

    # -- inputs -----------------------------------------------------------------------------------------

    async def apply(self, config: ProxyConfig) -> None:
        """Take ``config``. Raises OSError or ValueError when it cannot be applied; the previous one stays."""
        if config.proxy_type != self.proxy_type:
            raise ValueError(f"a {config.proxy_type} config cannot run on a {self.proxy_type} proxy")
        async with self._lock:
            try:
                await self._reconcile(config)
            except Exception:
                self.stats.configs_refused += 1
                raise
            self.config = config
            self.stats.configs_applied += 1
            log.info("config applied", extra={"version": config.version, "proxy_type": self.proxy_type})

    async def on_certificate(self, cert: Certificate) -> None:
        """Take a new certificate; listeners waiting for one start."""
        self.tls.update(cert)
        self.stats.certificates += 1
        log.info(
            "certificate received",
            extra={"mesh": cert.mesh, "not_after": cert.not_after, "renew_at": cert.renew_at},
        )
        async with self._lock:
            if self.config is not None:
                try:
                    await self._reconcile(self.config)
                except Exception as exc:  # kept for /ready; the next config or certificate tries again
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("cannot start listeners", extra={"reason": self.last_error})

    # -- what the admin shows ---------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """``(True, "ready")`` once the config runs whole; else ``(False, what is missing)``."""
        config = self.config
        if config is None:
            return False, "no config from the control plane yet"
        if self.proxy_type == "sidecar" and config.mtls_enabled and not self.tls.has(config.mesh):
            return False, f"no certificate of mesh {config.mesh} yet"
        if self._serve_inbounds and self.proxy_type == "sidecar":
            missing = [i.port for i in config.inbounds if (i.address, i.port) not in self._inbounds]
            if missing:
                return False, f"inbound listeners not started: {missing} ({self.last_error or 'pending'})"
        if self.proxy_type in _GATEWAY_TYPES and self._gateway is None:
            return False, f"the {self.proxy_type} listener is not started"
        return True, "ready"

    def config_dump(self) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        return {
            "config": msgspec.to_builtins(self.config) if self.config is not None else None,
            "certificates": self.tls.summary(),
            "upstreams": {name: up.balancer.describe(now) for name, up in sorted(self.upstreams.items())},
            "listeners": sorted(
                [listener.name for listener in self._outbounds.values()]
                + [listener.name for listener in self._inbounds.values()]
                + ([self._gateway.name] if self._gateway is not None else [])
            ),
            "dumped_at": time.time(),
        }

    @property
    def gateway(self) -> SniGateway | None:
        return self._gateway

    def upstream_for(self, service: str, tags: Mapping[str, str] | None = None) -> Upstream | None:
        """The upstream of the outbound to ``service`` (and ``tags``), for the embedded proxy."""
        config = self.config
        if config is None:
            return None
        wanted = {**(tags or {}), "kuma.io/service": service}
        for outbound in config.outbounds:
            if outbound.service == service and outbound.tags == wanted:
                return self.upstreams.get(outbound.cluster)
        return None

    # -- reconciling ------------------------------------------------------------------------------------

    async def _reconcile(self, config: ProxyConfig) -> None:
        if self._closed:
            raise RuntimeError("the proxy is shutting down")
        if self.proxy_type in _GATEWAY_TYPES:
            await self._reconcile_gateway(config)
            return
        self._reconcile_upstreams(config)
        started: list[OutboundListener | InboundListener] = []
        try:
            outbounds = await self._reconcile_outbounds(config, started)
            inbounds = await self._reconcile_inbounds(config, started)
        except BaseException:
            for listener in started:
                listener.close()
            raise
        for key in set(self._outbounds) - set(outbounds):
            self._outbounds[key].close()
        for key in set(self._inbounds) - set(inbounds):
            self._inbounds[key].close()
        self._outbounds, self._inbounds = outbounds, inbounds
        self._reconcile_probes(config)
        self.last_error = None

    def _reconcile_upstreams(self, config: ProxyConfig) -> None:
        fresh: dict[str, Upstream] = {}
        for cluster in config.clusters:
            mode: Mode = "mesh" if cluster.mtls else "plain"
            sni = None if cluster.external else sni_for(config.mesh, cluster.service, cluster.tags)
            upstream = self.upstreams.get(cluster.name) or Upstream(
                cluster.name,
                cluster.endpoints,
                cluster.lb,
                self.stats.cluster(cluster.name),
                mode=mode,
                mesh=config.mesh,
                tls=self.tls,
            )
            # A new upstream takes its settings the same way a kept one does.
            upstream.update(
                cluster.endpoints,
                cluster.lb,
                mode=mode,
                sni=sni,
                upstream_tls=cluster.upstream_tls,
                connect_timeout_s=cluster.timeout.connect_timeout_s,
                outlier=_outlier(cluster),
                idle_timeout_s=cluster.timeout.idle_timeout_s,
                max_connections=_max_connections(cluster),
            )
            fresh[cluster.name] = upstream
        self.upstreams = fresh
        self._reconcile_health_checks(config)

    def _reconcile_health_checks(self, config: ProxyConfig) -> None:
        """One active health checker per upstream whose cluster has ``health_check``; a checker whose
        cluster lost it (or went away) is stopped, which marks its endpoints healthy again."""
        wanted = {c.name: c for c in config.clusters if c.health_check is not None}
        for name, old in self._checkers.items():
            if name not in wanted or old.upstream is not self.upstreams[name]:
                old.stop()
                self._stopped_checkers.add(old)
        self._checkers = {n: c for n, c in self._checkers.items() if c not in self._stopped_checkers}
        for name, cluster in wanted.items():
            assert cluster.health_check is not None
            checker = self._checkers.get(name)
            if checker is None:
                checker = HealthChecker(
                    self.upstreams[name], cluster.health_check, cluster.endpoints, host=cluster.service
                )
                checker.start()
                self._checkers[name] = checker
            else:
                checker.update(cluster.health_check, cluster.endpoints, host=cluster.service)
        self._stopped_checkers = {c for c in self._stopped_checkers if any(not t.done() for t in c.tasks)}

    async def _reconcile_outbounds(
        self, config: ProxyConfig, started: list[OutboundListener | InboundListener]
    ) -> dict[tuple[str, int], OutboundListener]:
        result: dict[tuple[str, int], OutboundListener] = {}
        if not self._listen_outbounds:
            return result
        for outbound in config.outbounds:
            upstream = self.upstreams[outbound.cluster]
            key = (outbound.address, outbound.port)
            listener = self._outbounds.get(key)
            if listener is None:
                listener = OutboundListener(
                    outbound, upstream, self.stats.listener(f"outbound:{outbound.address}:{outbound.port}")
                )
                await listener.start()
                started.append(listener)
            else:
                listener.config, listener.upstream = outbound, upstream
            result[key] = listener
        return result

    async def _reconcile_inbounds(
        self, config: ProxyConfig, started: list[OutboundListener | InboundListener]
    ) -> dict[tuple[str, int], InboundListener]:
        result: dict[tuple[str, int], InboundListener] = {}
        if not self._serve_inbounds:
            return result
        if config.mtls_enabled and not self.tls.has(config.mesh):
            return dict(self._inbounds)  # started when the certificate arrives
        for inbound in config.inbounds:
            key = (inbound.address, inbound.port)
            listener = self._inbounds.get(key)
            mtls = config.mtls_enabled
            if listener is not None and listener.mtls != mtls:
                listener.close()  # mTLS switched on or off: the port is rebound with the other mode
                listener = None
            if listener is None:
                listener = InboundListener(
                    inbound,
                    self.stats.listener(f"inbound:{inbound.port}"),
                    tls=self.tls if mtls else None,
                    mesh=config.mesh,
                )
                await listener.start()
                started.append(listener)
            else:
                listener.config = inbound
            result[key] = listener
        return result

    def _reconcile_probes(self, config: ProxyConfig) -> None:
        report = self._report_health
        if report is None:
            return
        wanted = {(i.service_address, i.service_port, i.port) for i in config.inbounds}
        for key in set(self._probes) - wanted:
            asyncio.get_running_loop().create_task(self._probes.pop(key).close())
        for host, port, inbound_port in sorted(wanted - set(self._probes)):

            def reporter(ready: bool, inbound_port: int = inbound_port) -> None:
                log.info("application health changed", extra={"inbound_port": inbound_port, "ready": ready})
                report(inbound_port, ready)

            probe = AppProbe(host, port, reporter)
            probe.start()
            self._probes[(host, port, inbound_port)] = probe

    async def _reconcile_gateway(self, config: ProxyConfig) -> None:
        if self._gateway is None:
            networking = self._doc.get("networking") or {}
            host = str(networking.get("address") or "0.0.0.0")
            port = int(networking.get("port") or (10001 if self.proxy_type == "ingress" else 10002))
            kind: Any = self.proxy_type
            gateway = SniGateway(kind, host, port, self.stats, tls=self.tls if kind == "egress" else None)
            gateway.update(config)
            await gateway.start()
            self._gateway = gateway
        else:
            self._gateway.update(config)

    # -- shutdown ---------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop accepting everywhere, stop probes and health checks, and cancel connections still being set
        up."""
        self._closed = True
        checkers = [*self._checkers.values(), *self._stopped_checkers]
        self._checkers.clear()
        self._stopped_checkers.clear()
        for checker in checkers:
            await checker.close()
        for probe in list(self._probes.values()):
            await probe.close()
        self._probes.clear()
        listeners = [*self._outbounds.values(), *self._inbounds.values()]
        for listener in listeners:
            listener.close()
        if self._gateway is not None:
            self._gateway.close()
        for listener in listeners:
            await listener.abort_all()
        if self._gateway is not None:
            await self._gateway.abort_all()
