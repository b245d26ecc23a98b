"""Each mesh's credentials, made where meshes are made: the CA of every builtin mTLS backend, and the key
that signs the mesh's dataplane tokens.

A global or standalone control plane runs one :class:`MeshCredentials`; a zone never does (its meshes and
their Secrets come from the global over KDS, DESIGN.md "Cross-zone routing").

Rules:
- For each Mesh, each ``builtin`` mTLS backend gets its CA as the two Secrets of ``kmesh.pki._storage``
  (``<mesh>.ca-builtin-{cert,key}-<backend>``) when neither is there, and the mesh gets a
  ``dataplane-token-signing-key-<mesh>-<serial>`` Secret when it has none (``kmesh.tokens._storage``).
  Both are mesh-scoped, so KDS carries them to every zone.
- Everything is written with Create (a CA's two Secrets in one commit), and AlreadyExists is ignored: a
  restart, or another replica that got there first, never replaces a CA, which would split the mesh's
  trust. A CA with one Secret of its pair missing is reported and left alone (``ca_from_secrets`` says
  how to repair it).
- A pass runs at start, for one mesh when it is created or changed or loses a Secret (the store's change
  events; deleting both Secrets of a CA is how an operator asks for a new one), and for every mesh after a
  RESYNC. A pass that fails (the store away, a backend whose ``conf`` cannot make a CA)
  is logged and retried on the next event for that mesh, or after a pause for the store.
- One log line per CA made (mesh, backend, key type); key material is never logged. CA keys are made in
  a worker thread: a 4096-bit RSA key takes seconds, which the event loop must not wait through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Final, final

from kmesh.errors import AlreadyExists, NotFound, StoreError
from kmesh.model import Resource, ResourceKey
from kmesh.model.types import MeshSpec
from kmesh.pki import InvalidCa, ca_from_backend, ca_from_secrets, ca_secrets
from kmesh.store import ChangeEvent, ChangeKind, Create, ResourceStore
from kmesh.tokens import dataplane_key_set, dataplane_signing_key_secret, generate_signing_key, next_serial

__all__ = ["MeshCredentials"]

log = logging.getLogger("kmesh.cp")

_RETRY_S: Final = 1.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@final
class MeshCredentials:
    """Makes the missing CA and dataplane-token key Secrets of every Mesh in ``store`` (module rules)."""

    def __init__(self, store: ResourceStore, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._store = store
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        # One pass per mesh at a time: two concurrent passes would both generate a CA, and one would lose.
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """A pass over every mesh, then follow the store. Raises StoreError when the first pass cannot
        read the store."""
        if self._task is not None:
            return
        watch = self._store.watch()  # before the pass, so no change between the two is missed
        await self.ensure_all()
        self._task = asyncio.create_task(self._follow(watch), name="mesh-credentials")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ensure_all(self) -> None:
        """A pass over every Mesh. Raises StoreError when the meshes cannot be listed."""
        for mesh in (await self._store.list("Mesh")).items:
            await self._ensure_logged(mesh.meta.name)

    async def ensure(self, mesh: str) -> None:
        """Make what ``mesh`` lacks. Raises NotFound when there is no such Mesh, StoreError, ValueError
        when a builtin backend's ``conf`` cannot make a CA."""
        lock = self._locks.setdefault(mesh, asyncio.Lock())
        async with lock:
            resource = await self._store.get(ResourceKey("Mesh", mesh))
            secrets = (await self._store.list("Secret", mesh=mesh)).items
            if isinstance(resource.spec, MeshSpec):
                await self._ensure_cas(mesh, resource.spec, secrets)
            await self._ensure_signing_key(mesh, secrets)

    async def _ensure_cas(self, mesh: str, spec: MeshSpec, secrets: list[Resource]) -> None:
        for backend in spec.mtls.backends if spec.mtls is not None else []:
            if backend.type != "builtin":
                continue
            try:
                if ca_from_secrets(secrets, mesh, backend.name) is not None:
                    continue
            except InvalidCa as exc:
                log.error("the mesh CA is damaged; not replacing it", extra={"mesh": mesh, "error": str(exc)})
                continue
            now = self._clock()
            bundle = await asyncio.to_thread(ca_from_backend, spec, backend.name, mesh=mesh, now=now)
            try:
                await self._store.commit(
                    [Create(secret) for secret in ca_secrets(mesh, backend.name, bundle)]
                )
            except AlreadyExists:
                continue  # another replica made it first: that one is the CA
            ca_cert = backend.conf.ca_cert if backend.conf is not None else None
            rsa_bits = ca_cert.rsa_bits if ca_cert is not None else None
            log.info(
                "created a mesh CA",
                extra={
                    "mesh": mesh,
                    "backend": backend.name,
                    "key_type": f"RSA {rsa_bits}" if rsa_bits else "ECDSA P-256",
                },
            )

    async def _ensure_signing_key(self, mesh: str, secrets: list[Resource]) -> None:
        try:
            if dataplane_key_set(secrets, mesh=mesh).kids:
                return
        except ValueError as exc:
            log.error(
                "a dataplane token signing key is unreadable; not adding another",
                extra={"mesh": mesh, "error": str(exc)},
            )
            return
        serial = next_serial(secrets, mesh=mesh)
        secret = dataplane_signing_key_secret(generate_signing_key(), mesh=mesh, serial=serial)
        with contextlib.suppress(AlreadyExists):
            await self._store.create(secret)
            log.info(
                "created a dataplane token signing key", extra={"mesh": mesh, "secret": secret.meta.name}
            )

    async def _ensure_logged(self, mesh: str) -> None:
        """``ensure(mesh)``, whose failures for this mesh are logged; a store failure propagates."""
        try:
            await self.ensure(mesh)
        except NotFound:
            pass  # deleted meanwhile: its Secrets went with it
        except ValueError as exc:
            log.error("cannot make the mesh's credentials", extra={"mesh": mesh, "error": str(exc)})

    async def _follow(self, watch: AsyncIterator[ChangeEvent]) -> None:
        async for event in watch:
            try:
                if event.kind is ChangeKind.RESYNC or event.key is None:
                    await self.ensure_all()
                elif event.key.type == "Mesh" and event.kind is not ChangeKind.DELETED:
                    await self._ensure_logged(event.key.name)
                elif event.key.type == "Secret" and event.kind is ChangeKind.DELETED:
                    # Deleting both Secrets of a CA is how an operator asks for a new one; a mesh whose
                    # last signing key was deleted could admit no proxy.
                    await self._ensure_logged(event.key.mesh)
            except StoreError as exc:
                log.warning("could not make mesh credentials; retrying", extra={"error": str(exc)})
                await asyncio.sleep(_RETRY_S)
                with contextlib.suppress(StoreError):
                    await self.ensure_all()
