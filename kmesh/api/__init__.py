"""kmesh's REST API (Kuma-compatible paths) on aiohttp: resources of every type, insights, config."""

from __future__ import annotations

from kmesh.api._middleware import RequestStats
from kmesh.api._responses import ApiError, json_response, map_exception
from kmesh.api._routes import Action, ResourceRoute, resource_routes
from kmesh.api._server import STATS_KEY, ApiServer, build_app

__all__ = [
    "STATS_KEY",
    "Action",
    "ApiError",
    "ApiServer",
    "RequestStats",
    "ResourceRoute",
    "build_app",
    "json_response",
    "map_exception",
    "resource_routes",
]
