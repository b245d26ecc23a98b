"""Tokens of a zone's own proxies (zone ingress, zone egress), signed and verified by the zone control plane.

A sidecar proves itself with a dataplane token of its mesh (:mod:`kmesh.tokens`), whose keys are mesh
Secrets made on the global and synced to every zone. A zone ingress or egress belongs to no mesh: it
presents either a zone token of the global (scope ``ingress``/``egress``, verified with the public keys KDS
brings down, see :mod:`kmesh.dps._admission`), or a token its zone control plane signs itself, as the
design's "dataplane-style tokens signed by a zone-proxy key" (this module):

    GlobalSecret  zone-proxy-token-signing-key-<serial>    a signing key of this zone (never synced)
    GlobalSecret  zone-proxy-token-revocations             revoked token ids, one per line

Rules:
- A zone-proxy token is a dataplane token (ES256, ``kmesh.tokens`` claims) whose ``mesh`` claim is the
  reserved :data:`ZONE_PROXY_TOKEN_MESH` and whose ``proxy_type`` is ``ingress`` or ``egress``; it may name
  the ZoneIngress/ZoneEgress it is for (``name``). It verifies only against the zone's own keys, so a token
  of one zone is refused by another zone (unknown signing key), and a mesh's dataplane token is refused for
  a zone proxy the same way.
- Keys and revocations are GlobalSecrets, whose KDS direction is none: they stay on the zone control plane
  (and its replicas, which share its store). The highest serial signs; every key verifies (rotation).
- Issuing raises ValueError for bad input; verifying raises :class:`~kmesh.tokens.TokenError` only.
  Everything here is pure except :func:`ensure_zone_proxy_signing_key`, which writes the first key.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from typing import Final, Literal

from kmesh.errors import AlreadyExists
from kmesh.model import Resource, new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.store import ResourceStore
from kmesh.tokens import (
    DataplaneTokenClaims,
    KeySet,
    SigningKey,
    generate_signing_key,
    issue_dataplane_token,
    revoked_ids,
    signing_key_from_data,
    signing_key_to_data,
    verify_dataplane_token,
)

__all__ = [
    "ZONE_PROXY_SIGNING_KEY_PREFIX",
    "ZONE_PROXY_TOKEN_MESH",
    "ZONE_PROXY_TOKEN_REVOCATIONS",
    "ensure_zone_proxy_signing_key",
    "issue_zone_proxy_token",
    "verify_zone_proxy_token",
    "zone_proxy_key_set",
    "zone_proxy_revoked_ids",
    "zone_proxy_signing_key_secret",
]

log = logging.getLogger("kmesh.dps")

ZONE_PROXY_SIGNING_KEY_PREFIX: Final = "zone-proxy-token-signing-key"
ZONE_PROXY_TOKEN_REVOCATIONS: Final = "zone-proxy-token-revocations"
# The mesh claim of every zone-proxy token: not a mesh, a marker no dataplane token of a mesh carries
# together with this zone's keys.
ZONE_PROXY_TOKEN_MESH: Final = "kmesh-zone-proxies"
_SERIAL: Final = re.compile(r"[1-9][0-9]{0,17}")

ZoneProxyType = Literal["ingress", "egress"]


def _serial_of(name: str) -> int | None:
    head, sep, tail = name.rpartition("-")
    if not sep or head != ZONE_PROXY_SIGNING_KEY_PREFIX or not _SERIAL.fullmatch(tail):
        return None
    return int(tail)


def zone_proxy_signing_key_secret(key: SigningKey, serial: int) -> Resource:
    """The GlobalSecret ``zone-proxy-token-signing-key-<serial>`` holding ``key``. Raises ValueError for a
    serial below 1."""
    if serial < 1:
        raise ValueError(f"a signing key serial is a positive integer, got {serial}")
    spec = GlobalSecretSpec(data=signing_key_to_data(key))
    return new_resource("GlobalSecret", f"{ZONE_PROXY_SIGNING_KEY_PREFIX}-{serial}", spec)


def zone_proxy_key_set(secrets: Iterable[Resource]) -> KeySet:
    """The zone-proxy signing keys among ``secrets`` (any resources), oldest serial first.

    Raises ValueError naming the secret when one holds no usable key, or two hold the same key.
    """
    found: list[tuple[int, SigningKey]] = []
    for secret in secrets:
        if secret.meta.type != "GlobalSecret" or not isinstance(secret.spec, GlobalSecretSpec):
            continue
        serial = _serial_of(secret.meta.name)
        if serial is None:
            continue
        try:
            found.append((serial, signing_key_from_data(secret.spec.data)))
        except ValueError as exc:
            raise ValueError(f"{secret.key}: not a token signing key: {exc}") from None
    found.sort(key=lambda pair: pair[0])
    return KeySet(key for _, key in found)


def zone_proxy_revoked_ids(secrets: Iterable[Resource]) -> frozenset[str]:
    """The revoked zone-proxy token ids among ``secrets``. Raises ValueError for an unreadable list."""
    for secret in secrets:
        if secret.meta.type == "GlobalSecret" and secret.meta.name == ZONE_PROXY_TOKEN_REVOCATIONS:
            return revoked_ids(secret)
    return frozenset()


def issue_zone_proxy_token(
    keys: KeySet | SigningKey,
    *,
    proxy_type: ZoneProxyType,
    name: str | None = None,
    valid_for_s: float,
    now: float,
) -> str:
    """A token for a zone ingress or egress of this zone, optionally bound to its resource ``name``.

    Raises ValueError for another proxy type, a bad name or validity; LookupError for an empty KeySet.
    """
    if proxy_type not in ("ingress", "egress"):
        raise ValueError(f"a zone-proxy token is for an ingress or an egress, not a {proxy_type}")
    return issue_dataplane_token(
        keys, mesh=ZONE_PROXY_TOKEN_MESH, name=name, proxy_type=proxy_type, valid_for_s=valid_for_s, now=now
    )


def verify_zone_proxy_token(
    token: str, keys: KeySet, *, now: float, revoked: Iterable[str] = ()
) -> DataplaneTokenClaims:
    """The claims of a valid zone-proxy token. Raises TokenError as
    :func:`kmesh.tokens.verify_dataplane_token` does."""
    return verify_dataplane_token(token, keys, mesh=ZONE_PROXY_TOKEN_MESH, now=now, revoked_ids=set(revoked))


async def ensure_zone_proxy_signing_key(store: ResourceStore) -> None:
    """Create ``zone-proxy-token-signing-key-1`` when no zone-proxy signing key exists. Raises StoreError."""
    secrets = (await store.list("GlobalSecret", name_prefix=ZONE_PROXY_SIGNING_KEY_PREFIX)).items
    if any(_serial_of(s.meta.name) is not None for s in secrets):
        return
    secret = zone_proxy_signing_key_secret(generate_signing_key(), 1)
    with contextlib.suppress(AlreadyExists):
        await store.create(secret)
        log.info("generated a zone-proxy token signing key", extra={"secret": secret.meta.name})
