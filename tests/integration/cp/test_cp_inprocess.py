"""ControlPlane run in-process, as tests of other components and embedding programs use it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from kmesh.cp import ControlPlane, CpConfig, StartupError, load_config
from kmesh.errors import NotFound
from kmesh.model import ResourceKey
from kmesh.store import open_store

T = TypeVar("T")


def _config(tmp_path: Path, **flags: str) -> CpConfig:
    return load_config(
        env={"KMESH_DATA_DIR": str(tmp_path)},
        flags={"api_server.port": "0", "dp_server.port": "0", **flags},
        hostname="t",
        pid=1,
    )


async def test_start_serve_stop(tmp_path: Path) -> None:
    cp = ControlPlane(_config(tmp_path))
    async with cp:
        assert cp.api_port != 0
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{cp.api_url}/") as resp:
                assert resp.status == 200
            async with http.get(f"{cp.api_url}/meshes/default") as resp:
                assert resp.status == 200
        mesh = await cp.store.get(ResourceKey("Mesh", "default"))
        assert mesh.meta.version == 1
    with pytest.raises(RuntimeError, match="not started"):
        _ = cp.api_port
    with pytest.raises(RuntimeError, match="not started"):
        _ = cp.store
    await cp.stop()  # a second stop is harmless
    assert (tmp_path / "kmesh.db").exists()


async def test_given_store_is_used_and_left_open(tmp_path: Path) -> None:
    store = open_store("memory")
    config = _config(tmp_path, **{"defaults.skip_mesh_creation": "true"})
    async with ControlPlane(config, store=store) as cp:
        assert cp.store is store
    with pytest.raises(NotFound):
        await store.get(ResourceKey("Mesh", "default"))
    await store.close()
    assert not (tmp_path / "kmesh.db").exists()


async def test_port_in_use_raises_startup_error_and_releases_the_store(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cp = ControlPlane(_config(tmp_path, **{"api_server.port": str(port)}))
        with pytest.raises(StartupError, match=rf"api_server: cannot listen on 127\.0\.0\.1:{port}"):
            await cp.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = cp.store
    # The store was closed, so another control plane can open the same file at once.
    async with ControlPlane(_config(tmp_path)) as again:
        assert (await again.store.get(ResourceKey("Mesh", "default"))).meta.version == 1


async def test_global_and_zone_in_process(tmp_path: Path) -> None:
    """A zone control plane joins a global with a token from the global's API and receives its meshes."""
    glob = ControlPlane(_config(tmp_path / "g", mode="global", **{"kds.port": "0"}))
    async with glob:
        ca_file = tmp_path / "g" / "kds-ca.pem"
        assert ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{glob.api_url}/tokens/zone", json={"zone": "east"}) as resp,
        ):
            assert resp.status == 200
            token = await resp.text()
        token_file = tmp_path / "east.token"
        token_file.write_text(token + "\n")
        zone_flags = {
            "mode": "zone",
            "zone": "east",
            "kds.global_address": f"kds://127.0.0.1:{glob.kds_port}",
            "kds.ca_file": str(ca_file),
            "kds.token_file": str(token_file),
        }
        async with ControlPlane(_config(tmp_path / "z", **zone_flags)) as zone:
            mesh = await _eventually(lambda: zone.store.get(ResourceKey("Mesh", "default")))
            assert mesh.meta.labels["kuma.io/origin"] == "global"
            zone_resource = await _eventually(lambda: glob.store.get(ResourceKey("Zone", "east")))
            assert zone_resource.meta.name == "east"
            client = zone.kds_client
            assert client is not None
            assert client.connected


async def test_zone_without_token_is_refused(tmp_path: Path) -> None:
    glob = ControlPlane(_config(tmp_path / "g", mode="global", **{"kds.port": "0"}))
    async with glob:
        zone_flags = {
            "mode": "zone",
            "zone": "west",
            "kds.global_address": f"kds://127.0.0.1:{glob.kds_port}",
            "kds.ca_file": str(tmp_path / "g" / "kds-ca.pem"),
        }
        async with ControlPlane(_config(tmp_path / "z", **zone_flags)) as zone:
            client = zone.kds_client
            assert client is not None
            error = await _eventually(lambda: _last_error(zone))
            assert "zone token is required" in error
            assert not client.connected
        with pytest.raises(NotFound):
            await glob.store.get(ResourceKey("Zone", "west"))


async def _last_error(cp: ControlPlane) -> str:
    client = cp.kds_client
    assert client is not None
    if client.last_error is None:
        raise LookupError("no error yet")
    return client.last_error


async def _eventually(probe: Callable[[], Awaitable[T]], attempts: int = 200) -> T:
    """``probe()``'s first result that does not raise, polling a bounded number of times."""
    for _ in range(attempts - 1):
        try:
            return await probe()
        except (NotFound, LookupError):
            await asyncio.sleep(0.05)
    return await probe()
