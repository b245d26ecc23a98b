"""Who the global lets in: zones with an accepted token, never a proxy (told where to connect instead),
never a Hello without a usable zone name; and how a refused zone client reports and retries."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from kmesh.kds import Hello, KdsMessage, Reject
from kmesh.store import MemoryStore
from kmesh.wire import MessageCodec

from .support import Tls, cluster, count, logged, make_tls, until, zone_client


async def _refusal(port: int, tls: Tls, hello_frame: bytes) -> tuple[Reject, bytes]:
    """Send one Hello frame over TLS; return the Reject and what followed it until the end of the stream."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
    )
    try:
        writer.write(hello_frame)
        codec = MessageCodec[KdsMessage](KdsMessage)
        received: list[KdsMessage] = []
        while not received:
            data = await asyncio.wait_for(reader.read(65536), 60)
            assert data, "the global hung up without a word"
            received.extend(codec.feed(data))
        reject, *rest = received
        assert isinstance(reject, Reject)
        assert rest == []
        tail = await asyncio.wait_for(reader.read(65536), 60)
        return reject, tail
    finally:
        writer.close()


async def test_a_proxy_dialling_the_global_is_told_to_use_its_zone_control_plane(tls: Tls) -> None:
    glob = MemoryStore()
    async with cluster(glob, {}, tls) as (server, _):
        # The DP protocol's Hello: another protocol, no zone, fields KDS does not know.
        dp_hello = {"kind": "Hello", "protocol": "dp/1", "dataplane": {"name": "web-1"}, "token": "dp-token"}
        body = msgspec.msgpack.encode(dp_hello)
        reject, tail = await _refusal(server.port, tls, len(body).to_bytes(4, "big") + body)
        assert reject.code == "unsupported_protocol"
        assert "accepts only zone control planes" in reject.reason
        assert "proxies must connect to their zone control plane" in reject.reason
        assert tail == b""  # then the global closed the connection
        assert await count(glob, "Zone") == 0


async def test_a_hello_with_an_invalid_zone_name_is_refused(tls: Tls) -> None:
    glob = MemoryStore()
    async with cluster(glob, {}, tls) as (server, _):
        codec = MessageCodec[KdsMessage](KdsMessage)
        reject, _ = await _refusal(server.port, tls, codec.encode(Hello(zone="not/a name", token="t")))
        assert reject.code == "bad_hello"
        assert "not/a name" in reject.reason
        assert await count(glob, "Zone") == 0


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_an_unauthenticated_zone_is_refused_with_the_reason_and_retries(
    tls: Tls, asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kmesh.kds")
    seen: list[str] = []

    def verdict(hello: Hello) -> str | None:
        seen.append(hello.zone)
        return None if hello.token == "token-of-zone-a" else "the zone token is not valid for zone zone-b"

    async def async_verdict(hello: Hello) -> str | None:
        await asyncio.sleep(0)
        return verdict(hello)

    glob = MemoryStore()
    authenticate = async_verdict if asynchronous else verdict
    zones = {"zone-a": MemoryStore(), "zone-b": MemoryStore()}
    async with cluster(glob, zones, tls, authenticate=authenticate) as (server, clients):
        await until(lambda: clients["zone-b"].counters.rejected >= 2, "zone-b refused twice (it retries)")
        await until(lambda: server.is_connected("zone-a"), "zone-a connected")
        assert clients["zone-b"].last_error == "unauthenticated: the zone token is not valid for zone zone-b"
        assert not clients["zone-b"].connected
        assert server.connected_zones() == ["zone-a"]
        # A refused zone leaves no trace on the global: no Zone is made before it is authenticated.
        assert [z.meta.name for z in (await glob.list("Zone")).items] == ["zone-a"]
        assert "zone-b" in seen
    failures = logged(caplog.records, "cannot connect to the global")
    assert any(f["reason"] == "the zone token is not valid for zone zone-b" for f in failures)
    # The token itself never reaches a log line.
    assert not any("token-of-zone" in str(vars(r)) for r in caplog.records)


async def test_a_zone_client_reports_an_untrusted_certificate_and_keeps_trying(tls: Tls) -> None:
    glob = MemoryStore()
    other = make_tls()  # a CA the global's certificate was not made by
    async with cluster(glob, {}, tls) as (server, _):
        client = zone_client(MemoryStore(), "zone-a", other, server.port)
        await client.start()
        try:
            await until(lambda: client.counters.dials >= 2, "two attempts")
            assert client.last_error is not None
            assert client.last_error.startswith("connect_failed: TLS")
            assert not client.connected
            assert server.connected_zones() == []
        finally:
            await client.stop()
