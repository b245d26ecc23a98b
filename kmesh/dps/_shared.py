"""What every connection of one DP server shares: settings, the store view, the records, the live registry.

Rules:
- One live connection per proxy resource (type, mesh, name): a new connection of the same proxy
  **replaces** the older one, which is closed with ``replaced``. A restarted proxy thus reconnects at once
  instead of waiting for the heartbeat timeout to notice its old connection is dead; two proxies
  misconfigured with one name take turns, and the log says so.
- A proxy that closes gracefully (``Close`` with ``normal``) is deregistered after ``deregister_delay_s``
  unless a connection of the same proxy arrives first, which cancels it. When the server stops, pending
  deregistrations run at once: those proxies are gone.
- Certificate material is computed per mesh once per view revision (:meth:`Shared.mesh_trust`) and
  shared by every proxy of the mesh. A provided backend's ``file`` data sources are read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol, final

from kmesh.dps._certs import CertProblem, MeshTrust, mesh_trust
from kmesh.dps._ingress import AvailableServicesKeeper
from kmesh.dps._records import ProxyRecords
from kmesh.dps._view import StoreView
from kmesh.errors import StoreError
from kmesh.model import Resource, ResourceKey
from kmesh.model.types import MeshSpec
from kmesh.pki import provided_files
from kmesh.store import ResourceStore

__all__ = ["Live", "Registry", "Settings", "Shared"]

log = logging.getLogger("kmesh.dps")


@final
@dataclass(frozen=True, slots=True)
class Settings:
    """The DP server's settings that connections read."""

    zone: str
    instance_id: str
    cp_version: str
    heartbeat_interval_s: float
    require_token: bool


class Live(Protocol):
    """What the registry needs of a connection."""

    @property
    def key(self) -> ResourceKey | None: ...

    @property
    def peer(self) -> str: ...

    def close(self, code: str, reason: str) -> None: ...


@final
class Registry:
    """The live connection of each proxy and the pending deregistrations; see the module docstring."""

    def __init__(self, records: ProxyRecords, delay_s: float) -> None:
        self._records = records
        self._delay_s = delay_s
        self.live: dict[ResourceKey, Live] = {}
        self._pending: dict[ResourceKey, tuple[str, asyncio.Task[None]]] = {}

    def claim(self, key: ResourceKey, conn: Live) -> None:
        """Make ``conn`` the live connection of ``key``, replacing (closing) an older one."""
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending[1].cancel()
        old = self.live.get(key)
        self.live[key] = conn
        if old is not None and old is not conn:
            log.warning(
                "a proxy connected again; closing its older connection",
                extra={"proxy": str(key), "peer": conn.peer, "older_peer": old.peer},
            )
            old.close("replaced", f"replaced by a newer connection of {key} from {conn.peer}")

    def release(self, key: ResourceKey, conn: Live, *, deregister_instance: str | None) -> None:
        """``conn`` ended; deregister its proxy later when it left gracefully (as ``deregister_instance``)."""
        if self.live.get(key) is not conn:
            return  # replaced: the newer connection owns the proxy now
        del self.live[key]
        if deregister_instance is not None:
            task = asyncio.create_task(self._deregister_later(key, deregister_instance))
            self._pending[key] = (deregister_instance, task)

    def pending(self) -> list[ResourceKey]:
        return sorted(self._pending)

    async def _deregister_later(self, key: ResourceKey, instance: str) -> None:
        await asyncio.sleep(self._delay_s)
        await self._deregister(key, instance)

    async def _deregister(self, key: ResourceKey, instance: str) -> None:
        entry = self._pending.get(key)
        if entry is not None and entry[0] == instance:
            del self._pending[key]
        if key in self.live:
            return
        try:
            deleted = await self._records.deregister(key, instance)
        except StoreError as exc:
            log.warning("could not deregister a proxy", extra={"proxy": str(key), "error": str(exc)})
            return
        if deleted:
            log.info("deregistered a proxy that shut down", extra={"proxy": str(key)})

    async def run_pending(self) -> None:
        """Run every pending deregistration now (the server is stopping)."""
        pending, self._pending = self._pending, {}
        for key, (instance, task) in pending.items():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._deregister(key, instance)


@dataclass(slots=True)
class Shared:
    """Everything a connection reads besides its own state."""

    settings: Settings
    store: ResourceStore
    view: StoreView
    records: ProxyRecords
    keeper: AvailableServicesKeeper
    registry: Registry
    _trust: dict[str, MeshTrust | CertProblem] = field(default_factory=dict)
    _trust_revision: int = -1

    def mesh_trust(self, mesh: str) -> MeshTrust | CertProblem:
        """The signing CA and trust bundle of ``mesh`` at the view's current revision."""
        if self._trust_revision != self.view.revision:
            self._trust.clear()
            self._trust_revision = self.view.revision
        found = self._trust.get(mesh)
        if found is None:
            resource = self.view.mesh(mesh)
            found = mesh_trust(mesh, resource, self.view.secrets(mesh), _read_files(resource))
            self._trust[mesh] = found
        return found


def _read_files(mesh: Resource | None) -> dict[str, bytes]:
    """The files a provided backend of ``mesh`` names (unreadable ones are left out: CaUnavailable)."""
    spec = mesh.spec if mesh is not None else None
    if not isinstance(spec, MeshSpec) or spec.mtls is None:
        return {}
    files: dict[str, bytes] = {}
    for backend in spec.mtls.backends:
        for path in provided_files(backend):
            try:
                with open(path, "rb") as f:
                    files[path] = f.read()
            except OSError as exc:
                log.warning("cannot read a provided CA file", extra={"path": path, "error": str(exc)})
    return files
