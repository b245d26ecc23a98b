"""Fixtures of the API integration tests: a real ApiServer on 127.0.0.1:0 over each store kind, and a
small aiohttp client that returns (status, decoded JSON body)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kmesh.api import ApiServer
from kmesh.store import ResourceStore, open_store


class Api:
    """A client of one running ApiServer."""

    def __init__(self, session: aiohttp.ClientSession, server: ApiServer) -> None:
        self.session = session
        self.server = server
        self.url = server.url

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request to ``path`` (or an absolute URL); the status and the JSON body."""
        url = path if path.startswith("http") else self.url + path
        if json is not None:
            data = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.session.request(method, url, data=data, headers=headers) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, orjson.loads(await response.read())

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def put(self, path: str, doc: dict[str, Any]) -> tuple[int, Any]:
        return await self.call("PUT", path, json=doc)

    async def delete(self, path: str) -> tuple[int, Any]:
        return await self.call("DELETE", path)

    async def ok(self, method: str, path: str, doc: dict[str, Any] | None = None) -> Any:
        """The body of a request that must succeed."""
        status, body = await self.call(method, path, json=doc)
        assert 200 <= status < 300, (status, body)
        return body


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    kind = request.param
    opened = open_store(kind, path=tmp_path / "kmesh.db" if kind == "sqlite" else None)
    try:
        yield opened
    finally:
        await opened.close()


StartApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_api(store: ResourceStore) -> AsyncIterator[StartApi]:
    """Starts ApiServers over ``store`` (any mode, any of ApiServer's hooks); stops them all at the end."""
    servers: list[ApiServer] = []
    session = aiohttp.ClientSession()

    async def start(
        mode: str = "standalone",
        zone: str | None = None,
        config_dump: dict[str, Any] | None = None,
        **hooks: Any,
    ) -> Api:
        server = ApiServer(
            store,
            port=0,
            mode=mode,
            instance_id=f"test-{mode}",
            zone=zone,
            config_dump=config_dump,
            **hooks,
        )
        await server.start()
        servers.append(server)
        return Api(session, server)

    try:
        yield start
    finally:
        await session.close()
        for server in servers:
            await server.stop()


@pytest.fixture
async def api(start_api: StartApi) -> Api:
    """A standalone control plane's API with the mesh ``default`` created."""
    client = await start_api()
    await client.ok("PUT", "/meshes/default", {"type": "Mesh", "name": "default"})
    return client
