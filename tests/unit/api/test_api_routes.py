"""The route table generated from the descriptor table."""

from __future__ import annotations

from kmesh.api import Action, resource_routes
from kmesh.model import all_descriptors


def test_every_type_gets_its_routes() -> None:
    routes = {(r.method, r.path): r for r in resource_routes()}
    for desc in all_descriptors():
        if desc.mesh_scoped:
            collection = f"/meshes/{{mesh}}/{desc.path}"
            assert routes[("GET", f"/{desc.path}")].action is Action.LIST_ALL_MESHES
        else:
            collection = f"/{desc.path}"
        assert routes[("GET", collection)].action is Action.LIST
        for method, action in (("GET", Action.GET), ("PUT", Action.PUT), ("DELETE", Action.DELETE)):
            route = routes[(method, f"{collection}/{{name}}")]
            assert route.action is action
            assert route.descriptor is desc


def test_mesh_routes_and_mesh_scoped_secret() -> None:
    paths = {(r.method, r.path) for r in resource_routes()}
    assert ("GET", "/meshes") in paths
    assert ("PUT", "/meshes/{name}") in paths
    assert ("GET", "/meshes/{mesh}/secrets") in paths
    assert ("GET", "/secrets") in paths
    assert ("PUT", "/secrets/{name}") not in paths


def test_no_route_is_claimed_twice() -> None:
    routes = resource_routes()
    assert len({(r.method, r.path) for r in routes}) == len(routes)
