"""A zone ingress or egress admitted with a zone token of the global (``kmeshctl generate zone-token --zone
Z --scope ingress|egress``, Kuma's way), verified with the public keys synced from the global; a token of
another scope, another zone, an unknown key or a revoked id is refused with a reason; the zone's own
zone-proxy tokens keep working beside them."""

from __future__ import annotations

import time
from typing import Any

from kmesh.dps import DpClient
from kmesh.model import ResourceKey
from kmesh.model.types import ZoneEgressSpec, ZoneIngressSpec
from kmesh.store import ResourceStore
from kmesh.tokens import (
    KeySet,
    SigningKey,
    generate_signing_key,
    issue_zone_token,
    zone_public_key_secrets,
    zone_revocations_secret,
    zone_signing_key_secret,
)

from .support import ZONE, Tls, client, dp_tls, get, running, server, until
from .test_dp_zone_proxies import ingress_doc, zone_proxy_token

INGRESS = ResourceKey("ZoneIngress", "ingress-1")
EGRESS = ResourceKey("ZoneEgress", "egress-1")
EGRESS_DOC: dict[str, Any] = {
    "type": "ZoneEgress",
    "name": "egress-1",
    "networking": {"address": "10.0.9.2", "port": 10002},
}


async def synced_public_key(store: ResourceStore) -> SigningKey:
    """The global's signing key, whose public half only is in the zone's store, as KDS brings it."""
    key = generate_signing_key()
    (public,) = zone_public_key_secrets([zone_signing_key_secret(key, 1)])
    await store.create(public)
    assert {r.meta.name for r in (await store.list("GlobalSecret")).items} >= {public.meta.name}
    return key


def zone_token(key: SigningKey, *, scope: str, zone: str = ZONE, token_id: str | None = None) -> str:
    return issue_zone_token(
        KeySet([key]), zone=zone, scopes=(scope,), valid_for_s=600, now=time.time(), token_id=token_id
    )


async def _admitted(store: ResourceStore, tls: Tls, doc: dict[str, Any], token: str, proxy_type: str) -> None:
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy: DpClient = client(dp_server.port, tls, doc, token, proxy_type=proxy_type)
        async with running(proxy):
            await until(lambda: proxy.welcome is not None, f"the {proxy_type} admitted")
            assert proxy.last_rejection is None


async def _refusal(store: ResourceStore, tls: Tls, token: str) -> tuple[str, str]:
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy: DpClient = client(dp_server.port, tls, ingress_doc(), token, proxy_type="ingress")
        async with running(proxy):
            await until(lambda: proxy.last_rejection is not None, "a refusal")
            assert proxy.welcome is None
            rejection = proxy.last_rejection
    assert rejection is not None
    assert await get(store, INGRESS) is None
    return rejection


async def test_an_ingress_and_an_egress_join_with_zone_tokens_of_the_global(store: ResourceStore) -> None:
    tls = await dp_tls(store)
    key = await synced_public_key(store)
    await _admitted(store, tls, ingress_doc(), zone_token(key, scope="ingress"), "ingress")
    ingress = await get(store, INGRESS)
    assert ingress is not None
    assert isinstance(ingress.spec, ZoneIngressSpec)
    assert ingress.spec.zone == ZONE
    await _admitted(store, tls, EGRESS_DOC, zone_token(key, scope="egress"), "egress")
    egress = await get(store, EGRESS)
    assert egress is not None
    assert isinstance(egress.spec, ZoneEgressSpec)


async def test_the_zone_s_own_zone_proxy_tokens_keep_working(store: ResourceStore) -> None:
    tls = await dp_tls(store)
    await synced_public_key(store)
    # The server makes the zone-proxy key on start; a first run puts it in the store.
    async with running(server(store, tls)):
        pass
    await _admitted(
        store, tls, ingress_doc(), await zone_proxy_token(store, "ingress", "ingress-1"), "ingress"
    )


async def test_a_zone_token_of_scope_cp_is_refused(store: ResourceStore) -> None:
    tls = await dp_tls(store)
    key = await synced_public_key(store)
    code, reason = await _refusal(store, tls, zone_token(key, scope="cp"))
    assert code == "token_wrong_scope"
    assert "'ingress' is needed" in reason
    assert "--scope ingress" in reason
    # An egress token does not admit an ingress either.
    code, _ = await _refusal(store, tls, zone_token(key, scope="egress"))
    assert code == "token_wrong_scope"


async def test_a_zone_token_of_another_zone_is_refused(store: ResourceStore) -> None:
    tls = await dp_tls(store)
    key = await synced_public_key(store)
    code, reason = await _refusal(store, tls, zone_token(key, scope="ingress", zone="zone-2"))
    assert code == "token_mismatch"
    assert "'zone-2'" in reason
    assert f"--zone {ZONE} --scope ingress" in reason


async def test_a_zone_token_of_an_unknown_key_or_revoked_is_refused(store: ResourceStore) -> None:
    tls = await dp_tls(store)
    # No public key synced yet.
    code, reason = await _refusal(store, tls, zone_token(generate_signing_key(), scope="ingress"))
    assert code == "token_unknown_key"
    assert "no zone token public key" in reason
    key = await synced_public_key(store)
    code, reason = await _refusal(store, tls, zone_token(generate_signing_key(), scope="ingress"))
    assert code == "token_unknown_key"
    assert "not signed by a key of the global" in reason
    await store.create(zone_revocations_secret(["revoked-ingress"]))
    code, _ = await _refusal(store, tls, zone_token(key, scope="ingress", token_id="revoked-ingress"))
    assert code == "token_revoked"
