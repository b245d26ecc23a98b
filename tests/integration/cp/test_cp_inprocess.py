"""ControlPlane run in-process, as tests of other components and embedding programs use it."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import msgspec
import pytest

from kmesh.cp import ControlPlane, CpConfig, StartupError, load_config
from kmesh.errors import ConfigError, NotFound
from kmesh.model import ResourceKey
from kmesh.store import open_store


def _config(tmp_path: Path, **flags: str) -> CpConfig:
    return load_config(
        env={"KMESH_DATA_DIR": str(tmp_path)}, flags={"api_server.port": "0", **flags}, hostname="t", pid=1
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


async def test_multizone_modes_refused_in_process(tmp_path: Path) -> None:
    config = msgspec.structs.replace(_config(tmp_path), mode="global")
    with pytest.raises(ConfigError, match=r"mode global: multi-zone modes .* \(issue 3\)"):
        await ControlPlane(config).start()
