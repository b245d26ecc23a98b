"""The global's zone-token public keys (and the zone-token revocation list) reach every zone over KDS, so
a zone control plane can verify zone tokens of its ingresses and egresses; the private signing keys and
every other GlobalSecret of the global never do, and a zone's own GlobalSecrets stay untouched."""

from __future__ import annotations

import time
from pathlib import Path

from kmesh.cp._multizone import ZoneTokens
from kmesh.model import ResourceKey, new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.store import MemoryStore, ResourceStore, SqliteStore
from kmesh.tokens import (
    generate_signing_key,
    verify_zone_token,
    zone_public_key_set,
    zone_revocations_secret,
    zone_signing_key_secret,
)

from .support import Tls, get, global_server, keys, running, until, zone_client

GS = "GlobalSecret"
PRIVATE_1 = ResourceKey(GS, "zone-token-signing-key-1")
PUBLIC_1 = ResourceKey(GS, "zone-token-signing-public-key-1")
PRIVATE_2 = ResourceKey(GS, "zone-token-signing-key-2")
PUBLIC_2 = ResourceKey(GS, "zone-token-signing-public-key-2")
REVOCATIONS = ResourceKey(GS, "zone-token-revocations")


async def test_public_keys_reach_zones_and_private_keys_never_do(tls: Tls, tmp_path: Path) -> None:
    glob = MemoryStore()
    zone = SqliteStore(tmp_path / "zone-a.db")
    await glob.create(new_resource(GS, "kds-server-tls", GlobalSecretSpec.from_bytes(b"global cert")))
    await zone.create(new_resource(GS, "dp-server-tls", GlobalSecretSpec.from_bytes(b"zone cert")))
    tokens = ZoneTokens(glob)
    await tokens.start()
    try:
        # The global made its first signing key and published its public half beside it.
        assert {PRIVATE_1, PUBLIC_1} <= await keys(glob, GS)
        # The zone authenticates with a real zone token (scope cp), as in production.
        cp_token = await tokens.issue("zone-a", ["cp"], 600)
        server = global_server(glob, tls, authenticate=tokens.authenticate)
        await server.start()
        try:
            async with running(zone_client(zone, "zone-a", tls, server.port, token=cp_token)):
                await _check_sync(tokens, glob, zone)
        finally:
            await server.stop()
    finally:
        await tokens.stop()
        await zone.close()


async def _check_sync(tokens: ZoneTokens, glob: ResourceStore, zone: ResourceStore) -> None:
    await until(lambda: _present(zone, PUBLIC_1), "the public key in the zone")
    assert await _names(zone) == {"dp-server-tls", PUBLIC_1.name}

    # A token the global signs verifies on the zone with the synced public keys alone.
    token = await tokens.issue("zone-a", ["ingress"], 600)
    public_keys = zone_public_key_set((await zone.list(GS)).items)
    claims = verify_zone_token(token, public_keys, now=time.time(), required_scope="ingress")
    assert claims.zone == "zone-a"

    # Rotation: a new signing key gets its public key, which reaches the zone; the private one does not.
    await glob.create(zone_signing_key_secret(generate_signing_key(), 2))
    await until(lambda: _present(zone, PUBLIC_2), "the rotated public key in the zone")
    # The revocation list flows too.
    await glob.create(zone_revocations_secret(["revoked-1"]))
    await until(lambda: _present(zone, REVOCATIONS), "the revocation list in the zone")

    # Retiring a signing key retires its public key on the global, and so in the zone.
    await glob.delete(PRIVATE_1)
    await until(lambda: _absent(zone, PUBLIC_1), "the retired public key gone from the zone")
    assert await _names(zone) == {"dp-server-tls", PUBLIC_2.name, REVOCATIONS.name}
    # Nothing of the zone's own went up to the global.
    assert await _names(glob) == {"kds-server-tls", PRIVATE_2.name, PUBLIC_2.name, REVOCATIONS.name}


async def _names(store: ResourceStore) -> set[str]:
    return {key.name for key in await keys(store, GS)}


async def _present(store: ResourceStore, key: ResourceKey) -> bool:
    return await get(store, key) is not None


async def _absent(store: ResourceStore, key: ResourceKey) -> bool:
    return await get(store, key) is None
