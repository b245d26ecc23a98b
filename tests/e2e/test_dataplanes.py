"""Dataplanes on real processes (issue 4): a global ``kmesh-cp`` and two zone control planes, with in-process
``DpClient`` proxies joining the zones' DP servers over TLS (trusting the ``dp-ca.pem`` each zone wrote
beside its store) with dataplane tokens made through the global's ``POST /tokens/dataplane``.

What is checked:
- the builtin CA of a Mesh applied on the global reaches both zones, the same bytes everywhere;
- proxies of both zones get certificates naming them (``spiffe://<mesh>/<service>``, ``kuma://<tag>/<value>``)
  with the configured lifetime, signed by that CA, and renewed: every ``renew_at`` the zone sent is 4/5 of
  its certificate's life;
- proxies are refused, with a reason naming the mismatch, for a garbage token, a token of another mesh, and
  a Dataplane whose name or tags differ from its token's;
- a proxy of zone-a calling a service that runs only in zone-b gets zone-b's ingress as the endpoint, its
  weight the number of healthy instances behind it, as zone-b's DP server counts them;
- a zone control plane stopped (SIGTERM) or killed (SIGKILL): its proxies keep their last config while it is
  down, then reconnect and get the next change.

Waits are bounded polls on the event loop (the proxies run on it); nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from cryptography import x509

from kmesh.dps import DP_CA_FILE, Certificate, DpClient
from kmesh.pki import identity_of
from kmesh.proxyconfig import Cluster as ProxyCluster
from kmesh.proxyconfig import ProxyConfig
from kmesh.wire import client_context

from .support import ZONE_A, ZONE_B, Api, Cluster, dp_port_of, eventually, eventually_async

MESH: Final = "dps"
OTHER_MESH: Final = "dps-other"
BACKEND: Final = "ca-1"
EXPIRATION_S: Final = 6  # dpCert.rotation.expiration of the mesh, short so that renewals happen in the test
ZONES: Final = (ZONE_A, ZONE_B)
CA_CERT_SECRET: Final = f"{MESH}.ca-builtin-cert-{BACKEND}"
CA_KEY_SECRET: Final = f"{MESH}.ca-builtin-key-{BACKEND}"


# -- resources and tokens -----------------------------------------------------------------------------------


def mesh_doc() -> dict[str, Any]:
    backend = {"name": BACKEND, "type": "builtin", "dpCert": {"rotation": {"expiration": f"{EXPIRATION_S}s"}}}
    return {"type": "Mesh", "name": MESH, "mtls": {"enabledBackend": BACKEND, "backends": [backend]}}


def dataplane(
    name: str,
    service: str,
    *,
    port: int = 8080,
    tags: dict[str, str] | None = None,
    outbounds: dict[str, int] | None = None,
) -> dict[str, Any]:
    networking: dict[str, Any] = {
        "address": "127.0.0.1",
        "inbound": [{"port": port, "tags": {"kuma.io/service": service, **(tags or {})}}],
    }
    if outbounds:
        networking["outbound"] = [{"port": p, "tags": {"kuma.io/service": s}} for s, p in outbounds.items()]
    return {"type": "Dataplane", "mesh": MESH, "name": name, "networking": networking}


def token(
    mz: Cluster, *, mesh: str = MESH, name: str | None = None, tags: dict[str, str] | None = None
) -> str:
    """A dataplane token made through the global's API."""
    body: dict[str, Any] = {"mesh": mesh, "validFor": "1h"}
    if name is not None:
        body["name"] = name
    if tags is not None:
        body["tags"] = {tag: [value] for tag, value in tags.items()}
    status, issued = mz.g.request("POST", "/tokens/dataplane", body)
    assert status == 200, f"POST /tokens/dataplane {body}: {status} {issued}"
    assert isinstance(issued, str)
    return issued


def permission(name: str, caller: str) -> dict[str, Any]:
    """Allows ``caller`` into every proxy of the mesh: a change of every proxy's inbound config."""
    return {
        "type": "MeshTrafficPermission",
        "mesh": MESH,
        "name": name,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "MeshService", "name": caller}, "default": {"action": "Allow"}}],
        },
    }


def secret_bytes(api: Api, name: str, mesh: str = MESH) -> bytes:
    doc = api.ok(f"/meshes/{mesh}/secrets/{name}")
    data = doc.get("data")
    assert isinstance(data, str), f"secret {name}: no data in {doc}"
    assert data, f"secret {name}: empty data"
    return base64.b64decode(data)


# -- proxies ------------------------------------------------------------------------------------------------


def proxy(mz: Cluster, zone: str, doc: dict[str, Any], dp_token: str, **kwargs: Any) -> DpClient:
    """An in-process proxy of ``zone``, trusting the DP server certificate the zone exported."""
    cp = mz.zones[zone]
    return DpClient(
        f"dps://127.0.0.1:{dp_port_of(cp)}",
        client_context(ca_file=str(cp.data_dir / DP_CA_FILE)),
        dataplane_doc=doc,
        token=dp_token,
        server_hostname="localhost",
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(*clients: DpClient) -> AsyncIterator[None]:
    """Start the proxies; close them (deregistering) whatever happens."""
    started: list[DpClient] = []
    try:
        for client in clients:
            await client.start()
            started.append(client)
        yield
    finally:
        for client in reversed(started):
            await client.close()


def config_of(client: DpClient) -> ProxyConfig:
    config = client.current_config
    assert config is not None, f"no config yet; last error: {client.last_error}"
    return config


def certificate_of(client: DpClient) -> Certificate:
    cert = client.certificate
    assert cert is not None, (
        f"no certificate; last error {client.last_error}, {client.last_certificate_error}"
    )
    return cert


def issued_by(cert_pem: bytes, ca_pem: bytes) -> None:
    """Raises (cryptography's InvalidSignature or ValueError) unless ``ca_pem`` signed ``cert_pem``."""
    x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))


# -- the mesh -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshCa:
    cert_pem: bytes
    key_pem: bytes


@pytest.fixture(scope="module")
def mesh_ca(cluster: Cluster) -> MeshCa:
    """The module's mTLS mesh (and a second mesh, for tokens of another mesh), applied on the global, once
    both zones hold the mesh CA the global made."""
    cluster.ensure_healthy()
    cluster.g.put_ok(f"/meshes/{MESH}", mesh_doc())
    cluster.g.put_ok(f"/meshes/{OTHER_MESH}", {"type": "Mesh", "name": OTHER_MESH})

    def made() -> MeshCa:
        return MeshCa(secret_bytes(cluster.g, CA_CERT_SECRET), secret_bytes(cluster.g, CA_KEY_SECRET))

    ca = eventually(made, "the mesh CA on the global")

    def in_zones() -> None:
        for zone in ZONES:
            api = cluster.api(zone)
            assert secret_bytes(api, CA_CERT_SECRET) == ca.cert_pem, f"CA certificate in {zone}"
            assert secret_bytes(api, CA_KEY_SECRET) == ca.key_pem, f"CA key in {zone}"
            assert api.get(f"/meshes/{OTHER_MESH}")[0] == 200, f"{OTHER_MESH} in {zone}"

    eventually(in_zones, "the mesh CA in both zones")
    return ca


# -- tests --------------------------------------------------------------------------------------------------


def test_the_mesh_ca_made_on_the_global_is_held_by_both_zones(mz: Cluster, mesh_ca: MeshCa) -> None:
    ca = x509.load_pem_x509_certificate(mesh_ca.cert_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert b"PRIVATE KEY" in mesh_ca.key_pem
    for zone in ZONES:
        assert secret_bytes(mz.api(zone), CA_CERT_SECRET) == mesh_ca.cert_pem
        assert secret_bytes(mz.api(zone), CA_KEY_SECRET) == mesh_ca.key_pem


async def test_proxies_of_both_zones_get_mesh_certificates_renewed_at_four_fifths(
    mz: Cluster, mesh_ca: MeshCa
) -> None:
    received: dict[str, list[Certificate]] = {ZONE_A: [], ZONE_B: []}
    specs = {ZONE_A: ("cert-a-1", "cert-web", "v1"), ZONE_B: ("cert-b-1", "cert-api", "v2")}
    clients = {
        zone: proxy(
            mz,
            zone,
            dataplane(name, service, tags={"version": version}),
            token(mz, name=name, tags={"kuma.io/service": service, "version": version}),
            on_certificate=received[zone].append,
        )
        for zone, (name, service, version) in specs.items()
    }
    async with running(*clients.values()):
        for zone, client in clients.items():
            name, service, version = specs[zone]
            cert = await eventually_async(lambda c=client: certificate_of(c), f"a certificate in {zone}")
            welcome = client.welcome
            assert welcome is not None
            assert (welcome.zone, welcome.mesh, welcome.name) == (zone, MESH, name)
            parsed = x509.load_pem_x509_certificate(cert.cert_pem)
            uris = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert set(uris.get_values_for_type(x509.UniformResourceIdentifier)) >= {
                f"spiffe://{MESH}/{service}",
                f"kuma://version/{version}",
            }
            identity = identity_of(cert.cert_pem)
            assert (identity.mesh, identity.services) == (MESH, (service,))
            assert identity.tags.get("version") == frozenset({version})
            # The configured lifetime, plus at most a tenth back-dated, at X.509's whole seconds.
            lifetime = (identity.not_after - identity.not_before).total_seconds()
            assert EXPIRATION_S <= lifetime <= EXPIRATION_S * 1.1 + 1, lifetime
            issued_by(cert.cert_pem, mesh_ca.cert_pem)
            assert mesh_ca.cert_pem in cert.ca_bundle_pem

        # With a lifetime of seconds, each proxy renews twice while we watch.
        for zone, client in clients.items():
            await eventually_async(
                lambda c=client: _at_least(c.counters.certificates, 3), f"two renewals in {zone}"
            )
        for zone, certs in received.items():
            assert len(certs) >= 3, zone
            serials = {x509.load_pem_x509_certificate(c.cert_pem).serial_number for c in certs}
            assert len(serials) == len(certs), f"{zone}: a renewal repeated a certificate"
            assert len({c.key_pem for c in certs}) == len(certs), f"{zone}: a renewal reused a key"
            for cert in certs:
                issued_by(cert.cert_pem, mesh_ca.cert_pem)
                identity = identity_of(cert.cert_pem)
                not_before, not_after = identity.not_before.timestamp(), identity.not_after.timestamp()
                assert cert.not_after == pytest.approx(not_after, abs=1e-6)
                expected_renewal = not_before + (not_after - not_before) * 4 / 5
                assert cert.renew_at == pytest.approx(expected_renewal, abs=1e-3), (
                    f"{zone}: renew_at {cert.renew_at} for a certificate of {not_before}..{not_after}"
                )


def _at_least(value: int, wanted: int) -> None:
    assert value >= wanted, f"{value} < {wanted}"


@pytest.mark.parametrize(
    ("case", "doc_name", "doc_service", "token_claims", "code", "reason_parts"),
    [
        pytest.param(
            "garbage",
            "ref-garbage",
            "ref",
            {"mesh": MESH},
            "token_malformed",
            ("not a signed token",),
            id="garbage-token",
        ),
        pytest.param(
            "other-mesh",
            "ref-mesh",
            "ref",
            {"mesh": OTHER_MESH},
            "token_mismatch",
            (f"token is for mesh '{OTHER_MESH}'", f"the dataplane is in mesh '{MESH}'"),
            id="token-of-another-mesh",
        ),
        pytest.param(
            "name",
            "ref-name",
            "ref",
            {"mesh": MESH, "name": "ref-someone-else"},
            "token_mismatch",
            ("token is for dataplane 'ref-someone-else'", "this dataplane is 'ref-name'"),
            id="name-differs",
        ),
        pytest.param(
            "tags",
            "ref-tags",
            "ref",
            {"mesh": MESH, "tags": {"kuma.io/service": "ref-other"}},
            "token_mismatch",
            ("token allows only kuma.io/service=ref-other", "the dataplane has kuma.io/service: 'ref'"),
            id="tags-differ",
        ),
    ],
)
async def test_a_proxy_is_refused_with_the_reason(
    mz: Cluster,
    mesh_ca: MeshCa,
    case: str,
    doc_name: str,
    doc_service: str,
    token_claims: dict[str, Any],
    code: str,
    reason_parts: tuple[str, ...],
) -> None:
    dp_token = "not-a-token" if case == "garbage" else token(mz, **token_claims)
    client = proxy(mz, ZONE_A, dataplane(doc_name, doc_service), dp_token)
    async with running(client):

        def refused() -> tuple[str, str]:
            assert client.last_rejection is not None, f"not refused yet; last error {client.last_error}"
            return client.last_rejection

        got_code, reason = await eventually_async(refused, "the refusal")
        assert got_code == code
        missing = [part for part in reason_parts if part not in reason]
        assert not missing, f"reason {reason!r} does not say {missing}"
        # The proxy logs the refusal with its reason, and never the token.
        assert client.last_error == f"{code}: {reason}"
        assert client.counters.established == 0
        assert client.certificate is None
        assert client.current_config is None
    assert mz.api(ZONE_A).get(f"/meshes/{MESH}/dataplanes/{doc_name}")[0] == 404


async def test_a_service_only_in_the_other_zone_is_reached_through_its_ingress_weighted_by_instances(
    mz: Cluster, mesh_ca: MeshCa
) -> None:
    del mesh_ca
    b = mz.api(ZONE_B)
    ingress = {
        "type": "ZoneIngress",
        "name": "xz-ingress-b",
        "networking": {
            "address": "127.0.0.1",
            "port": 10001,
            "advertisedAddress": "203.0.113.20",
            "advertisedPort": 10443,
        },
    }
    b.put_ok("/zoneingresses/xz-ingress-b", ingress)
    service = "xz-backend"
    backends = [
        proxy(
            mz,
            ZONE_B,
            dataplane(f"xz-backend-{i}", service, port=9000 + i),
            token(mz, name=f"xz-backend-{i}", tags={"kuma.io/service": service}),
        )
        for i in (1, 2)
    ]
    for i, client in enumerate(backends, start=1):
        client.set_inbound_health(9000 + i, True)
    front = proxy(
        mz,
        ZONE_A,
        dataplane("xz-front-1", "xz-front", outbounds={service: 20001}),
        token(mz, name="xz-front-1", tags={"kuma.io/service": "xz-front"}),
    )

    def advertised() -> int:
        doc = b.ok("/zoneingresses/xz-ingress-b")
        counts = [
            s["instances"]
            for s in doc.get("availableServices") or []
            if s.get("mesh") == MESH and s.get("tags", {}).get("kuma.io/service") == service
        ]
        assert counts, f"ingress advertises no {service}: {doc}"
        return int(sum(counts))

    def remote_cluster(instances: int) -> ProxyCluster:
        config = config_of(front)
        clusters = [c for c in config.clusters if c.service == service]
        assert len(clusters) == 1, f"clusters of {service}: {clusters}; notes {config.notes}"
        cluster = clusters[0]
        assert cluster.mtls
        assert [(e.address, e.port, e.zone, e.via) for e in cluster.endpoints] == [
            ("203.0.113.20", 10443, ZONE_B, "ingress")
        ], cluster.endpoints
        weight = cluster.endpoints[0].weight
        assert weight == instances * cluster.weight_scale, f"weight {weight} for {instances} instances"
        return cluster

    try:
        async with running(*backends, front):
            await eventually_async(lambda: _equal(advertised(), 2), "zone-b's ingress to count 2")
            cluster = await eventually_async(
                lambda: remote_cluster(2), "zone-a's cluster via zone-b's ingress"
            )
            assert cluster.endpoints[0].sni is not None
            assert cluster.endpoints[0].spiffe_id == f"spiffe://{MESH}/{service}"
            # One instance turns unready: zone-b counts one, and zone-a weighs zone-b's ingress by one.
            backends[1].set_inbound_health(9002, False)
            await eventually_async(lambda: _equal(advertised(), 1), "zone-b's ingress to count 1")
            await eventually_async(lambda: remote_cluster(1), "zone-a's weight to follow")
    finally:
        b.delete("/zoneingresses/xz-ingress-b")


def _equal(value: int, wanted: int) -> int:
    assert value == wanted, f"{value} != {wanted}"
    return value


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_proxies_keep_their_config_while_their_zone_cp_restarts_then_resync(
    mz: Cluster, mesh_ca: MeshCa, sig: signal.Signals
) -> None:
    del mesh_ca
    tag = sig.name.lower()
    name = f"rs-{tag}-1"
    client = proxy(
        mz,
        ZONE_A,
        dataplane(name, f"rs-{tag}"),
        token(mz, name=name, tags={"kuma.io/service": f"rs-{tag}"}),
    )
    cp = mz.zones[ZONE_A]
    async with running(client):
        before = await eventually_async(lambda: config_of(client), "a first config")
        before_version = before.version
        await eventually_async(lambda: certificate_of(client), "a certificate")
        applied = client.counters.configs_applied
        established = client.counters.established

        await asyncio.to_thread(cp.stop, sig)
        await eventually_async(lambda: _false(client.connected), "the proxy to notice")
        dials = client.counters.dials
        # Down for a while: the proxy keeps dialling in vain and keeps what it had.
        await eventually_async(lambda: _at_least(client.counters.dials, dials + 3), "failed redials")
        assert client.current_config is before
        assert client.counters.configs_applied == applied
        assert client.counters.established == established
        assert client.last_error is not None
        assert client.last_error.startswith("connect_failed: "), client.last_error

        await asyncio.to_thread(cp.start)
        await eventually_async(lambda: _true(client.connected), "the proxy to reconnect")
        assert client.counters.established > established
        await asyncio.to_thread(mz.wait_online, ZONE_A)

        caller = f"rs-caller-{tag}"
        mz.g.put_ok(
            f"/meshes/{MESH}/meshtrafficpermissions/rs-allow-{tag}", permission(f"rs-allow-{tag}", caller)
        )

        def resynced() -> ProxyConfig:
            config = config_of(client)
            assert config.version != before_version, "still the config from before the restart"
            allowed = {i for inbound in config.inbounds for i in inbound.allowed_spiffe_ids}
            assert f"spiffe://{MESH}/{caller}" in allowed, allowed
            return config

        await eventually_async(resynced, "the change made after the restart")
        assert client.counters.configs_applied > applied


def _false(value: bool) -> None:
    assert not value


def _true(value: bool) -> None:
    assert value
