"""``ProxyHandler``: the zone control plane's side of one proxy connection, from Hello to the end.

Rules (DESIGN.md, "Wire": DP protocol):

- Admission (:mod:`kmesh.dps._admission`): refused proxies get a ``Reject`` with the reason and are logged
  (never with their token). An admitted proxy's resource and insight are written before the ``Welcome``,
  so a proxy that was welcomed is always visible in the store.
- Configs are computed from the server's view, never from the store directly, in a push task of the
  connection: the server marks the connection dirty after each coalesced batch of changes, the task
  computes the proxy's :class:`~kmesh.proxyconfig.ProxyConfig` and sends it only when its version (a digest
  of its content) differs from the last one sent. While the proxy's config window is full or the socket's
  buffer is, nothing is sent; the next push then carries the newest config only.
- Certificates (:mod:`kmesh.dps._signer`): each CSR is answered at once; kept CSRs are signed again,
  unasked, when the store changes the mesh's CA material. ``DataplaneInsight.mTLS`` is written at once
  after every certificate.
- Health reports update the dataplane's inbounds (only on change), which the server's store watch turns
  into new configs for its peers and new ``availableServices`` for the zone's ingresses.
- The subscription in the insight carries the counters of configs sent, acknowledged and rejected; a
  ``DataplaneInsight``'s ``metadata.config`` the versions sent, acked and nacked and the last NACK reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, final

import msgspec

from kmesh.dps._admission import LABEL_PROXY_INSTANCE, Refused, admit
from kmesh.dps._shared import Shared
from kmesh.dps._signer import ProxyCertificates
from kmesh.dps.events import (
    CertificateRequested,
    ConfigAcked,
    ConfigNacked,
    ConnectionClosed,
    HealthReported,
    HelloReceived,
)
from kmesh.dps.messages import CloseCode, Hello, Welcome
from kmesh.dps.transport import DpConnection
from kmesh.errors import InvalidReference, StoreError
from kmesh.model import ResourceKey
from kmesh.model.types.insight import (
    DiscoverySubscription,
    DpVersion,
    KumaDpVersion,
    ServiceStats,
    SubscriptionStatus,
)
from kmesh.proxyconfig import ProxyConfig, generate_egress, generate_ingress, generate_sidecar

__all__ = ["CONFIG_STAT", "ProxyHandler"]

log = logging.getLogger("kmesh.dps")

CONFIG_STAT = "ProxyConfig"


@final
class ProxyHandler:
    """Serves one accepted connection; see the module docstring. ``run`` returns when it is over."""

    def __init__(self, shared: Shared, conn: DpConnection) -> None:
        self._shared = shared
        self._conn = conn
        self._key: ResourceKey | None = None
        self._hello: Hello | None = None
        self._sub: DiscoverySubscription | None = None
        self._dirty = asyncio.Event()
        self._config_dirty = True
        self._certs_dirty = False
        self._sent_version = ""
        self._acked_version = ""
        self._nacked_version = ""
        self._nack_reason = ""
        self._sent = self._acked = self._nacked = 0
        self._written_counts: tuple[int, int, int] | None = None
        self._last_write = 0.0
        self._certs: ProxyCertificates | None = None
        self._config_error = ""
        self._registered = False
        # The proxy-instance label this connection registered its resource with ("" when it had none).
        self._instance_label = ""

    # -- what the server sees -------------------------------------------------------------------------------

    @property
    def key(self) -> ResourceKey | None:
        """The proxy's resource key, once admitted."""
        return self._key

    @property
    def peer(self) -> str:
        return self._conn.peer

    @property
    def subscription_id(self) -> str | None:
        return None if self._sub is None else self._sub.id

    @property
    def mesh(self) -> str:
        """The proxy's mesh ("" for a zone ingress or egress, which serve every mesh)."""
        return "" if self._key is None else self._key.mesh

    @property
    def registered(self) -> bool:
        """Whether the proxy's resource was written (so its absence from the store means a deletion)."""
        return self._registered

    @property
    def cert_meshes(self) -> set[str]:
        """Meshes this proxy holds or waits for a certificate of."""
        return set() if self._certs is None else self._certs.meshes

    def close(self, code: str, reason: str) -> None:
        self._conn.close(code, reason)

    def mark_dirty(self, *, config: bool, certs: bool) -> None:
        """Something the proxy's config (or certificates) depend on may have changed."""
        self._config_dirty |= config
        self._certs_dirty |= certs
        if config or certs:
            self._dirty.set()

    # -- the connection ---------------------------------------------------------------------------------

    async def run(self) -> None:
        event = await self._conn.next_event()
        if not isinstance(event, HelloReceived):
            if isinstance(event, ConnectionClosed):
                log.warning(
                    "DP connection ended before the proxy introduced itself",
                    extra={"peer": self.peer, "code": event.code, "reason": event.reason},
                )
            return
        if not await self._admit(event.hello):
            return
        pusher = asyncio.create_task(self._push_loop(), name=f"dp-push-{self.peer}")
        closed: ConnectionClosed | None = None
        try:
            closed = await self._serve()
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            await self._finish(closed)

    async def _admit(self, hello: Hello) -> bool:
        shared, settings = self._shared, self._shared.settings
        view = shared.view
        mesh_name = hello.dataplane.get("mesh")
        verdict = admit(
            hello,
            zone=settings.zone,
            meshes={name: m for name in view.mesh_names() if (m := view.mesh(name)) is not None},
            secrets=view.secrets(mesh_name) if isinstance(mesh_name, str) and mesh_name else [],
            global_secrets=view.global_secrets(),
            now=time.time(),
            require_token=settings.require_token,
        )
        if isinstance(verdict, Refused):
            self._conn.session.reject(verdict.code, verdict.reason)
            self._conn.flush()
            log.warning(
                "refused a proxy",
                extra={
                    "peer": self.peer,
                    "proxy_type": hello.proxy_type,
                    "code": verdict.code,
                    "reason": verdict.reason,
                },
            )
            return False
        resource = verdict.resource
        if resource.meta.type == "ZoneIngress":
            resource = shared.keeper.with_services(resource)
        key = resource.key
        self._key, self._hello = key, hello
        self._instance_label = resource.meta.labels.get(LABEL_PROXY_INSTANCE, "")
        shared.registry.claim(key, self)
        now = shared.records.now()
        self._sub = DiscoverySubscription(
            id=str(uuid.uuid4()),
            control_plane_instance_id=settings.instance_id,
            connect_time=now,
            status=SubscriptionStatus(last_update_time=now),
            version=DpVersion(kuma_dp=KumaDpVersion(version=hello.version)),
        )
        try:
            mtls = await shared.records.register(resource, self._sub)
            self._registered = True
        except StoreError as exc:
            shared.registry.release(key, self, deregister_instance=None)
            if isinstance(exc, InvalidReference):
                # The mesh went away after the view last saw it.
                code, reason = CloseCode.MESH_NOT_FOUND, f"mesh {key.mesh!r} does not exist in this zone"
            else:
                code, reason = (
                    CloseCode.STORE_UNAVAILABLE,
                    f"the zone control plane cannot write its store: {exc}",
                )
            self._conn.session.reject(code, reason)
            self._conn.flush()
            log.warning("could not register a proxy", extra={"proxy": str(key), "error": str(exc)})
            return False
        self._certs = ProxyCertificates(shared, self._conn.session, resource, mtls)
        self._conn.session.accept(
            Welcome(
                cp_instance_id=settings.instance_id,
                cp_version=settings.cp_version,
                heartbeat_interval_s=settings.heartbeat_interval_s,
                mesh=key.mesh,
                name=key.name,
                zone=settings.zone,
            )
        )
        self._conn.flush()
        log.info(
            "proxy connected",
            extra={
                "proxy": str(key),
                "peer": self.peer,
                "proxy_type": hello.proxy_type,
                "proxy_version": hello.version,
                "proxy_instance_id": hello.instance_id,
            },
        )
        self._last_write = time.monotonic()
        self._dirty.set()
        return True

    async def _serve(self) -> ConnectionClosed:
        while True:
            event = await self._conn.next_event()
            match event:
                case CertificateRequested():
                    assert self._certs is not None
                    if self._certs.on_request(event):
                        self._conn.flush()
                        await self.flush_insight(force=True)
                case ConfigAcked():
                    self._acked += 1
                    self._acked_version = event.version
                    self._dirty.set()  # the window has room again, in case a push waits for it
                case ConfigNacked():
                    self._nacked += 1
                    self._nacked_version, self._nack_reason = event.version, event.reason
                    log.warning(
                        "a proxy rejected its config",
                        extra={"proxy": str(self._key), "version": event.version, "reason": event.reason},
                    )
                    self._dirty.set()
                case HealthReported():
                    await self._on_health(event)
                case ConnectionClosed():
                    return event
                case _:
                    pass  # heartbeats need no answer; other kinds never reach a server
            self._conn.flush()

    async def _finish(self, closed: ConnectionClosed | None) -> None:
        key, sub = self._key, self._sub
        assert key is not None
        assert sub is not None
        graceful = closed is not None and closed.graceful
        self._shared.registry.release(
            key, self, deregister_instance=self._instance_label if graceful else None
        )
        with contextlib.suppress(StoreError):
            await self._shared.records.write_subscription(key, self._subscription(disconnected=True))
        log.info(
            "proxy disconnected",
            extra={
                "proxy": str(key),
                "peer": self.peer,
                "code": closed.code if closed else "internal_error",
                "reason": closed.reason if closed else "",
                "graceful": graceful,
            },
        )

    # -- configs ----------------------------------------------------------------------------------------

    async def _push_loop(self) -> None:
        try:
            await self._pushes()
        except Exception:
            # A bug in config generation must not leave the proxy connected without updates.
            log.exception("failed to push a proxy's config", extra={"proxy": str(self._key)})
            self._conn.close(CloseCode.INTERNAL_ERROR, "internal error in the zone control plane")

    async def _pushes(self) -> None:
        conn = self._conn
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not await conn.wait_writable():
                return
            if self._certs_dirty and self._certs is not None:
                self._certs_dirty = False
                if self._certs.recheck():
                    conn.flush()
                    await self.flush_insight(force=True)
            if self._config_dirty and conn.session.config_writable:
                self._config_dirty = False
                self._push_config()
            conn.flush()

    def _push_config(self) -> None:
        config = self._compute()
        if config is None or config.version == self._sent_version:
            return
        data = msgspec.msgpack.encode(config)
        self._conn.session.send_config(config.version, data)
        self._sent_version = config.version
        self._sent += 1

    def _compute(self) -> ProxyConfig | None:
        view, zone = self._shared.view, self._shared.settings.zone
        key = self._key
        assert key is not None
        # The view follows the store through its change events: right after registering, the resource
        # may not be in it yet; its change event marks this connection dirty again.
        resource = view.get(key)
        if resource is None:
            return None
        try:
            if key.type == "Dataplane":
                snapshot = view.snapshot(key.mesh)
                return None if snapshot is None else generate_sidecar(snapshot, zone, resource)
            if key.type == "ZoneIngress":
                return generate_ingress(view.snapshots(), zone, resource)
            return generate_egress(view.snapshots(), zone, resource)
        except ValueError as exc:
            if str(exc) != self._config_error:
                self._config_error = str(exc)
                log.warning("cannot compute a proxy's config", extra={"proxy": str(key), "error": str(exc)})
            return None

    # -- health and insight -----------------------------------------------------------------------------

    async def _on_health(self, event: HealthReported) -> None:
        assert self._key is not None
        if self._key.type != "Dataplane":
            return
        ready = {inbound.port: inbound.ready for inbound in event.inbounds}
        try:
            await self._shared.records.set_health(self._key, ready)
        except StoreError as exc:
            log.warning(
                "could not record a proxy's health", extra={"proxy": str(self._key), "error": str(exc)}
            )

    def _subscription(self, *, disconnected: bool = False) -> DiscoverySubscription:
        assert self._sub is not None
        now = self._shared.records.now()
        stats = ServiceStats(
            responses_sent=self._sent, responses_acknowledged=self._acked, responses_rejected=self._nacked
        )
        status = SubscriptionStatus(last_update_time=now, total=stats, stat={CONFIG_STAT: stats})
        self._sub = msgspec.structs.replace(
            self._sub,
            status=status,
            disconnect_time=now if disconnected else None,
            generation=self._sub.generation + 1,
        )
        return self._sub

    def _metadata(self) -> dict[str, Any]:
        hello = self._hello
        proxy = {"instanceId": hello.instance_id, "version": hello.version} if hello else {}
        config = {
            "sentVersion": self._sent_version,
            "ackedVersion": self._acked_version,
            "nackedVersion": self._nacked_version,
            "lastNackReason": self._nack_reason,
        }
        return {"proxy": proxy, "config": config}

    async def flush_insight(self, *, force: bool = False, refresh_after_s: float | None = None) -> None:
        """Write the subscription if its counters changed (or ``force``, or it was last written more than
        ``refresh_after_s`` ago: a sign of life for stale-entry sweeps). Raises nothing: errors are logged."""
        if self._key is None or self._sub is None or self._conn.closed:
            return
        counts = (self._sent, self._acked, self._nacked)
        due = refresh_after_s is not None and time.monotonic() - self._last_write >= refresh_after_s
        if not force and not due and counts == self._written_counts:
            return
        self._written_counts = counts
        self._last_write = time.monotonic()
        metadata = self._metadata() if self._key.type == "Dataplane" else None
        try:
            await self._shared.records.write_subscription(
                self._key,
                self._subscription(),
                mtls=self._certs.mtls if self._certs is not None else None,
                metadata=metadata,
            )
        except StoreError as exc:
            log.warning(
                "could not write a proxy's insight", extra={"proxy": str(self._key), "error": str(exc)}
            )
