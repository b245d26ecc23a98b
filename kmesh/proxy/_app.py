"""``ProxyApp``: one proxy put together — its connection to the zone control plane (``DpClient``), its data
plane (``ProxyRuntime``) and its admin server — as ``kmesh-proxy run`` and the embedded ``Sidecar`` use it.

Rules:
- The DP client applies each config through the runtime (a failure NACKs it) and hands it every
  certificate; the app probes report inbound health through the DP client.
- ``start()`` binds the admin port first (a taken port is an error at once, not after joining), then
  starts joining in the background; ``stop()`` leaves the mesh (the control plane deregisters the proxy
  unless ``deregister=False``), stops accepting, and closes the admin server.
- The DP server is trusted through ``ca_file`` (the zone control plane's ``dp-ca.pem``), or the system's
  trust store when none is given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from kmesh.dps import DpClient
from kmesh.errors import ConfigError
from kmesh.proxy._admin import AdminServer
from kmesh.proxy._runtime import ProxyRuntime
from kmesh.proxy._stats import ProxyStats
from kmesh.wire.tls import client_context

__all__ = ["ProxyApp", "read_token_file"]

log = logging.getLogger("kmesh.proxy")


def read_token_file(path: str | os.PathLike[str], *, setting: str) -> str:
    """The token in ``path``, stripped. Raises ConfigError naming ``setting`` and the file when it cannot
    be read as UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{setting} {os.fspath(path)}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting} {os.fspath(path)}: not UTF-8 text") from None


@final
class ProxyApp:
    """See the module docstring. Raises ConfigError for a bad address or CA file."""

    def __init__(
        self,
        *,
        cp_address: str,
        dataplane_doc: Mapping[str, Any],
        proxy_type: str = "sidecar",
        token: str = "",
        ca_file: str | None = None,
        admin_host: str = "127.0.0.1",
        admin_port: int | None = 9901,
        listen_outbounds: bool = True,
        serve_inbounds: bool = True,
        probe_apps: bool = True,
    ) -> None:
        try:
            ctx = client_context(ca_file=ca_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--ca-cert-file {ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
        self.stats = ProxyStats()
        self._client: DpClient | None = None
        self.runtime = ProxyRuntime(
            proxy_type,
            dataplane_doc,
            stats=self.stats,
            listen_outbounds=listen_outbounds,
            serve_inbounds=serve_inbounds,
            report_health=self._report_health if probe_apps and proxy_type == "sidecar" else None,
        )
        try:
            self._client = DpClient(
                cp_address,
                ctx,
                dataplane_doc=dataplane_doc,
                proxy_type=proxy_type,
                token=token,
                apply_config=self.runtime.apply,
                on_certificate=self.runtime.on_certificate,
            )
        except ValueError as exc:
            raise ConfigError(f"--cp-address {cp_address}: {exc}") from None
        self.admin = (
            AdminServer(
                self.stats,
                ready=self.runtime.ready,
                config_dump=self.config_dump,
                host=admin_host,
                port=admin_port,
            )
            if admin_port is not None
            else None
        )

    @property
    def client(self) -> DpClient:
        assert self._client is not None
        return self._client

    def config_dump(self) -> dict[str, Any]:
        dump = self.runtime.config_dump()
        client = self.client
        dump["control_plane"] = {
            "connected": client.connected,
            "last_error": client.last_error,
            "instance_id": client.instance_id,
        }
        return dump

    def _report_health(self, port: int, ready: bool) -> None:
        self.client.set_inbound_health(port, ready)

    async def start(self) -> None:
        """Bind the admin port, then start joining. Raises OSError when the admin port cannot be bound."""
        if self.admin is not None:
            await self.admin.start()
        await self.client.start()

    async def stop(self, *, deregister: bool = True) -> None:
        await self.client.close(deregister=deregister)
        await self.runtime.close()
        if self.admin is not None:
            await self.admin.close()
