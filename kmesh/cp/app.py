"""``ControlPlane``: the wiring of one control-plane process — store, defaults, API server — and nothing else.

``kmesh-cp`` runs one of these; tests and embedding programs run it in-process with ``async with``.
Later components (the KDS server and client, the DP server) are started and stopped here, in that order
of dependencies: the store first and last, listeners in between.

Rules:
- ``start()`` either leaves everything running or, on failure, closes whatever it had opened and raises
  ``StartupError`` with one line that names the setting at fault (a port in use, an unwritable path).
- ``stop()`` is idempotent: it stops the listeners before closing the store, so no request writes to a
  closed store, and the SQLite WAL is checkpointed by the store's own ``close()``.
- The ``default`` Mesh is created when absent (unless ``defaults.skip_mesh_creation``), as Kuma does on
  each start of a global or standalone control plane; an existing one is never touched. A zone gets its
  meshes from the global, so it creates none.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Final, final

import msgspec

from kmesh.api import ApiServer
from kmesh.cp.config import CpConfig
from kmesh.errors import AlreadyExists, ConfigError, KmeshError, NotFound, StoreError
from kmesh.model import ResourceKey, new_resource
from kmesh.store import ResourceStore, open_store

__all__ = ["MULTIZONE_NOT_BUILT", "ControlPlane", "StartupError"]

log = logging.getLogger("kmesh.cp")

DEFAULT_MESH: Final = "default"
MULTIZONE_NOT_BUILT: Final = (
    "multi-zone modes (global, zone) arrive with the KDS work (issue 3); "
    "run without --mode for a standalone control plane"
)


class StartupError(KmeshError):
    """The control plane could not start; the message names the setting at fault and the reason."""


@final
class ControlPlane:
    """One control plane. Pass ``store`` to run on a store you own (it is then not closed by ``stop``)."""

    def __init__(self, config: CpConfig, *, store: ResourceStore | None = None) -> None:
        self.config = config
        self._store = store
        self._owns_store = store is None
        self._api: ApiServer | None = None
        self._running = False

    @property
    def store(self) -> ResourceStore:
        """The open store. Raises RuntimeError before ``start()``."""
        if self._store is None:
            raise RuntimeError("the control plane is not started")
        return self._store

    @property
    def api_port(self) -> int:
        """The port the API listens on (the real one when configured as 0). Raises RuntimeError."""
        if self._api is None:
            raise RuntimeError("the control plane is not started")
        return self._api.port

    @property
    def api_url(self) -> str:
        host = self.config.api_server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"  # a wildcard bind is reachable on loopback
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.api_port}"

    async def start(self) -> None:
        """Open the store, ensure defaults, start listening. Raises StartupError, ConfigError."""
        if self._running:
            return
        if self.config.mode != "standalone":
            raise ConfigError(f"mode {self.config.mode}: {MULTIZONE_NOT_BUILT}")
        try:
            if self._store is None:
                self._store = self._open_store()
            await self._ensure_default_mesh()
            await self._start_api()
        except BaseException:
            await self._close()
            raise
        self._running = True
        log.info(
            "control plane started",
            extra={
                "mode": self.config.mode,
                "instance_id": self.config.instance_id,
                "api_address": f"{self.config.api_server.host}:{self.api_port}",
                "store_type": self.config.store.type,
                "store_path": self._store_path(),
            },
        )

    async def stop(self) -> None:
        """Stop listening, then close the store. Safe to call more than once, or after a failed start."""
        was_running = self._running
        self._running = False
        await self._close()
        if was_running:
            log.info("control plane stopped", extra={"instance_id": self.config.instance_id})

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _store_path(self) -> str | None:
        return self.config.store.sqlite.path if self.config.store.type == "sqlite" else None

    def _open_store(self) -> ResourceStore:
        path = self._store_path()
        if path is not None:
            directory = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                reason = _reason(exc)
                if isinstance(exc, FileExistsError) and exc.filename == directory:
                    reason = "it exists and is not a directory"
                raise StartupError(
                    f"store.sqlite.path: cannot create directory {directory}: {reason}"
                ) from None
        try:
            return open_store(self.config.store.type, path=path)
        except (StoreError, OSError) as exc:
            where = f" {path}" if path else ""
            raise StartupError(
                f"store: cannot open the {self.config.store.type} store{where}: {exc}"
            ) from None

    async def _ensure_default_mesh(self) -> None:
        if self.config.defaults.skip_mesh_creation or self.config.mode == "zone":
            return
        store = self.store
        try:
            await store.get(ResourceKey("Mesh", DEFAULT_MESH))
            return
        except NotFound:
            pass
        except StoreError as exc:
            raise StartupError(f"store: cannot read the default Mesh: {exc}") from None
        try:
            await store.create(new_resource("Mesh", DEFAULT_MESH))
        except AlreadyExists:
            return  # another replica made it between our read and our write
        except StoreError as exc:
            raise StartupError(f"store: cannot create the default Mesh: {exc}") from None
        log.info("created the default Mesh", extra={"mesh": DEFAULT_MESH})

    async def _start_api(self) -> None:
        cfg = self.config
        api = ApiServer(
            self.store,
            host=cfg.api_server.host,
            port=cfg.api_server.port,
            mode=cfg.mode,
            instance_id=cfg.instance_id,
            zone=cfg.zone,
            config_dump=msgspec.to_builtins(cfg),
            # In-flight requests get half the shutdown budget; the rest is for closing the store.
            shutdown_timeout_s=cfg.shutdown_timeout_s / 2,
        )
        try:
            await api.start()
        except OSError as exc:
            raise StartupError(
                f"api_server: cannot listen on {cfg.api_server.host}:{cfg.api_server.port}: "
                f"{_reason(exc).lower()}"
                " (set --api-port, KMESH_API_SERVER_PORT or api_server.port to a free port)"
            ) from None
        self._api = api

    async def _close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await api.stop()
        if self._store is not None and self._owns_store:
            store, self._store = self._store, None
            await store.close()


def _reason(exc: OSError) -> str:
    """The OS's words for ``exc`` ("Address already in use"), without the wrapper text some libraries add."""
    return os.strerror(exc.errno) if exc.errno else str(exc)
