"""A proxy joins its zone control plane over real TLS: it is registered, gets a certificate signed by the
mesh CA with the right names, and its insight shows it online; refusals say why."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kmesh.dps import DpClient
from kmesh.dps._admission import LABEL_PROXY_INSTANCE
from kmesh.kds import KdsGlobalServer
from kmesh.model.types import DataplaneInsightSpec, DataplaneSpec
from kmesh.pki import generate_self_signed_server_cert, identity_of
from kmesh.store import ResourceStore
from kmesh.wire import client_context, server_context

from .support import (
    CP_INSTANCE,
    ZONE,
    client,
    dataplane_doc,
    dp_key,
    dp_tls,
    get,
    insight_key,
    running,
    seed_mesh,
    server,
    until,
)


def _public_der(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def test_a_sidecar_joins_and_gets_a_certificate_of_the_mesh_ca(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    await dp_server.start()
    doc = dataplane_doc("web-1", "web", tags={"version": "v1"})
    proxy = client(dp_server.port, tls, doc, mesh.token(name="web-1"), instance_id="web-1-run-1")
    async with running(proxy):
        try:
            await until(lambda: proxy.certificate is not None, "a certificate")
            cert = proxy.certificate
            assert cert is not None
            assert proxy.welcome is not None
            assert (proxy.welcome.mesh, proxy.welcome.name, proxy.welcome.zone) == ("default", "web-1", ZONE)
            parsed = x509.load_pem_x509_certificate(cert.cert_pem)
            ca_cert = x509.load_pem_x509_certificate(mesh.ca.cert_pem)
            parsed.verify_directly_issued_by(ca_cert)  # raises unless the mesh CA signed it
            sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
                "spiffe://default/web",
                "kuma://kuma.io/service/web",
                f"kuma://kuma.io/zone/{ZONE}",
                "kuma://version/v1",
            ]
            assert _public_der(cert.key_pem) == parsed.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            assert cert.ca_bundle_pem == mesh.ca.cert_pem
            assert identity_of(cert.cert_pem).services == ("web",)
            assert cert.renew_at < cert.not_after

            stored = await get(store, dp_key("web-1"))
            assert stored is not None
            assert isinstance(stored.spec, DataplaneSpec)
            assert stored.meta.labels["kuma.io/zone"] == ZONE
            assert stored.meta.labels["kuma.io/origin"] == "zone"
            assert stored.meta.labels[LABEL_PROXY_INSTANCE] == "web-1-run-1"

            async def mtls_recorded() -> bool:
                insight = await get(store, insight_key("web-1"))
                return (
                    insight is not None
                    and isinstance(insight.spec, DataplaneInsightSpec)
                    and insight.spec.mtls is not None
                    and insight.spec.mtls.certificate_regenerations >= 1
                )

            await until(mtls_recorded, "the certificate in the insight")
            insight = await get(store, insight_key("web-1"))
            assert insight is not None
            assert isinstance(insight.spec, DataplaneInsightSpec)
            assert insight.meta.owner == dp_key("web-1")
            assert insight.spec.connected
            (sub,) = insight.spec.subscriptions
            assert sub.control_plane_instance_id == CP_INSTANCE
            mtls = insight.spec.mtls
            assert mtls is not None
            assert mtls.issued_backend == "ca-1"
            assert mtls.certificate_expiration_time == parsed.not_valid_after_utc
            assert dp_server.is_connected(dp_key("web-1"))
        finally:
            await dp_server.stop()


async def _refusal(store: ResourceStore, doc: dict[str, object], token: str) -> tuple[str, str]:
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy: DpClient = client(dp_server.port, tls, doc, token)
        async with running(proxy):
            await until(lambda: proxy.last_rejection is not None, "a refusal")
            assert proxy.welcome is None
            assert proxy.counters.established == 0
            rejection = proxy.last_rejection
    assert rejection is not None
    return rejection


async def test_a_bad_token_is_refused_with_a_reason(store: ResourceStore) -> None:
    await seed_mesh(store)
    code, reason = await _refusal(store, dataplane_doc("web-1", "web"), "not.a.token")
    assert code == "token_malformed"
    assert "not.a.token" not in reason
    assert await get(store, dp_key("web-1")) is None


async def test_a_token_of_another_mesh_is_refused(store: ResourceStore) -> None:
    await seed_mesh(store)
    other = await seed_mesh(store, "other")
    code, reason = await _refusal(store, dataplane_doc("web-1", "web"), other.token(name="web-1"))
    assert code == "token_mismatch"
    assert "token is for mesh 'other', but the dataplane is in mesh 'default'" in reason
    assert await get(store, dp_key("web-1")) is None


async def test_a_dataplane_whose_name_differs_from_its_token_is_refused(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    code, reason = await _refusal(store, dataplane_doc("web-2", "web"), mesh.token(name="web-1"))
    assert code == "token_mismatch"
    assert "token is for dataplane 'web-1', but this dataplane is 'web-2'" in reason
    assert await get(store, dp_key("web-2")) is None


async def test_a_dataplane_whose_tags_differ_from_its_token_is_refused(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    doc = dataplane_doc("web-1", "web", tags={"version": "v2"})
    code, reason = await _refusal(store, doc, mesh.token(tags={"version": "v1"}))
    assert code == "token_mismatch"
    assert "token allows only version=v1, but the dataplane has version: 'v2'" in reason


async def test_an_invalid_document_is_refused_with_its_field(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    doc = dataplane_doc("web-1", "web")
    doc["networking"]["inbound"][0]["port"] = 70000
    code, reason = await _refusal(store, doc, mesh.token())
    assert code == "bad_dataplane"
    assert "networking.inbound[0].port" in reason


async def test_a_proxy_that_dials_the_global_is_refused_with_a_reason(memory_store: ResourceStore) -> None:
    cert, key = generate_self_signed_server_cert(["localhost"], ["127.0.0.1"])
    glob = KdsGlobalServer(
        memory_store,
        host="127.0.0.1",
        port=0,
        ssl_context=server_context(cert, key),
        instance_id="global-1",
        cp_version="test",
    )
    await glob.start()
    try:
        proxy = DpClient(
            f"dps://127.0.0.1:{glob.port}",
            client_context(ca_pem=cert),
            dataplane_doc=dataplane_doc("web-1", "web"),
            token="t",
            server_hostname="localhost",
            backoff_initial_s=0.05,
            backoff_max_s=0.2,
        )
        async with running(proxy):
            await until(lambda: proxy.last_rejection is not None, "the global's refusal")
    finally:
        await glob.stop()
    assert proxy.last_rejection is not None
    code, reason = proxy.last_rejection
    assert code == "unsupported_protocol"
    assert "proxies must connect to their zone control plane" in reason
