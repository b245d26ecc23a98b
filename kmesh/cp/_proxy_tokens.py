"""The issuers behind ``POST /tokens/dataplane`` and ``POST /tokens/zone-proxy`` (see ``kmesh.api``).

- :class:`DataplaneTokens` (global and standalone): signs with the mesh's dataplane token key set, the
  ``dataplane-token-signing-key-<mesh>-<serial>`` Secrets that :class:`~kmesh.cp._meshca.MeshCredentials`
  makes; the newest key signs. Those Secrets reach every zone over KDS, so the token validates on any zone
  CP of the mesh.
- :class:`ZoneProxyTokens` (zone and standalone): signs a zone ingress's or egress's token with this
  control plane's zone-proxy key (``kmesh.dps.zone_proxy_tokens``), which never leaves it.

Keys are read from the store on each request: tokens are made by operators, seldom, and reading keeps a
rotation or a restore visible at once. A token is never logged.
"""

from __future__ import annotations

import time
from typing import final

from kmesh.api import DataplaneTokenRequest, ZoneProxyTokenRequest
from kmesh.cp._meshca import MeshCredentials
from kmesh.dps import (
    ZONE_PROXY_SIGNING_KEY_PREFIX,
    ensure_zone_proxy_signing_key,
    issue_zone_proxy_token,
    zone_proxy_key_set,
)
from kmesh.errors import NotFound, StoreError
from kmesh.model import ResourceKey
from kmesh.store import ResourceStore
from kmesh.tokens import DATAPLANE_SIGNING_KEY_PREFIX, KeySet, dataplane_key_set, issue_dataplane_token

__all__ = ["DataplaneTokens", "ZoneProxyTokens"]


@final
class DataplaneTokens:
    """Signs dataplane tokens with the keys of the mesh they are for."""

    def __init__(self, store: ResourceStore, credentials: MeshCredentials) -> None:
        self._store = store
        self._credentials = credentials

    async def issue(self, request: DataplaneTokenRequest) -> str:
        """A token for ``request``. Raises NotFound when the mesh does not exist, StoreError when its keys
        cannot be read or made."""
        mesh = request.mesh
        try:
            await self._store.get(ResourceKey("Mesh", mesh))
        except NotFound:
            raise NotFound(
                f"mesh {mesh!r} does not exist; create it first (kmeshctl apply -f mesh.yaml)"
            ) from None
        keys = await self._keys(mesh)
        if not keys.kids:
            # The mesh was created a moment ago and its key is not made yet: make it now.
            await self._credentials.ensure(mesh)
            keys = await self._keys(mesh)
        if not keys.kids:
            raise StoreError(f"mesh {mesh!r} has no dataplane token signing key, and none could be made")
        return issue_dataplane_token(
            keys,
            mesh=mesh,
            name=request.name,
            tags=request.tags,
            proxy_type="sidecar",
            valid_for_s=request.valid_for_s,
            now=time.time(),
        )

    async def _keys(self, mesh: str) -> KeySet:
        prefix = f"{DATAPLANE_SIGNING_KEY_PREFIX}-{mesh}-"
        secrets = (await self._store.list("Secret", mesh=mesh, name_prefix=prefix)).items
        try:
            return dataplane_key_set(secrets, mesh=mesh)
        except ValueError as exc:
            raise StoreError(f"mesh {mesh!r}: {exc}") from None


@final
class ZoneProxyTokens:
    """Signs the tokens of this zone's ingresses and egresses with the zone's own key."""

    def __init__(self, store: ResourceStore) -> None:
        self._store = store

    async def issue(self, request: ZoneProxyTokenRequest) -> str:
        """A token for ``request``. Raises StoreError when the zone-proxy keys cannot be read or made."""
        keys = await self._keys()
        if not keys.kids:
            await ensure_zone_proxy_signing_key(self._store)
            keys = await self._keys()
        return issue_zone_proxy_token(
            keys,
            proxy_type=request.proxy_type,
            name=request.name,
            valid_for_s=request.valid_for_s,
            now=time.time(),
        )

    async def _keys(self) -> KeySet:
        secrets = (await self._store.list("GlobalSecret", name_prefix=ZONE_PROXY_SIGNING_KEY_PREFIX)).items
        try:
            return zone_proxy_key_set(secrets)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
