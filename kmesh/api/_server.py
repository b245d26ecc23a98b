"""The API application and its server: routes from the descriptor table, middleware, start and stop.

Rules:
- :func:`build_app` is pure wiring, usable in-process (tests, an embedded CP); :class:`ApiServer` binds it
  to a socket. ``port=0`` binds a free port, read back from :attr:`ApiServer.port`.
- ``stop()`` is graceful: the listening socket closes first, in-flight requests get
  ``shutdown_timeout_s`` to finish, then idle keep-alive connections are closed.
- aiohttp's own access log is off; the access middleware logs one structured line per request instead.
- The control plane's own behaviour comes in through keyword hooks, so this package knows nothing of KDS
  or keys: ``delete_guard`` (may refuse a DELETE, see ``_resources``), ``zone_token_issuer`` (signs
  ``POST /tokens/zone``, see ``_tokens``; a global passes one, a zone CP must not),
  ``dataplane_token_issuer`` (``POST /tokens/dataplane``: a global or standalone CP, never a zone) and
  ``zone_proxy_token_issuer`` (``POST /tokens/zone-proxy``: a zone or standalone CP, never the global);
  see ``_proxy_tokens``.
- ``GET /meshes/{mesh}/dataplanes/{name}/_config`` (``_proxy_config``) computes a dataplane's proxy config
  from the store on a zone or standalone CP; the global refuses it, naming the dataplane's zone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, final

from aiohttp import web

from kmesh.api._insight import FixedEndpoints
from kmesh.api._middleware import RequestStats, access_middleware, error_middleware
from kmesh.api._proxy_config import PROXY_CONFIG_PATH, ProxyConfigEndpoint
from kmesh.api._proxy_tokens import (
    DATAPLANE_TOKEN_PATH,
    ZONE_PROXY_TOKEN_PATH,
    DataplaneTokenEndpoint,
    DataplaneTokenIssuer,
    ZoneProxyTokenEndpoint,
    ZoneProxyTokenIssuer,
)
from kmesh.api._resources import DeleteGuard, ResourceEndpoints
from kmesh.api._routes import Action, resource_routes
from kmesh.api._tokens import ZONE_TOKEN_PATH, ZoneTokenEndpoint, ZoneTokenIssuer
from kmesh.api._writes import Mode, parse_mode
from kmesh.errors import ConfigError
from kmesh.model import ResourceDescriptor
from kmesh.store import ResourceStore

__all__ = ["STATS_KEY", "ApiServer", "build_app"]

STATS_KEY: Final = web.AppKey("kmesh.api.stats", RequestStats)

# Large enough for a Secret or a big MeshHTTPRoute, small enough that one request cannot exhaust memory.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024

Endpoint = Callable[[web.Request, ResourceDescriptor], Awaitable[web.Response]]


def _bind(endpoint: Endpoint, desc: ResourceDescriptor) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await endpoint(request, desc)

    return handler


def build_app(
    store: ResourceStore,
    *,
    mode: str = "standalone",
    instance_id: str,
    zone: str | None = None,
    config_dump: Mapping[str, Any] | None = None,
    stats: RequestStats | None = None,
    delete_guard: DeleteGuard | None = None,
    zone_token_issuer: ZoneTokenIssuer | None = None,
    dataplane_token_issuer: DataplaneTokenIssuer | None = None,
    zone_proxy_token_issuer: ZoneProxyTokenIssuer | None = None,
) -> web.Application:
    """The API as an aiohttp application.

    ``stats`` collects request counters (a fresh one when None); it is also at ``app[STATS_KEY]``.
    ``delete_guard`` is asked before every DELETE; ``zone_token_issuer`` serves ``POST /tokens/zone``
    (without one that route answers 404), and the two proxy token issuers theirs. Raises ConfigError for an
    unknown mode, a zone CP without a zone, a zone CP given a zone or dataplane token issuer, or a global
    given a zone-proxy token issuer.
    """
    parsed = parse_mode(mode)
    if parsed is Mode.ZONE and not zone:
        raise ConfigError("a zone control plane's API needs its zone name")
    if parsed is Mode.ZONE and zone_token_issuer is not None:
        raise ConfigError("a zone control plane does not issue zone tokens; only the global signs them")
    if parsed is Mode.ZONE and dataplane_token_issuer is not None:
        raise ConfigError("a zone control plane does not issue dataplane tokens; the global signs them")
    if parsed is Mode.GLOBAL and zone_proxy_token_issuer is not None:
        raise ConfigError(
            "the global does not issue zone-proxy tokens; each zone control plane signs its own"
        )
    stats = stats if stats is not None else RequestStats()
    app = web.Application(
        middlewares=[access_middleware(stats), error_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[STATS_KEY] = stats
    fixed = FixedEndpoints(store, mode=parsed, instance_id=instance_id, zone=zone, config_dump=config_dump)
    app.router.add_get("/", fixed.index)
    app.router.add_get("/global-insight", fixed.global_insight)
    app.router.add_get("/config", fixed.config)
    app.router.add_post(ZONE_TOKEN_PATH, ZoneTokenEndpoint(zone_token_issuer).generate)
    app.router.add_post(DATAPLANE_TOKEN_PATH, DataplaneTokenEndpoint(dataplane_token_issuer).generate)
    app.router.add_post(ZONE_PROXY_TOKEN_PATH, ZoneProxyTokenEndpoint(zone_proxy_token_issuer).generate)
    app.router.add_get(PROXY_CONFIG_PATH, ProxyConfigEndpoint(store, parsed, zone).get)
    endpoints = ResourceEndpoints(store, parsed, delete_guard=delete_guard)
    actions: dict[Action, Endpoint] = {
        Action.LIST: endpoints.list,
        Action.LIST_ALL_MESHES: endpoints.list,
        Action.GET: endpoints.get,
        Action.PUT: endpoints.put,
        Action.DELETE: endpoints.delete,
    }
    for route in resource_routes():
        app.router.add_route(route.method, route.path, _bind(actions[route.action], route.descriptor))
    return app


@final
class ApiServer:
    """The REST API on ``host:port``."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        host: str = "127.0.0.1",
        port: int = 5681,
        mode: str = "standalone",
        instance_id: str,
        zone: str | None = None,
        config_dump: Mapping[str, Any] | None = None,
        shutdown_timeout_s: float = 10.0,
        delete_guard: DeleteGuard | None = None,
        zone_token_issuer: ZoneTokenIssuer | None = None,
        dataplane_token_issuer: DataplaneTokenIssuer | None = None,
        zone_proxy_token_issuer: ZoneProxyTokenIssuer | None = None,
    ) -> None:
        self._stats = RequestStats()
        self._app = build_app(
            store,
            mode=mode,
            instance_id=instance_id,
            zone=zone,
            config_dump=config_dump,
            stats=self._stats,
            delete_guard=delete_guard,
            zone_token_issuer=zone_token_issuer,
            dataplane_token_issuer=dataplane_token_issuer,
            zone_proxy_token_issuer=zone_proxy_token_issuer,
        )
        self._host = host
        self._requested_port = port
        self._shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> None:
        """Listen and serve. Raises OSError when the address cannot be bound, RuntimeError if started."""
        if self._runner is not None:
            raise RuntimeError("ApiServer already started")
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=self._shutdown_timeout_s)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, close connections. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the OS when constructed with port 0). Raises if not started."""
        if self._port is None:
            raise RuntimeError("ApiServer not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def app(self) -> web.Application:
        return self._app

    def stats(self) -> dict[str, int]:
        """Requests served so far by status class: ``{"total", "1xx", "2xx", "3xx", "4xx", "5xx"}``."""
        return self._stats.snapshot()
