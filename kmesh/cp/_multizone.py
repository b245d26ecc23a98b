"""The global control plane's multi-zone material: its KDS server certificate, its zone-token signing key,
and the checks built on them (authenticating a zone's Hello, issuing tokens, refusing to delete a live zone).

Rules:
- Key material lives in the store as GlobalSecrets, which never leave the global (their KDS direction is
  none): ``kds-server-tls`` (certificate and key PEM, generated on first start unless files are given) and
  ``zone-token-signing-key-<serial>`` (see ``kmesh.tokens``). Nothing here logs a key or a token.
- For each signing key the global keeps ``zone-token-signing-public-key-<serial>`` holding its public half
  (created at start and whenever a signing key appears, removed when its signing key is retired): those,
  and ``zone-token-revocations``, are the GlobalSecrets KDS carries to zones, so a zone control plane
  verifies the zone tokens (scope ingress/egress) of its zone proxies, as Kuma does.
- The generated certificate (public) is written to ``kds-ca.pem`` beside the SQLite store, so a zone can
  trust it with ``--kds-ca-file``; its SHA-256 fingerprint is logged for an operator to compare.
- Zone authentication runs on every Hello against a key cache that follows the store through its change
  events, so a key rotated or a token revoked through the API takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Final, final

from kmesh.errors import AlreadyExists, Conflict, FieldViolation, NotFound, StoreError
from kmesh.kds import Hello
from kmesh.model import ResourceKey, new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.pki import cert_fingerprint_sha256, generate_self_signed_server_cert
from kmesh.store import ChangeKind, ResourceStore
from kmesh.tokens import (
    ZONE_SIGNING_KEY_PREFIX,
    ZONE_SIGNING_PUBLIC_KEY_PREFIX,
    ZONE_TOKEN_REVOCATIONS,
    KeySet,
    TokenError,
    generate_signing_key,
    issue_zone_token,
    next_serial,
    revoked_ids,
    verify_zone_token,
    zone_key_set,
    zone_public_key_secrets,
    zone_signing_key_secret,
)

__all__ = [
    "KDS_CA_FILE",
    "KDS_TLS_SECRET",
    "ZONE_CONNECTED",
    "ZoneTokens",
    "ensure_kds_server_tls",
    "zone_delete_guard",
]

log = logging.getLogger("kmesh.cp")

KDS_TLS_SECRET: Final = "kds-server-tls"
KDS_CA_FILE: Final = "kds-ca.pem"
# Kuma's wording, kept to the letter: operators and scripts match on it.
ZONE_CONNECTED: Final = "unable to delete Zone, Zone CP is still connected, please shut it down first"
_PEM_SPLIT: Final = b"-----BEGIN"

DeleteGuard = Callable[[ResourceKey], Awaitable[FieldViolation | None]]


async def ensure_kds_server_tls(
    store: ResourceStore, *, cert_file: str | None, key_file: str | None, export_dir: str | None
) -> tuple[bytes, bytes]:
    """The global's KDS certificate and key PEM: from the given files, else from the store, else generated
    and stored. Raises OSError for unreadable files and StoreError."""
    if cert_file is not None and key_file is not None:
        # Read once at start, before anything is served: blocking the loop here costs nothing.
        return _read(cert_file), _read(key_file)
    secret_key = ResourceKey("GlobalSecret", KDS_TLS_SECRET)
    try:
        stored = await store.get(secret_key)
        assert isinstance(stored.spec, GlobalSecretSpec)
        cert, key = _split_pem(stored.spec.value)
    except NotFound:
        names = sorted({"localhost", socket.gethostname()})
        cert, key = generate_self_signed_server_cert(names, ["127.0.0.1", "::1"])
        secret = new_resource("GlobalSecret", KDS_TLS_SECRET, GlobalSecretSpec.from_bytes(cert + key))
        try:
            await store.create(secret)
            log.info("generated the KDS server certificate", extra={"hostnames": names})
        except AlreadyExists:
            return await ensure_kds_server_tls(store, cert_file=None, key_file=None, export_dir=export_dir)
    if export_dir is not None:
        path = os.path.join(export_dir, KDS_CA_FILE)
        _write_public(path, cert)
        log.info(
            "KDS server certificate exported for zones (--kds-ca-file)",
            extra={"path": path, "sha256": cert_fingerprint_sha256(cert)},
        )
    return cert, key


def _split_pem(blob: bytes) -> tuple[bytes, bytes]:
    """The stored secret is the certificate PEM followed by the key PEM."""
    second = blob.find(_PEM_SPLIT, 1)
    if second < 0:
        raise StoreError(f"GlobalSecret {KDS_TLS_SECRET} does not hold a certificate and a key")
    return blob[:second], blob[second:]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_public(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@final
class ZoneTokens:
    """Signs zone tokens and checks the ones zones present, with the keys kept in the store."""

    def __init__(self, store: ResourceStore) -> None:
        self._store = store
        self._keys = KeySet()
        self._revoked: frozenset[str] = frozenset()
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the first signing key if there is none, load the keys, and follow later changes."""
        secrets = (await self._store.list("GlobalSecret")).items
        if not any(s.meta.name.startswith(ZONE_SIGNING_KEY_PREFIX) for s in secrets):
            key = zone_signing_key_secret(generate_signing_key(), next_serial(secrets))
            with contextlib.suppress(AlreadyExists):
                await self._store.create(key)
                log.info("generated a zone token signing key", extra={"secret": key.meta.name})
        await self._reload()
        await self._publish_public_keys()
        self._watch_task = asyncio.create_task(self._follow(), name="zone-token-keys")

    async def stop(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _reload(self) -> None:
        secrets = (await self._store.list("GlobalSecret")).items
        self._keys = zone_key_set(secrets)
        revocations = next((s for s in secrets if s.meta.name == ZONE_TOKEN_REVOCATIONS), None)
        self._revoked = revoked_ids(revocations)

    async def _publish_public_keys(self) -> None:
        """Make the ``zone-token-signing-public-key-<serial>`` GlobalSecrets match the signing keys: one
        per signing key, holding its public half; none for a retired key. Raises StoreError."""
        secrets = (await self._store.list("GlobalSecret")).items
        try:
            wanted = {s.meta.name: s for s in zone_public_key_secrets(secrets)}
        except ValueError as exc:
            log.warning("could not publish zone token public keys", extra={"error": str(exc)})
            return
        prefix = f"{ZONE_SIGNING_PUBLIC_KEY_PREFIX}-"
        have = {s.meta.name: s for s in secrets if s.meta.name.startswith(prefix)}
        for name, secret in wanted.items():
            current = have.get(name)
            if current is not None and current.spec == secret.spec:
                continue
            # Another replica may be doing the same: its write wins, and the change event brings us back.
            with contextlib.suppress(AlreadyExists, NotFound, Conflict):
                if current is None:
                    await self._store.create(secret)
                    log.info("published a zone token public key", extra={"secret": name})
                else:
                    await self._store.update(secret, expected_version=current.meta.version)
        for name, current in have.items():
            if name not in wanted:
                with contextlib.suppress(NotFound, Conflict):
                    await self._store.delete(current.key, expected_version=current.meta.version)
                    log.info("retired a zone token public key", extra={"secret": name})

    async def _follow(self) -> None:
        async for event in self._store.watch():
            if event.kind is ChangeKind.RESYNC or (
                event.key is not None and event.key.type == "GlobalSecret"
            ):
                try:
                    await self._reload()
                    await self._publish_public_keys()
                except StoreError as exc:
                    log.warning("could not reload zone token keys", extra={"error": str(exc)})

    def authenticate(self, hello: Hello) -> str | None:
        """None when ``hello`` carries a valid token for its zone, else the reason to tell the zone."""
        if not hello.token:
            return (
                "a zone token is required: generate one on the global with "
                f"`kmeshctl generate zone-token --zone {hello.zone}` and pass it with --kds-token-file"
            )
        try:
            verify_zone_token(
                hello.token, self._keys, now=time.time(), zone=hello.zone, revoked_ids=self._revoked
            )
        except TokenError as exc:
            return exc.reason
        return None

    async def issue(self, zone: str, scopes: list[str], valid_for_s: float) -> str:
        """A new token for ``zone``. Raises TokenError, ValueError for bad arguments."""
        if not self._keys.kids:
            await self._reload()
        return issue_zone_token(
            self._keys, zone=zone, scopes=tuple(scopes), valid_for_s=valid_for_s, now=time.time()
        )


def zone_delete_guard(is_connected: Callable[[str], bool]) -> DeleteGuard:
    """The API's delete check on the global: a Zone whose CP is connected cannot be deleted."""

    async def guard(key: ResourceKey) -> FieldViolation | None:
        if key.type == "Zone" and is_connected(key.name):
            return FieldViolation("zone", ZONE_CONNECTED)
        return None

    return guard
