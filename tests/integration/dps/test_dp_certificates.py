"""Certificates when the mesh's CA material changes: a CSR waits for a CA that has not reached the zone
(``ca_unavailable``) or for mTLS to be enabled, and gets its certificate unasked once the store has it; a
switch of the enabled backend re-signs every proxy's certificate with the new CA and a bundle trusting both.
Also the DP server's own certificate, made once and kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from kmesh.dps import DP_CA_FILE, ensure_dp_server_tls
from kmesh.model import ResourceKey, parse_resource
from kmesh.pki import ca_secrets, generate_ca
from kmesh.store import ResourceStore

from .support import client, dataplane_doc, dp_tls, running, seed_mesh, server, until


def _issuer_ok(cert_pem: bytes, ca_pem: bytes) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca_pem)
        )
    except (ValueError, TypeError):
        return False
    return True


async def test_a_csr_waits_for_the_ca_and_is_signed_when_it_arrives(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    # As if KDS had not brought the CA yet: remove its Secrets.
    for name in ("default.ca-builtin-cert-ca-1", "default.ca-builtin-key-ca-1"):
        await store.delete(ResourceKey("Secret", name, "default"))
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        async with running(proxy):
            await until(lambda: proxy.last_certificate_error is not None, "the refusal")
            assert proxy.last_certificate_error is not None
            code, reason = proxy.last_certificate_error
            assert code == "ca_unavailable"
            assert "mTLS backend 'ca-1' of mesh 'default'" in reason
            assert not proxy.certificates
            await until(lambda: proxy.current_config is not None, "a config without a certificate")
            for secret in ca_secrets("default", "ca-1", mesh.ca):
                await store.create(secret)
            await until(lambda: proxy.certificate is not None, "the certificate, unasked")
            cert = proxy.certificate
            assert cert is not None
            assert _issuer_ok(cert.cert_pem, mesh.ca.cert_pem)
            await until(lambda: proxy.last_certificate_error is None, "the refusal forgotten")


async def test_enabling_mtls_sends_the_waiting_certificate(store: ResourceStore) -> None:
    mesh = await seed_mesh(store, mtls=False)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        async with running(proxy):
            await until(lambda: proxy.last_certificate_error is not None, "the refusal")
            assert proxy.last_certificate_error is not None
            assert proxy.last_certificate_error[0] == "mtls_disabled"
            await until(lambda: proxy.current_config is not None, "a config without mTLS")
            config = proxy.current_config
            assert config is not None
            assert not config.mtls_enabled
            current = await store.get(ResourceKey("Mesh", "default"))
            enabled = parse_resource(
                {
                    "type": "Mesh",
                    "name": "default",
                    "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
                }
            )
            await store.update(enabled, expected_version=current.meta.version)
            await until(lambda: proxy.certificate is not None, "the certificate once mTLS is on")
            await until(
                lambda: proxy.current_config is not None and proxy.current_config.mtls_enabled, "mTLS config"
            )


async def test_switching_the_backend_re_signs_with_a_bundle_trusting_both(store: ResourceStore) -> None:
    mesh = await seed_mesh(store)
    tls = await dp_tls(store)
    dp_server = server(store, tls)
    async with running(dp_server):
        proxy = client(dp_server.port, tls, dataplane_doc("web-1", "web"), mesh.token())
        async with running(proxy):
            await until(lambda: proxy.certificate is not None, "the first certificate")
            first = proxy.certificate
            assert first is not None
            assert first.backend == "ca-1"
            second_ca = generate_ca("default", "ca-2", now=datetime.now(UTC))
            for secret in ca_secrets("default", "ca-2", second_ca):
                await store.create(secret)
            current = await store.get(ResourceKey("Mesh", "default"))
            switched = parse_resource(
                {
                    "type": "Mesh",
                    "name": "default",
                    "mtls": {
                        "enabledBackend": "ca-2",
                        "backends": [
                            {"name": "ca-1", "type": "builtin"},
                            {"name": "ca-2", "type": "builtin"},
                        ],
                    },
                }
            )
            await store.update(switched, expected_version=current.meta.version)
            await until(
                lambda: proxy.certificate is not None and proxy.certificate.backend == "ca-2", "re-signed"
            )
            cert = proxy.certificate
            assert cert is not None
            assert _issuer_ok(cert.cert_pem, second_ca.cert_pem)
            assert cert.ca_bundle_pem == second_ca.cert_pem + mesh.ca.cert_pem
            assert cert.key_pem == first.key_pem, "re-signing the last CSR keeps the proxy's key"


async def test_the_dp_server_certificate_is_made_once_and_exported(
    store: ResourceStore, tmp_path: Path
) -> None:
    cert, key = await ensure_dp_server_tls(store, hostnames=["cp.zone-1.example"], export_dir=str(tmp_path))
    again, again_key = await ensure_dp_server_tls(store, export_dir=str(tmp_path))
    assert (again, again_key) == (cert, key)
    assert (tmp_path / DP_CA_FILE).read_bytes() == cert
    parsed = x509.load_pem_x509_certificate(cert)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "cp.zone-1.example" in names.get_values_for_type(x509.DNSName)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert b"PRIVATE KEY" not in (tmp_path / DP_CA_FILE).read_bytes()
