"""A DP server and in-process DP clients over real TLS on loopback, against a real store, plus the mesh
material they need (a builtin CA kept in the mesh's Secrets, a dataplane token signing key).

``until()`` polls a condition with a generous deadline: the deadline only turns a hang into a failure; no
test asserts how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmesh.dps import DpClient, DpServer, ensure_dp_server_tls
from kmesh.model import Resource, ResourceKey, parse_resource
from kmesh.pki import CaBundle, ca_secrets, generate_ca
from kmesh.store import MemoryStore, ResourceStore, SqliteStore
from kmesh.tokens import SigningKey, dataplane_signing_key_secret, generate_signing_key, issue_dataplane_token
from kmesh.wire import client_context, server_context

TIMEOUT_S = 60.0
ZONE = "zone-1"
CP_INSTANCE = "zone-cp-1"


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


def open_store(kind: str, tmp_path: Path) -> ResourceStore:
    return SqliteStore(tmp_path / "zone.db") if kind == "sqlite" else MemoryStore()


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


async def dp_tls(store: ResourceStore) -> Tls:
    """The DP server's certificate as a zone control plane makes it, and a client context trusting it."""
    cert, key = await ensure_dp_server_tls(store)
    return Tls(server=server_context(cert, key), client=client_context(ca_pem=cert))


@dataclass(frozen=True)
class MeshMaterial:
    name: str
    ca: CaBundle
    key: SigningKey

    def token(self, **claims: Any) -> str:
        return issue_dataplane_token(self.key, mesh=self.name, valid_for_s=3600, now=time.time(), **claims)


async def seed_mesh(
    store: ResourceStore, name: str = "default", *, rotation: str | None = None, mtls: bool = True
) -> MeshMaterial:
    """A Mesh with a builtin mTLS backend whose CA is in the mesh's Secrets, and a dataplane token key."""
    doc: dict[str, Any] = {"type": "Mesh", "name": name}
    if mtls:
        backend: dict[str, Any] = {"name": "ca-1", "type": "builtin"}
        if rotation is not None:
            backend["dpCert"] = {"rotation": {"expiration": rotation}}
        doc["mtls"] = {"enabledBackend": "ca-1", "backends": [backend]}
    await store.create(parse_resource(doc))
    bundle = generate_ca(name, "ca-1", now=datetime.now(UTC))
    for secret in ca_secrets(name, "ca-1", bundle):
        await store.create(secret)
    key = generate_signing_key()
    await store.create(dataplane_signing_key_secret(key, mesh=name, serial=1))
    return MeshMaterial(name=name, ca=bundle, key=key)


def dataplane_doc(
    name: str,
    service: str,
    *,
    mesh: str = "default",
    address: str = "127.0.0.1",
    port: int = 8080,
    tags: dict[str, str] | None = None,
    outbound: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    networking: dict[str, Any] = {
        "address": address,
        "inbound": [{"port": port, "tags": {"kuma.io/service": service, **(tags or {})}}],
    }
    if outbound:
        networking["outbound"] = [{"port": p, "tags": {"kuma.io/service": s}} for s, p in outbound]
    return {"type": "Dataplane", "mesh": mesh, "name": name, "networking": networking}


def server(store: ResourceStore, tls: Tls, *, port: int = 0, **kwargs: Any) -> DpServer:
    settings: dict[str, Any] = {
        "zone": ZONE,
        "host": "127.0.0.1",
        "port": port,
        "ssl_context": tls.server,
        "instance_id": CP_INSTANCE,
        "cp_version": "test",
        "heartbeat_interval_s": 1.0,
        "deregister_delay_s": 0.2,
        "insight_interval_s": 0.05,
    }
    settings.update(kwargs)
    return DpServer(store, **settings)


def client(port: int, tls: Tls, doc: dict[str, Any], token: str, **kwargs: Any) -> DpClient:
    settings: dict[str, Any] = {
        "dataplane_doc": doc,
        "token": token,
        "server_hostname": "localhost",
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.2,
    }
    settings.update(kwargs)
    return DpClient(f"dps://127.0.0.1:{port}", tls.client, **settings)


@contextlib.asynccontextmanager
async def running(*parts: DpServer | DpClient) -> AsyncIterator[None]:
    """Start each part in order; stop them in reverse order, whatever happens (clients leave without
    deregistering, so a test's own ``close()`` is what it asserts on)."""
    started: list[DpServer | DpClient] = []
    try:
        for part in parts:
            await part.start()
            started.append(part)
        yield
    finally:
        for part in reversed(started):
            if isinstance(part, DpClient):
                await part.close(deregister=False)
            else:
                await part.stop()


async def get(store: ResourceStore, key: ResourceKey) -> Resource | None:
    page = await store.list(key.type, mesh=key.mesh or None, name_prefix=key.name)
    return next((r for r in page.items if r.key == key), None)


def dp_key(name: str, mesh: str = "default") -> ResourceKey:
    return ResourceKey("Dataplane", name, mesh)


def insight_key(name: str, mesh: str = "default") -> ResourceKey:
    return ResourceKey("DataplaneInsight", name, mesh)
