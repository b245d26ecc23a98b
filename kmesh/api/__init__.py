"""kmesh's REST API (Kuma-compatible paths) on aiohttp: resources of every type, insights, config."""

from __future__ import annotations

from kmesh.api._middleware import RequestStats
from kmesh.api._proxy_config import PROXY_CONFIG_PATH, ProxyConfigEndpoint
from kmesh.api._proxy_tokens import (
    DATAPLANE_TOKEN_PATH,
    ZONE_PROXY_TOKEN_PATH,
    DataplaneTokenIssuer,
    DataplaneTokenRequest,
    ZoneProxyTokenIssuer,
    ZoneProxyTokenRequest,
)
from kmesh.api._resources import DELETE_REFUSED, DeleteGuard
from kmesh.api._responses import ApiError, json_response, map_exception
from kmesh.api._routes import Action, ResourceRoute, resource_routes
from kmesh.api._server import STATS_KEY, ApiServer, build_app
from kmesh.api._tokens import DEFAULT_VALID_FOR, ZONE_TOKEN_PATH, ZONE_TOKEN_SCOPES, ZoneTokenIssuer

__all__ = [
    "DATAPLANE_TOKEN_PATH",
    "DEFAULT_VALID_FOR",
    "DELETE_REFUSED",
    "PROXY_CONFIG_PATH",
    "STATS_KEY",
    "ZONE_PROXY_TOKEN_PATH",
    "ZONE_TOKEN_PATH",
    "ZONE_TOKEN_SCOPES",
    "Action",
    "ApiError",
    "ApiServer",
    "DataplaneTokenIssuer",
    "DataplaneTokenRequest",
    "DeleteGuard",
    "ProxyConfigEndpoint",
    "RequestStats",
    "ResourceRoute",
    "ZoneProxyTokenIssuer",
    "ZoneProxyTokenRequest",
    "ZoneTokenIssuer",
    "build_app",
    "json_response",
    "map_exception",
    "resource_routes",
]
