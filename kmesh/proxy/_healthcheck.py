"""Active health checks (MeshHealthCheck): a proxy probes the endpoints of a cluster and tells its balancer
which are healthy, so traffic leaves a dead endpoint before any caller's connection has to fail on it.

:class:`HealthPlan` is the sans-IO part (time passed in, randomness injected): when each endpoint is due and
what its verdict is. :class:`HealthChecker` is the asyncio adapter, one per upstream: it runs the probes the
plan asks for and hands verdicts to ``upstream.balancer.set_health``.

Rules (Kuma MeshHealthCheck, Envoy's active health checking):
- Every endpoint starts healthy (Kuma's rule, as the app probe's: no information means healthy). It turns
  unhealthy after ``unhealthy_threshold`` consecutive failed probes and healthy again after
  ``healthy_threshold`` consecutive passed ones; a result of the other kind resets the streak.
- The first probe of an endpoint runs at once, or after a random delay of up to ``initial_jitter_s``. The
  next one is due ``interval_s`` after the previous one *ended* (Envoy starts the interval timer on the
  response), plus a random delay of up to ``interval_jitter_s`` and up to ``interval_jitter_percent`` of the
  interval. An endpoint is never probed twice at once. Each probe is bounded by ``timeout_s``.
- A probe reaches the endpoint exactly as a connection would (``Upstream.probe_context``): mTLS with the
  mesh certificate, the endpoint's SNI and its SPIFFE id checked, for mesh endpoints, zone ingresses and
  the egress included (a handshake through an ingress proves the whole path); TLS origination or plain TCP
  for external endpoints; plain TCP in a mesh without mTLS. What it does then:
  ``http`` set: ``GET path`` (HTTP/1.1, ``Host`` the cluster's service unless a header sets it), passed when
  the status is one of ``expected_statuses`` (200 when empty); else ``tcp`` set: send ``send`` if set, then
  expect each ``receive`` block in order in what comes back (Envoy's fuzzy match; at most 64 KiB read);
  else (gRPC only, which the proxy does not speak): the connect — with mTLS the handshake — alone.
- A probe that cannot run because the proxy has no certificate of the mesh yet (or that fails on an
  unexpected error, which is logged) is no verdict: the endpoint is simply probed again an interval later.
- A config change keeps the state of endpoints that stay (the balancer keeps their health by key too),
  starts new ones healthy and drops removed ones; new timing settings apply from the next schedule, and an
  endpoint waiting longer than the new interval is due at the new one. When the cluster loses its
  ``health_check`` the runtime stops the checker, which marks every endpoint healthy again.
- Not honoured: ``no_traffic_interval_s`` (endpoints are probed every ``interval_s`` with or without
  traffic), ``reuse_connection`` (each probe is a new connection), ``event_log_path``, the gRPC health
  protocol, and the panic settings (the balancer's panic rule applies). ``always_log_health_check_failures``
  logs every failed probe; otherwise only verdict changes are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, final

from kmesh.proxy._lb import EndpointKey, endpoint_key
from kmesh.proxy._tls import NoCertificate, peer_identity
from kmesh.proxy._upstream import Upstream
from kmesh.proxyconfig import Endpoint, HealthCheckConfig

__all__ = ["HealthChecker", "HealthPlan", "run_probe"]

log = logging.getLogger("kmesh.proxy")

MAX_RECEIVE_BYTES: Final = 64 * 1024
USER_AGENT: Final = "kmesh-health-check"


@dataclass(slots=True)
class _Track:
    """One endpoint: its verdict, its current streaks, and when it is next due (None: a probe runs)."""

    due: float | None
    healthy: bool = True
    passes: int = 0
    failures: int = 0


@final
class HealthPlan:
    """Sans-IO schedule and threshold state of one cluster's active health checks; see the module rules.

    ``update`` takes the config and endpoint keys; ``get_timer`` says when the next probe is due; ``due(now)``
    hands out the keys to probe now (they are then in flight); ``handle_result(key, ok, now)`` takes a
    probe's outcome (``None``: no verdict) and returns the endpoint's new verdict when it changed.
    """

    def __init__(self, config: HealthCheckConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng if rng is not None else random.Random()
        self._tracks: dict[EndpointKey, _Track] = {}

    @property
    def keys(self) -> list[EndpointKey]:
        return list(self._tracks)

    def healthy(self, key: EndpointKey) -> bool:
        """The verdict on ``key`` (True for an endpoint not known)."""
        track = self._tracks.get(key)
        return track is None or track.healthy

    def update(self, config: HealthCheckConfig, keys: Iterable[EndpointKey], now: float) -> list[EndpointKey]:
        """Take new settings and endpoints; returns the keys that are new (they start healthy)."""
        changed = config != self.config
        self.config = config
        tracks: dict[EndpointKey, _Track] = {}
        added: list[EndpointKey] = []
        for key in keys:
            if key in tracks:
                continue
            track = self._tracks.get(key)
            if track is None:
                track = _Track(due=now + self._initial_delay())
                added.append(key)
            elif changed and track.due is not None:
                track.due = min(track.due, now + self._interval())
            tracks[key] = track
        self._tracks = tracks
        return added

    def get_timer(self) -> float | None:
        """When the next probe is due (None: none is, every endpoint's probe is running or none exists)."""
        return min((t.due for t in self._tracks.values() if t.due is not None), default=None)

    def due(self, now: float) -> list[EndpointKey]:
        """The endpoints to probe now; each is in flight until its ``handle_result``."""
        keys = [key for key, t in self._tracks.items() if t.due is not None and t.due <= now]
        for key in keys:
            self._tracks[key].due = None
        return keys

    def handle_result(self, key: EndpointKey, ok: bool | None, now: float) -> bool | None:
        """A probe of ``key`` ended: passed (True), failed (False) or no verdict (None). Returns the new
        verdict when it changed, else None. A result for an endpoint removed or not in flight is ignored."""
        track = self._tracks.get(key)
        if track is None or track.due is not None:
            return None
        track.due = now + self._interval()
        if ok is None:
            return None
        if ok:
            track.passes, track.failures = track.passes + 1, 0
            if not track.healthy and track.passes >= max(1, self.config.healthy_threshold):
                track.healthy = True
                return True
        else:
            track.passes, track.failures = 0, track.failures + 1
            if track.healthy and track.failures >= max(1, self.config.unhealthy_threshold):
                track.healthy = False
                return False
        return None

    def _initial_delay(self) -> float:
        jitter = self.config.initial_jitter_s
        return self._rng.uniform(0.0, jitter) if jitter else 0.0

    def _interval(self) -> float:
        config = self.config
        delay = max(0.0, config.interval_s)
        if config.interval_jitter_s:
            delay += self._rng.uniform(0.0, config.interval_jitter_s)
        if config.interval_jitter_percent:
            delay += self._rng.uniform(0.0, config.interval_s * config.interval_jitter_percent / 100.0)
        return delay


# -- probes -------------------------------------------------------------------------------------------------


async def run_probe(
    upstream: Upstream, endpoint: Endpoint, config: HealthCheckConfig, *, host: str
) -> str | None:
    """Probe ``endpoint`` once as the module rules say; None when it passed, else why it failed. Raises
    NoCertificate when the mesh's certificate has not arrived yet (no verdict)."""
    ctx, server_name, expected = upstream.probe_context(endpoint)
    try:
        async with asyncio.timeout(config.timeout_s):
            reader, writer = await asyncio.open_connection(
                endpoint.address,
                endpoint.port,
                ssl=ctx,
                server_hostname=server_name if ctx is not None else None,
            )
            try:
                if expected is not None:
                    presented = peer_identity(writer.get_extra_info("ssl_object"))
                    if expected not in presented:
                        return f"the peer presented {', '.join(presented) or 'no SPIFFE id'}, not {expected}"
                if config.http is not None:
                    return await _http_check(reader, writer, config, host)
                if config.tcp is not None:
                    return await _tcp_check(reader, writer, config)
                return None
            finally:
                writer.transport.abort()  # a probe owes the peer no graceful close, and must not wait for one
    except TimeoutError:
        return f"no answer within {config.timeout_s:g}s"
    except ssl.SSLError as exc:
        return f"TLS failed: {exc.reason or exc}"
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__


async def _tcp_check(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: HealthCheckConfig
) -> str | None:
    tcp = config.tcp
    assert tcp is not None
    if tcp.send:
        writer.write(tcp.send)
        await writer.drain()
    blocks = list(tcp.receive)
    buffer = b""
    position = 0
    while blocks:
        found = buffer.find(blocks[0], position)
        if found >= 0:
            position = found + len(blocks.pop(0))
            continue
        if len(buffer) >= MAX_RECEIVE_BYTES:
            return f"the expected bytes were not in the first {MAX_RECEIVE_BYTES} received"
        chunk = await reader.read(MAX_RECEIVE_BYTES - len(buffer))
        if not chunk:
            return f"closed before sending the expected {blocks[0]!r}"
        buffer += chunk
    return None


async def _http_check(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: HealthCheckConfig, host: str
) -> str | None:
    http = config.http
    assert http is not None
    headers: dict[str, str] = {"Host": host, "User-Agent": USER_AGENT, "Connection": "close"}
    lowered = {name.lower(): name for name in headers}
    for name, value in http.request_headers_to_set.items():
        headers.pop(lowered.get(name.lower(), name), None)
        headers[name] = value
    lines = [f"GET {http.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"{k}: {v}" for k, v in http.request_headers_to_add.items()]
    if any("\r" in line or "\n" in line for line in lines):
        return "the configured path or headers contain a line break"
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    status_line = await reader.readline()
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"not an HTTP response: {status_line[:80]!r}" if status_line else "closed without a response"
    status = int(parts[1])
    if status in (http.expected_statuses or [200]):
        return None
    return f"status {status}"


# -- the asyncio adapter ------------------------------------------------------------------------------------


@final
class HealthChecker:
    """Runs the active health checks of one upstream; see the module rules.

    ``update`` takes a new config and endpoint set (sync, from the runtime's reconcile); ``stop`` cancels
    the probes and marks every endpoint healthy again; ``close`` stops and waits for the tasks to end.
    """

    def __init__(
        self,
        upstream: Upstream,
        config: HealthCheckConfig,
        endpoints: Sequence[Endpoint],
        *,
        host: str,
        rng: random.Random | None = None,
    ) -> None:
        self.upstream = upstream
        self.plan = HealthPlan(config, rng=rng)
        self._host = host
        self._endpoints: dict[EndpointKey, Endpoint] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.update(config, endpoints, host=host)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks running now (the scheduler and the probes in flight), for tests and shutdown."""
        return [*([self._task] if self._task is not None else []), *self._probes]

    def update(self, config: HealthCheckConfig, endpoints: Sequence[Endpoint], *, host: str) -> None:
        endpoints_by_key: dict[EndpointKey, Endpoint] = {}
        for endpoint in endpoints:
            endpoints_by_key.setdefault(endpoint_key(endpoint), endpoint)
        self._endpoints, self._host = endpoints_by_key, host
        now = asyncio.get_running_loop().time()
        for key in self.plan.update(config, endpoints_by_key, now):
            # The balancer may remember the key from before it was removed (connections were open).
            self.upstream.balancer.set_health(key, True)
        self._wake.set()

    def start(self) -> None:
        if self._task is None and not self._stopped:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"health-check-{self.upstream.name}"
            )

    def stop(self) -> None:
        """Cancel the scheduler and the probes in flight and mark every endpoint healthy again."""
        self._stopped = True
        for task in self.tasks:
            task.cancel()
        for key in self.plan.keys:
            self.upstream.balancer.set_health(key, True)

    async def close(self) -> None:
        self.stop()
        tasks = self.tasks
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        plan = self.plan
        while True:
            self._wake.clear()
            for key in plan.due(loop.time()):
                task = loop.create_task(
                    self._probe(key), name=f"health-check-{self.upstream.name}-{key[0]}:{key[1]}"
                )
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(plan.get_timer()):
                    await self._wake.wait()

    async def _probe(self, key: EndpointKey) -> None:
        loop = asyncio.get_running_loop()
        endpoint = self._endpoints.get(key)
        config = self.plan.config
        ok: bool | None = None
        problem: str | None = None
        if endpoint is not None:
            try:
                problem = await run_probe(self.upstream, endpoint, config, host=self._host)
            except NoCertificate:
                pass  # no verdict: our certificate, not the endpoint, is missing
            except Exception:  # a bug here must not stop this endpoint's checks, nor condemn it
                log.exception("health check could not run", extra={"cluster": self.upstream.name})
            else:
                ok = problem is None
        stats = self.upstream.stats
        if ok is True:
            stats.health_checks_passed += 1
        elif ok is False:
            stats.health_checks_failed += 1
            if config.always_log_health_check_failures:
                log.warning(
                    "health check failed",
                    extra={
                        "cluster": self.upstream.name,
                        "endpoint": f"{key[0]}:{key[1]}",
                        "reason": problem,
                    },
                )
        verdict = self.plan.handle_result(key, ok, loop.time())
        if verdict is not None:
            self.upstream.balancer.set_health(key, verdict)
            stats.health_check_changes += 1
            log.log(
                logging.INFO if verdict else logging.WARNING,
                "endpoint healthy" if verdict else "endpoint unhealthy",
                extra={"cluster": self.upstream.name, "endpoint": f"{key[0]}:{key[1]}", "reason": problem},
            )
        self._wake.set()
