"""The proxy admin server on loopback: /ready, /stats, /metrics, /config_dump, 404s and bind failures."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from kmesh.proxy._admin import AdminServer
from kmesh.proxy._stats import ProxyStats


@dataclass
class Hooks:
    ready: tuple[bool, str] = (False, "waiting for the first config")
    config: dict[str, Any] = field(default_factory=lambda: {"version": "1", "listeners": []})


@dataclass
class Admin:
    server: AdminServer
    stats: ProxyStats
    hooks: Hooks
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    stats = ProxyStats()
    hooks = Hooks()
    server = AdminServer(stats, ready=lambda: hooks.ready, config_dump=lambda: hooks.config, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Admin(server, stats, hooks, http)
    finally:
        await server.close()


async def test_port_zero_binds_an_ephemeral_port(admin: Admin) -> None:
    assert admin.server.port > 0


async def test_ready_flips_from_503_to_200(admin: Admin) -> None:
    async with admin.http.get(admin.url("/ready")) as response:
        assert response.status == 503
        assert (await response.text()).strip() == "waiting for the first config"
    admin.hooks.ready = (True, "")
    async with admin.http.get(admin.url("/ready")) as response:
        assert response.status == 200
        assert (await response.text()).strip() == "ready"
    admin.hooks.ready = (False, "")
    async with admin.http.get(admin.url("/ready")) as response:
        assert response.status == 503
        assert (await response.text()).strip() == "not ready"


async def test_stats_is_the_snapshot_as_json(admin: Admin) -> None:
    admin.stats.configs_applied = 3
    admin.stats.listener("inbound:8080").cx_total = 5
    admin.stats.cluster("backend").picked("10.0.0.9:8080")
    async with admin.http.get(admin.url("/stats")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body == admin.stats.snapshot()
    assert body["listeners"]["inbound:8080"]["cx_total"] == 5
    assert body["clusters"]["backend"]["lb_picks"] == {"10.0.0.9:8080": 1}


async def test_config_dump_serves_the_hook(admin: Admin) -> None:
    async with admin.http.get(admin.url("/config_dump")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"version": "1", "listeners": []}
    admin.hooks.config = {"version": "2", "listeners": [{"name": "inbound:8080"}]}
    async with admin.http.get(admin.url("/config_dump")) as response:
        assert (await response.json())["version"] == "2"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_carry_the_counters(admin: Admin) -> None:
    stats = admin.stats
    stats.configs_applied = 4
    stats.configs_refused = 1
    stats.certificates = 2
    inbound = stats.listener("inbound:8080")
    inbound.cx_total = 7
    inbound.cx_active = 2
    inbound.bytes_received = 1024
    inbound.denied = 3
    backend = stats.cluster("backend")
    backend.cx_total = 6
    backend.connect_failures = 1
    backend.picked("10.0.0.9:8080")
    backend.picked("10.0.0.9:8080")
    backend.picked("10.0.0.10:8080")

    async with admin.http.get(admin.url("/metrics")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = await response.text()

    samples = _samples(text)
    listener = (("listener", "inbound:8080"),)
    cluster = (("cluster", "backend"),)
    assert samples[("kmesh_proxy_configs_applied_total", ())] == 4
    assert samples[("kmesh_proxy_configs_refused_total", ())] == 1
    assert samples[("kmesh_proxy_certificates_total", ())] == 2
    assert samples[("kmesh_listener_cx_total", listener)] == 7
    assert samples[("kmesh_listener_cx_active", listener)] == 2
    assert samples[("kmesh_listener_bytes_received_total", listener)] == 1024
    assert samples[("kmesh_listener_denied_total", listener)] == 3
    assert samples[("kmesh_listener_tls_errors_total", listener)] == 0
    assert samples[("kmesh_cluster_cx_total", cluster)] == 6
    assert samples[("kmesh_cluster_cx_active", cluster)] == 0
    assert samples[("kmesh_cluster_connect_failures_total", cluster)] == 1
    picks = "kmesh_cluster_lb_picks_total"
    assert samples[(picks, (("cluster", "backend"), ("endpoint", "10.0.0.9:8080")))] == 2
    assert samples[(picks, (("cluster", "backend"), ("endpoint", "10.0.0.10:8080")))] == 1

    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["kmesh_listener_cx_active"] == "gauge"
    assert types["kmesh_listener_cx"] == "counter"
    assert types["kmesh_cluster_lb_picks"] == "counter"


async def test_metrics_follow_the_live_counters(admin: Admin) -> None:
    async with admin.http.get(admin.url("/metrics")) as response:
        before = _samples(await response.text())
    assert before == {
        ("kmesh_proxy_configs_applied_total", ()): 0,
        ("kmesh_proxy_configs_refused_total", ()): 0,
        ("kmesh_proxy_certificates_total", ()): 0,
    }
    admin.stats.listener("outbound:127.0.0.1:10001").cx_total += 1
    async with admin.http.get(admin.url("/metrics")) as response:
        after = _samples(await response.text())
    assert after[("kmesh_listener_cx_total", (("listener", "outbound:127.0.0.1:10001"),))] == 1


async def test_each_server_has_its_own_registry(admin: Admin) -> None:
    other_stats = ProxyStats()
    other_stats.configs_applied = 9
    other = AdminServer(other_stats, ready=lambda: (True, ""), config_dump=dict, port=0)
    await other.start()
    try:
        async with admin.http.get(admin.url("/metrics")) as response:
            mine = _samples(await response.text())
        async with admin.http.get(f"http://127.0.0.1:{other.port}/metrics") as response:
            theirs = _samples(await response.text())
    finally:
        await other.close()
    assert mine[("kmesh_proxy_configs_applied_total", ())] == 0
    assert theirs[("kmesh_proxy_configs_applied_total", ())] == 9


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/nope"), ("POST", "/ready")])
async def test_anything_else_is_404(admin: Admin, method: str, path: str) -> None:
    async with admin.http.request(method, admin.url(path)) as response:
        assert response.status == 404
        text = await response.text()
    assert f"{method} {path}" in text
    assert "/config_dump" in text


async def test_close_is_idempotent() -> None:
    server = AdminServer(ProxyStats(), ready=lambda: (True, ""), config_dump=dict, port=0)
    await server.start()
    port = server.port
    await server.close()
    await server.close()
    with socket.socket() as probe:
        # Nothing listens any more: the port can be bound again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


async def test_port_before_start_raises() -> None:
    server = AdminServer(ProxyStats(), ready=lambda: (True, ""), config_dump=dict, port=0)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


async def test_bind_failure_names_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = AdminServer(ProxyStats(), ready=lambda: (True, ""), config_dump=dict, port=port)
        with pytest.raises(OSError) as info:
            await server.start()
    assert info.value.errno == errno.EADDRINUSE
    assert str(info.value) == (
        f"[Errno {errno.EADDRINUSE}] cannot listen for the admin server on 127.0.0.1:{port}: "
        f"{os.strerror(errno.EADDRINUSE)}"
    )
    await server.close()  # nothing was started: a no-op
    with pytest.raises(RuntimeError):
        _ = server.port
