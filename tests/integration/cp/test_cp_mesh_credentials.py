"""In-process control planes making each mesh's CA and dataplane token key, issuing dataplane and zone-proxy
tokens, and admitting proxies on their DP server: standalone, and a global with a zone.

Everything is real: the examples' Mesh applied through the API, tokens from the API, a ``DpClient`` over
TLS trusting the ``dp-ca.pem`` the control plane exported, KDS between the global and the zone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
from cryptography import x509

from kmesh.cp import ControlPlane, CpConfig, StartupError, load_config
from kmesh.dps import DP_CA_FILE, DpClient, verify_zone_proxy_token, zone_proxy_key_set
from kmesh.model import Resource, ResourceKey
from kmesh.pki import CaBundle, ca_from_secrets, identity_of
from kmesh.store import ResourceStore
from kmesh.tokens import dataplane_key_set, verify_dataplane_token
from kmesh.wire import client_context

T = TypeVar("T")

MESH_YAML = Path(__file__).parents[3] / "examples" / "resources" / "mesh.yaml"
TIMEOUT_S = 60.0


def _config(tmp_path: Path, **flags: str) -> CpConfig:
    base = {"api_server.port": "0", "dp_server.port": "0", "kds.port": "0"}
    return load_config(env={"KMESH_DATA_DIR": str(tmp_path)}, flags={**base, **flags}, hostname="t", pid=1)


async def _until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """``probe()``'s first result that is not None, polled until a generous deadline."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _secrets(store: ResourceStore, mesh: str = "default") -> list[Resource]:
    return (await store.list("Secret", mesh=mesh)).items


async def _ca(store: ResourceStore, mesh: str = "default", backend: str = "ca-1") -> CaBundle | None:
    return ca_from_secrets(await _secrets(store, mesh), mesh, backend)


async def _put_mesh(http: aiohttp.ClientSession, cp: ControlPlane) -> None:
    headers = {"Content-Type": "application/yaml"}
    async with http.put(f"{cp.api_url}/meshes/default", data=MESH_YAML.read_bytes(), headers=headers) as r:
        assert r.status in (200, 201), await r.text()


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, str]:
    async with http.post(url, json=body) as response:
        return response.status, await response.text()


def _web_doc() -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": "web-1",
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}],
        },
    }


def _dp_client(cp: ControlPlane, data_dir: Path, token: str) -> DpClient:
    return DpClient(
        f"dps://127.0.0.1:{cp.dp_port}",
        client_context(ca_file=str(data_dir / DP_CA_FILE)),
        dataplane_doc=_web_doc(),
        token=token,
        server_hostname="localhost",
        backoff_initial_s=0.02,
        backoff_max_s=0.2,
    )


def _issued_by(cert_pem: bytes, ca: CaBundle) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca.cert_pem)
        )
    except (ValueError, TypeError):
        return False
    return True


async def _joined(proxy: DpClient, ca: CaBundle) -> None:
    """The proxy is admitted, holds a certificate signed by ``ca`` naming it, and has a config."""
    cert = await _until(_poll(lambda: proxy.certificate), "a workload certificate")
    assert _issued_by(cert.cert_pem, ca)
    identity = identity_of(cert.cert_pem)
    assert identity.mesh == "default"
    assert identity.services == ("web",)
    config = await _until(_poll(lambda: proxy.current_config), "a proxy config")
    assert config is not None


def _poll(get: Callable[[], T | None]) -> Callable[[], Awaitable[T | None]]:
    async def probe() -> T | None:
        return get()

    return probe


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_standalone_makes_the_mesh_ca_and_admits_a_proxy_with_its_token(
    tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kmesh.cp")
    async with ControlPlane(_config(tmp_path)) as cp:
        # The default Mesh (no mTLS) already has its token signing key.
        keys = await _until(lambda: _keys_or_none(cp.store), "the default Mesh's dataplane token signing key")
        assert len(keys.kids) == 1
        assert await _ca(cp.store) is None
        await _put_mesh(http, cp)
        ca = await _until(lambda: _ca(cp.store), "the builtin CA of the default Mesh")
        cert = x509.load_pem_x509_certificate(ca.cert_pem)
        assert cert.public_key().key_size == 4096  # the example asks for RSAbits: 4096
        # One log line for the CA, naming mesh, backend and key type, never the key. The line follows the
        # store commit that made the CA visible, so it may come a few event-loop turns after it.

        async def logged() -> list[logging.LogRecord] | None:
            return [r for r in caplog.records if r.getMessage() == "created a mesh CA"] or None

        made = await _until(logged, "the 'created a mesh CA' log line")
        assert [(r.__dict__["mesh"], r.__dict__["backend"], r.__dict__["key_type"]) for r in made] == [
            ("default", "ca-1", "RSA 4096")
        ]
        assert b"PRIVATE KEY" not in caplog.text.encode()
        # The same key still signs: updating the mesh made no second one.
        assert (await _keys_or_none(cp.store)).kids == keys.kids

        body = {"mesh": "default", "name": "web-1", "tags": {"kuma.io/service": ["web"]}, "validFor": "1h"}
        status, token = await _post(http, f"{cp.api_url}/tokens/dataplane", body)
        assert status == 200, token
        claims = verify_dataplane_token(token, keys, mesh="default", now=time.time())
        assert (claims.name, claims.tags, claims.proxy_type) == (
            "web-1",
            {"kuma.io/service": "web"},
            "sidecar",
        )
        assert claims.expires_at - claims.issued_at == pytest.approx(3600, abs=1)

        proxy = _dp_client(cp, tmp_path, token)
        await proxy.start()
        try:
            await _joined(proxy, ca)
            dp_server = cp.dp_server
            assert dp_server is not None
            assert dp_server.zone == "default"
            assert dp_server.is_connected(ResourceKey("Dataplane", "web-1", "default"))
        finally:
            await proxy.close(deregister=False)


async def _keys_or_none(store: ResourceStore) -> Any:
    keys = dataplane_key_set(await _secrets(store), mesh="default")
    return keys if keys.kids else None


async def test_a_token_for_another_dataplane_is_refused(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with ControlPlane(_config(tmp_path)) as cp:
        status, token = await _post(
            http, f"{cp.api_url}/tokens/dataplane", {"mesh": "default", "name": "db-1"}
        )
        assert status == 200, token
        proxy = _dp_client(cp, tmp_path, token)
        await proxy.start()
        try:
            rejection = await _until(_poll(lambda: proxy.last_rejection), "the refusal")
            code, reason = rejection
            assert code == "token_mismatch"
            assert "db-1" in reason
            assert proxy.certificate is None
        finally:
            await proxy.close(deregister=False)


async def test_token_requests_the_control_plane_cannot_serve(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with ControlPlane(_config(tmp_path)) as cp:
        status, text = await _post(http, f"{cp.api_url}/tokens/dataplane", {"mesh": "payments"})
        assert status == 404
        assert "mesh 'payments' does not exist" in text
        status, text = await _post(
            http, f"{cp.api_url}/tokens/dataplane", {"name": "web-1", "validFor": "0s"}
        )
        assert status == 400
        assert sorted(p["field"] for p in _json(text)["invalid_parameters"]) == ["mesh", "validFor"]


def _json(text: str) -> dict[str, Any]:
    doc = orjson.loads(text)
    assert isinstance(doc, dict)
    return doc


async def test_standalone_zone_proxy_tokens_verify_with_its_own_key(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with ControlPlane(_config(tmp_path)) as cp:
        body = {"type": "egress", "name": "egress-1", "validFor": "2h"}
        status, token = await _post(http, f"{cp.api_url}/tokens/zone-proxy", body)
        assert status == 200, token
        keys = zone_proxy_key_set((await cp.store.list("GlobalSecret")).items)
        claims = verify_zone_proxy_token(token, keys, now=time.time())
        assert (claims.proxy_type, claims.name) == ("egress", "egress-1")
        assert claims.expires_at - claims.issued_at == pytest.approx(7200, abs=1)


async def test_restart_keeps_the_ca_and_the_signing_key(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with ControlPlane(_config(tmp_path)) as cp:
        await _put_mesh(http, cp)
        first_ca = await _until(lambda: _ca(cp.store), "the builtin CA")
        first_secrets = {s.meta.name: s.spec for s in await _secrets(cp.store)}
    async with ControlPlane(_config(tmp_path)) as again:
        assert await _ca(again.store) == first_ca
        assert {s.meta.name: s.spec for s in await _secrets(again.store)} == first_secrets
        # The mesh written again (unchanged) leaves the CA as it is, too.
        await _put_mesh(http, again)
        assert await _ca(again.store) == first_ca


async def test_deleting_both_ca_secrets_makes_a_new_ca(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with ControlPlane(_config(tmp_path)) as cp:
        await _put_mesh(http, cp)
        first = await _until(lambda: _ca(cp.store), "the builtin CA")
        for name in ("default.ca-builtin-cert-ca-1", "default.ca-builtin-key-ca-1"):
            async with http.delete(f"{cp.api_url}/meshes/default/secrets/{name}") as response:
                assert response.status == 200, await response.text()

        async def replaced() -> CaBundle | None:
            ca = await _ca(cp.store)
            return ca if ca is not None and ca != first else None

        second = await _until(replaced, "a new CA")
        assert second.cert_pem != first.cert_pem


async def test_dp_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = {"dp_server.host": "127.0.0.1", "dp_server.port": str(port)}
        cp = ControlPlane(_config(tmp_path, **flags))
        with pytest.raises(
            StartupError, match=rf"dp_server: cannot listen on 127\.0\.0\.1:{port}.*dp_server\.port"
        ):
            await cp.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = cp.store


async def test_global_and_zone_share_the_mesh_ca_and_dataplane_tokens(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The CA made on the global reaches the zone over KDS, and a token from the global lets a proxy join
    the zone's DP server, which signs its certificate with that CA."""
    async with ControlPlane(_config(tmp_path / "g", mode="global")) as glob:
        with pytest.raises(RuntimeError, match="no DP server"):
            _ = glob.dp_port
        status, text = await _post(http, f"{glob.api_url}/tokens/zone-proxy", {"type": "ingress"})
        assert status == 404
        assert "issued by the zone control plane" in text
        await _put_mesh(http, glob)
        global_ca = await _until(lambda: _ca(glob.store), "the CA on the global")

        status, zone_token = await _post(http, f"{glob.api_url}/tokens/zone", {"zone": "east"})
        assert status == 200, zone_token
        token_file = tmp_path / "east.token"
        token_file.write_text(zone_token)
        zone_flags = {
            "mode": "zone",
            "zone": "east",
            "kds.global_address": f"kds://127.0.0.1:{glob.kds_port}",
            "kds.ca_file": str(tmp_path / "g" / "kds-ca.pem"),
            "kds.token_file": str(token_file),
        }
        async with ControlPlane(_config(tmp_path / "z", **zone_flags)) as zone:
            zone_ca = await _until(lambda: _ca(zone.store), "the CA on the zone")
            assert zone_ca == global_ca
            status, text = await _post(http, f"{zone.api_url}/tokens/dataplane", {"mesh": "default"})
            assert status == 404
            assert "issued by the global control plane" in text

            body = {"mesh": "default", "tags": {"kuma.io/service": "web"}}
            status, token = await _post(http, f"{glob.api_url}/tokens/dataplane", body)
            assert status == 200, token
            proxy = _dp_client(zone, tmp_path / "z", token)
            await proxy.start()
            try:
                await _joined(proxy, global_ca)
                dp_server = zone.dp_server
                assert dp_server is not None
                assert dp_server.zone == "east"
            finally:
                await proxy.close(deregister=False)
