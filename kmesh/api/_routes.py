"""The API's routes, generated from the descriptor table (never a hand-written list of types).

For each type, by scope (Kuma's REST layout, ``pkg/api-server/resource_endpoints.go``)::

    Mesh                 GET /meshes                        PUT|GET|DELETE /meshes/{name}
    mesh-scoped  T       GET /meshes/{mesh}/T               PUT|GET|DELETE /meshes/{mesh}/T/{name}
                         GET /T                             (every mesh at once, as Kuma's /dataplanes)
    other global T       GET /T                             PUT|GET|DELETE /T/{name}

plus the fixed routes ``/``, ``/global-insight``, ``/config``, ``POST /tokens/zone`` (``_tokens``) and
``GET /meshes/{mesh}/dataplanes/{name}/_config`` (``_proxy_config``; one segment deeper than any item).
PUT and DELETE are routed for read-only types too, so that refusing them says why (405 with a reason)
instead of a bare "method not allowed".
A type path that would shadow a fixed route is a programming error, raised when the table is built.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from kmesh.model import ResourceDescriptor, all_descriptors

__all__ = ["FIXED_PATHS", "Action", "ResourceRoute", "resource_routes"]

FIXED_PATHS: Final = ("/", "/global-insight", "/config")


class Action(enum.Enum):
    """What a resource route does."""

    LIST = "list"  # one mesh's resources of a type, or every resource of a global type
    LIST_ALL_MESHES = "list-all-meshes"  # a mesh-scoped type across every mesh
    GET = "get"
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ResourceRoute:
    method: str
    path: str
    action: Action
    descriptor: ResourceDescriptor

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.descriptor.name} {self.action.value})"


def resource_routes() -> list[ResourceRoute]:
    """Every resource route, in descriptor-table order. Raises ValueError when a path is claimed twice."""
    routes: list[ResourceRoute] = []
    for desc in all_descriptors():
        if desc.mesh_scoped:
            collection = f"/meshes/{{mesh}}/{desc.path}"
            routes.append(ResourceRoute("GET", f"/{desc.path}", Action.LIST_ALL_MESHES, desc))
        else:
            collection = f"/{desc.path}"
        item = f"{collection}/{{name}}"
        routes += [
            ResourceRoute("GET", collection, Action.LIST, desc),
            ResourceRoute("GET", item, Action.GET, desc),
            ResourceRoute("PUT", item, Action.PUT, desc),
            ResourceRoute("DELETE", item, Action.DELETE, desc),
        ]
    _check_unique(routes)
    return routes


def _check_unique(routes: list[ResourceRoute]) -> None:
    claimed: dict[tuple[str, str], str] = {("GET", path): "a fixed route" for path in FIXED_PATHS}
    for route in routes:
        # Placeholders match any segment, so /meshes/{name} and /meshes/{mesh} are the same route.
        shape = "/".join("{}" if s.startswith("{") else s for s in route.path.split("/"))
        owner = claimed.setdefault((route.method, shape), route.descriptor.name)
        if owner != route.descriptor.name:
            raise ValueError(f"route {route} is also claimed by {owner}")
