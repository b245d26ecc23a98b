"""Signing proxies' CSRs: the mesh's enabled CA, its trust bundle across backends, the names a certificate
carries, lifetimes and renewal times, and the refusals with their reasons."""

from __future__ import annotations

from cryptography import x509

from kmesh.dps._certs import CertProblem, Identity, Issued, MeshTrust, identity_for, issue, mesh_trust
from kmesh.model import Resource, parse_resource
from kmesh.pki import generate_workload_key, identity_of, make_csr

from .material import NOW, ZONE, ca, ca_secret_resources, dataplane_doc, egress_doc, ingress_doc, mesh

CA1 = ca()
CA2 = ca(backend="ca-2")
SECRETS = ca_secret_resources(bundle=CA1)


def csr() -> bytes:
    return make_csr(generate_workload_key(), mesh="default", service="web")


def trust(mesh_resource: Resource | None = None, secrets: list[Resource] | None = None) -> MeshTrust:
    found = mesh_trust("default", mesh_resource or mesh(), SECRETS if secrets is None else secrets, {})
    assert isinstance(found, MeshTrust), found
    return found


def test_a_sidecar_certificate_names_its_services_and_tags() -> None:
    dataplane = parse_resource(dataplane_doc(tags={"version": "v1"}))
    identity = identity_for(dataplane, ZONE, "")
    assert identity == Identity(
        "default",
        ("web",),
        {
            "kuma.io/service": frozenset({"web"}),
            "kuma.io/zone": frozenset({ZONE}),
            "version": frozenset({"v1"}),
        },
    )
    assert isinstance(identity, Identity)
    issued = issue(trust(), identity, csr(), now=NOW)
    assert isinstance(issued, Issued)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://default/web",
        "kuma://kuma.io/service/web",
        f"kuma://kuma.io/zone/{ZONE}",
        "kuma://version/v1",
    ]
    assert identity_of(issued.cert_pem).mesh == "default"
    assert issued.bundle_pem == CA1.cert_pem
    assert issued.backend == "ca-1"
    # 24 h by default, renewed at 4/5 of the validity (which starts a little before now).
    assert (issued.not_after - NOW).total_seconds() == 24 * 3600
    life = issued.not_after - issued.not_before
    assert issued.renew_at == issued.not_before + life * 4 // 5


def test_the_lifetime_follows_dp_cert_rotation() -> None:
    short = mesh(
        backends=[{"name": "ca-1", "type": "builtin", "dpCert": {"rotation": {"expiration": "10s"}}}]
    )
    identity = identity_for(parse_resource(dataplane_doc()), ZONE, "")
    assert isinstance(identity, Identity)
    issued = issue(trust(short), identity, csr(), now=NOW)
    assert isinstance(issued, Issued)
    assert (issued.not_after - NOW).total_seconds() == 10


def test_the_bundle_trusts_every_backend_with_a_known_ca() -> None:
    two = mesh(
        enabled="ca-2", backends=[{"name": "ca-1", "type": "builtin"}, {"name": "ca-2", "type": "builtin"}]
    )
    secrets = SECRETS + ca_secret_resources(backend="ca-2", bundle=CA2)
    found = trust(two, secrets)
    assert found.backend == "ca-2"
    assert found.bundle_pem == CA2.cert_pem + CA1.cert_pem
    assert found.backends == ("ca-1", "ca-2")
    # Switching the enabled backend changes the fingerprint, so the server re-signs.
    assert found.fingerprint != trust(mesh(), SECRETS).fingerprint
    assert trust(mesh(), SECRETS).fingerprint == trust(mesh(), SECRETS).fingerprint


def test_missing_material_is_a_retryable_problem_with_a_reason() -> None:
    missing = mesh_trust("default", mesh(), [], {})
    assert (
        missing == CertProblem(missing.code, missing.reason, True)
        if isinstance(missing, CertProblem)
        else False
    )
    assert isinstance(missing, CertProblem)
    assert missing.code == "ca_unavailable"
    assert missing.retry
    assert "'ca-1'" in missing.reason
    half = mesh_trust("default", mesh(), SECRETS[:1], {})
    assert isinstance(half, CertProblem)
    assert half.code == "ca_invalid"
    assert half.retry
    plain = mesh_trust("default", mesh(enabled=None), SECRETS, {})
    assert isinstance(plain, CertProblem)
    assert plain.code == "mtls_disabled"
    assert plain.retry
    gone = mesh_trust("default", None, SECRETS, {})
    assert isinstance(gone, CertProblem)
    assert gone.code == "mesh_not_found"


def test_a_bad_csr_is_refused_for_good() -> None:
    identity = identity_for(parse_resource(dataplane_doc()), ZONE, "")
    assert isinstance(identity, Identity)
    problem = issue(trust(), identity, b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n", now=NOW)
    assert isinstance(problem, CertProblem)
    assert problem.code == "csr_invalid"
    assert not problem.retry


def test_zone_proxies_get_what_they_terminate() -> None:
    egress = parse_resource(egress_doc())
    assert identity_for(egress, ZONE, "default") == Identity("default", ("zone-egress",), {})
    unnamed = identity_for(egress, ZONE, "")
    assert isinstance(unnamed, CertProblem)
    assert not unnamed.retry
    ingress = identity_for(parse_resource(ingress_doc()), ZONE, "default")
    assert isinstance(ingress, CertProblem)
    assert ingress.code == "no_certificate_needed"
    sidecar_elsewhere = identity_for(parse_resource(dataplane_doc()), ZONE, "other")
    assert isinstance(sidecar_elsewhere, CertProblem)
    assert "gets no certificate of mesh 'other'" in sidecar_elsewhere.reason


def test_an_expired_ca_is_retryable() -> None:
    identity = identity_for(parse_resource(dataplane_doc()), ZONE, "")
    assert isinstance(identity, Identity)
    later = NOW.replace(year=NOW.year + 20)
    problem = issue(trust(), identity, csr(), now=later)
    assert isinstance(problem, CertProblem)
    assert problem.code == "ca_invalid"
    assert problem.retry
