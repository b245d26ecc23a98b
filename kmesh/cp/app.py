"""``ControlPlane``: the wiring of one control-plane process — store, defaults, API server — and nothing else.

``kmesh-cp`` runs one of these; tests and embedding programs run it in-process with ``async with``.
What runs depends on the mode, started in this order (columns left to right), the store first and closed
last; ``stop()`` ends the DP server first (proxies keep their last config), then the links to other
control planes, then the API:

| mode | mesh credentials | KDS server | API | DP server | KDS client |
|---|---|---|---|---|---|
| global | yes | yes | yes (zone and dataplane tokens) | no: the global accepts only zone CPs | no |
| standalone | yes | no | yes (dataplane and zone-proxy tokens) | yes, zone ``default`` | no |
| zone | no: they come from the global | no | yes (zone-proxy tokens) | yes, its zone | yes |

Mesh credentials (``_meshca``) are each mesh's CA and dataplane token key, made where meshes are made.

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
import ssl
from types import TracebackType
from typing import Final, final

import msgspec

from kmesh._version import __version__
from kmesh.api import ApiServer
from kmesh.cp._meshca import MeshCredentials
from kmesh.cp._multizone import ZoneTokens, ensure_kds_server_tls, zone_delete_guard
from kmesh.cp._proxy_tokens import DataplaneTokens, ZoneProxyTokens
from kmesh.cp.config import CpConfig, parse_kds_address
from kmesh.dps import STANDALONE_ZONE, DpServer, ensure_dp_server_tls
from kmesh.errors import AlreadyExists, KmeshError, NotFound, StoreError
from kmesh.kds.global_server import KdsGlobalServer
from kmesh.kds.zone_client import KdsZoneClient
from kmesh.model import ResourceKey, new_resource
from kmesh.store import ResourceStore, open_store
from kmesh.wire.tls import client_context, server_context

__all__ = ["ControlPlane", "StartupError"]

log = logging.getLogger("kmesh.cp")

DEFAULT_MESH: Final = "default"


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
        self._kds_server: KdsGlobalServer | None = None
        self._kds_client: KdsZoneClient | None = None
        self._zone_tokens: ZoneTokens | None = None
        self._credentials: MeshCredentials | None = None
        self._dp_server: DpServer | None = None
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
    def kds_port(self) -> int:
        """The port the global's KDS server listens on. Raises RuntimeError when it does not run."""
        if self._kds_server is None:
            raise RuntimeError("no KDS server runs (only a started global control plane has one)")
        return self._kds_server.port

    @property
    def dp_port(self) -> int:
        """The port the DP server listens on. Raises RuntimeError when it does not run (the global has
        none)."""
        if self._dp_server is None:
            raise RuntimeError("no DP server runs (only a started zone or standalone control plane has one)")
        return self._dp_server.port

    @property
    def dp_server(self) -> DpServer | None:
        """The DP server of a started zone or standalone control plane (None otherwise)."""
        return self._dp_server

    @property
    def kds_client(self) -> KdsZoneClient | None:
        """A zone control plane's link to the global (None in other modes)."""
        return self._kds_client

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
        try:
            if self._store is None:
                self._store = self._open_store()
            await self._ensure_default_mesh()
            if self.config.mode != "zone":
                await self._start_mesh_credentials()
            if self.config.mode == "global":
                await self._start_kds_server()
            if self.config.mode != "global":
                await self._start_dp_server()
            # The API last among the listeners: once it answers, everything it reports on is serving.
            await self._start_api()
            if self.config.mode == "zone":
                await self._start_kds_client()
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
                **(
                    {"dp_address": f"{self.config.dp_server.host}:{self.dp_port}"}
                    if self._dp_server is not None
                    else {}
                ),
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

    def _data_dir(self) -> str | None:
        """The folder of the SQLite store, where files for operators (kds-ca.pem) are written."""
        path = self._store_path()
        return os.path.dirname(os.path.abspath(path)) if path else None

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

    async def _start_mesh_credentials(self) -> None:
        credentials = MeshCredentials(self.store)
        try:
            await credentials.start()
        except StoreError as exc:
            raise StartupError(f"store: cannot make the meshes' CAs and token keys: {exc}") from None
        self._credentials = credentials

    async def _start_dp_server(self) -> None:
        cfg = self.config
        dp = cfg.dp_server
        try:
            cert, key = await ensure_dp_server_tls(
                self.store, cert_file=dp.tls_cert_file, key_file=dp.tls_key_file, export_dir=self._data_dir()
            )
            context = server_context(cert, key)
        except OSError as exc:
            raise StartupError(
                f"dp_server.tls_cert_file/dp_server.tls_key_file: cannot read or export: {_reason(exc)}"
            ) from None
        except (ValueError, ssl.SSLError) as exc:
            raise StartupError(f"dp_server: unusable DP server certificate: {exc}") from None
        except StoreError as exc:
            raise StartupError(f"store: cannot read or keep the DP server certificate: {exc}") from None
        server = DpServer(
            self.store,
            zone=cfg.zone if cfg.zone is not None else STANDALONE_ZONE,
            host=dp.host,
            port=dp.port,
            ssl_context=context,
            instance_id=cfg.instance_id,
            cp_version=__version__,
            heartbeat_interval_s=dp.heartbeat_interval_s,
            require_token=dp.require_token,
            deregister_delay_s=dp.deregister_delay_s,
            shutdown_timeout_s=cfg.shutdown_timeout_s / 4,
        )
        try:
            await server.start()
        except OSError as exc:
            await server.stop()
            raise StartupError(
                f"dp_server: cannot listen on {dp.host}:{dp.port}: {_reason(exc).lower()}"
                " (set --dp-port, KMESH_DP_SERVER_PORT or dp_server.port to a free port)"
            ) from None
        except StoreError as exc:
            await server.stop()
            raise StartupError(f"store: cannot start the DP server: {exc}") from None
        self._dp_server = server

    async def _start_kds_server(self) -> None:
        cfg = self.config
        export_dir = self._data_dir()
        try:
            cert, key = await ensure_kds_server_tls(
                self.store,
                cert_file=cfg.kds.tls_cert_file,
                key_file=cfg.kds.tls_key_file,
                export_dir=export_dir,
            )
            context = server_context(cert, key)
        except OSError as exc:
            raise StartupError(f"kds.tls_cert_file/kds.tls_key_file: cannot read: {_reason(exc)}") from None
        except ValueError as exc:
            raise StartupError(f"kds: unusable KDS server certificate: {exc}") from None
        authenticate = None
        if cfg.kds.require_zone_token:
            self._zone_tokens = ZoneTokens(self.store)
            await self._zone_tokens.start()
            authenticate = self._zone_tokens.authenticate
        else:
            log.warning("zone tokens are not required (kds.require_zone_token=false): any zone may connect")
        server = KdsGlobalServer(
            self.store,
            host=cfg.kds.host,
            port=cfg.kds.port,
            ssl_context=context,
            instance_id=cfg.instance_id,
            cp_version=__version__,
            authenticate=authenticate,
            heartbeat_interval_s=cfg.kds.heartbeat_interval_s,
        )
        try:
            await server.start()
        except OSError as exc:
            raise StartupError(
                f"kds: cannot listen on {cfg.kds.host}:{cfg.kds.port}: {_reason(exc).lower()}"
                " (set --kds-port, KMESH_KDS_PORT or kds.port to a free port)"
            ) from None
        self._kds_server = server
        log.info("KDS server listening", extra={"kds_address": f"{cfg.kds.host}:{server.port}"})

    async def _start_kds_client(self) -> None:
        cfg = self.config
        # Both are checked by load_config for mode zone.
        assert cfg.zone is not None
        assert cfg.kds.global_address is not None
        host, port = parse_kds_address(cfg.kds.global_address)
        token = ""
        if cfg.kds.token_file is not None:
            try:
                token = _read_text(cfg.kds.token_file).strip()
            except OSError as exc:
                raise StartupError(
                    f"kds.token_file: cannot read {cfg.kds.token_file}: {_reason(exc)}"
                ) from None
        try:
            context = client_context(ca_file=cfg.kds.ca_file, skip_verify=cfg.kds.skip_verify)
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise StartupError(f"kds.ca_file: cannot use {cfg.kds.ca_file}: {exc}") from None
        if cfg.kds.skip_verify:
            log.warning(
                "the global's KDS certificate is NOT verified (kds.skip_verify): use only in development",
                extra={"kds_global_address": cfg.kds.global_address},
            )
        client = KdsZoneClient(
            self.store,
            zone=cfg.zone,
            host=host,
            port=port,
            ssl_context=context,
            server_hostname=cfg.kds.server_name or host,
            token=token,
            instance_id=cfg.instance_id,
            cp_version=__version__,
        )
        await client.start()
        self._kds_client = client

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
            delete_guard=(
                zone_delete_guard(self._kds_server.is_connected) if self._kds_server is not None else None
            ),
            zone_token_issuer=self._zone_tokens.issue if self._zone_tokens is not None else None,
            dataplane_token_issuer=(
                DataplaneTokens(self.store, self._credentials).issue
                if self._credentials is not None
                else None
            ),
            zone_proxy_token_issuer=ZoneProxyTokens(self.store).issue if cfg.mode != "global" else None,
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
        # Proxies first (they keep their last config and reconnect later), then links to other control
        # planes, so nothing new arrives while the API and store wind down.
        dp_server, self._dp_server = self._dp_server, None
        if dp_server is not None:
            await dp_server.stop()
        client, self._kds_client = self._kds_client, None
        if client is not None:
            await client.stop()
        server, self._kds_server = self._kds_server, None
        if server is not None:
            await server.stop()
        tokens, self._zone_tokens = self._zone_tokens, None
        if tokens is not None:
            await tokens.stop()
        credentials, self._credentials = self._credentials, None
        if credentials is not None:
            await credentials.stop()
        api, self._api = self._api, None
        if api is not None:
            await api.stop()
        if self._store is not None and self._owns_store:
            store, self._store = self._store, None
            await store.close()


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _reason(exc: OSError) -> str:
    """The OS's words for ``exc`` ("Address already in use"), without the wrapper text some libraries add."""
    return os.strerror(exc.errno) if exc.errno else str(exc)
