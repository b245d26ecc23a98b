"""A global KDS server and zone clients in one process over real TLS on loopback, plus resource builders.

The global serves a self-signed certificate made by kmesh.pki; zones verify it as their CA. ``until()``
polls a condition with a generous deadline: the deadline only turns a hang into a failure, no test
asserts how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from kmesh.kds import KdsGlobalServer, KdsZoneClient
from kmesh.model import Meta, Resource, ResourceKey, new_resource, parse_resource
from kmesh.model.types.secret import SecretSpec
from kmesh.pki import generate_self_signed_server_cert
from kmesh.store import ResourceStore
from kmesh.wire import client_context, server_context

TIMEOUT_S = 60.0
GLOBAL_ID = "global-test-1"


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls() -> Tls:
    cert, key = generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])
    return Tls(server=server_context(cert, key), client=client_context(ca_pem=cert))


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, within_s: float = TIMEOUT_S) -> None:
    """Poll ``check`` (sync or async) until it is true; fail after ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def global_server(store: ResourceStore, tls: Tls, *, port: int = 0, **kwargs: Any) -> KdsGlobalServer:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "ssl_context": tls.server,
        "instance_id": GLOBAL_ID,
        "cp_version": "test",
        "insight_interval_s": 0.05,
    }
    settings.update(kwargs)
    return KdsGlobalServer(store, **settings)


def zone_client(store: ResourceStore, zone: str, tls: Tls, port: int, **kwargs: Any) -> KdsZoneClient:
    settings: dict[str, Any] = {
        "zone": zone,
        "host": "127.0.0.1",
        "port": port,
        "ssl_context": tls.client,
        "server_hostname": "localhost",
        "token": f"token-of-{zone}",
        "instance_id": f"{zone}-cp-1",
        "cp_version": "test",
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.2,
    }
    settings.update(kwargs)
    return KdsZoneClient(store, **settings)


@contextlib.asynccontextmanager
async def running(*parts: KdsGlobalServer | KdsZoneClient) -> AsyncIterator[None]:
    """Start each part in order; stop them in reverse order, whatever happens."""
    started: list[KdsGlobalServer | KdsZoneClient] = []
    try:
        for part in parts:
            await part.start()
            started.append(part)
        yield
    finally:
        for part in reversed(started):
            await part.stop()


async def keys(store: ResourceStore, type_: str, **filters: Any) -> set[ResourceKey]:
    page = await store.list(type_, **filters)
    return {r.key for r in page.items}


async def count(store: ResourceStore, type_: str, **filters: Any) -> int:
    return (await store.list(type_, limit=1, **filters)).total


async def get(store: ResourceStore, key: ResourceKey) -> Resource | None:
    page = await store.list(key.type, mesh=key.mesh, zone=key.zone, name_prefix=key.name)
    return next((r for r in page.items if r.key == key), None)


def mesh(name: str = "default") -> Resource:
    return new_resource("Mesh", name)


def policy(name: str, mesh: str = "default", action: str = "Allow") -> Resource:
    return parse_resource(
        {
            "type": "MeshTrafficPermission",
            "name": name,
            "mesh": mesh,
            "spec": {
                "targetRef": {"kind": "Mesh"},
                "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": action}}],
            },
        }
    )


def dataplane(
    name: str, mesh: str = "default", *, address: str = "10.0.0.1", service: str = "web"
) -> Resource:
    return parse_resource(
        {
            "type": "Dataplane",
            "name": name,
            "mesh": mesh,
            "networking": {
                "address": address,
                "inbound": [{"port": 8080, "tags": {"kuma.io/service": service}}],
            },
        }
    )


def dataplane_insight(name: str, mesh: str = "default") -> Resource:
    resource = new_resource("DataplaneInsight", name, mesh=mesh)
    owner = ResourceKey("Dataplane", name, mesh)
    return Resource(meta=_with(resource, owner=owner), spec=resource.spec)


def ingress(name: str, *, address: str) -> Resource:
    return parse_resource(
        {"type": "ZoneIngress", "name": name, "networking": {"address": address, "port": 10001}}
    )


def secret(name: str, data: bytes, mesh: str = "default") -> Resource:
    return new_resource("Secret", name, SecretSpec.from_bytes(data), mesh=mesh)


def _with(resource: Resource, **changes: Any) -> Meta:
    return msgspec.structs.replace(resource.meta, **changes)


def logged(records: list[logging.LogRecord], message: str) -> list[dict[str, Any]]:
    """The fields (``extra``) of the log records with this message, oldest first."""
    return [vars(r) for r in records if r.getMessage() == message]


def labels_of(resource: Resource | None) -> Mapping[str, str]:
    assert resource is not None
    return resource.meta.labels


@contextlib.asynccontextmanager
async def cluster(
    global_store: ResourceStore, zones: Mapping[str, ResourceStore], tls: Tls, **server_kwargs: Any
) -> AsyncIterator[tuple[KdsGlobalServer, dict[str, KdsZoneClient]]]:
    """A started global server and one started client per zone, all stopped on exit."""
    server = global_server(global_store, tls, **server_kwargs)
    await server.start()
    try:
        clients = {name: zone_client(store, name, tls, server.port) for name, store in zones.items()}
        async with running(*clients.values()):
            yield server, clients
    finally:
        await server.stop()
