"""A builtin CA as two mesh Secrets (Kuma's names), and a provided CA read from its data sources."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kmesh.model import Resource, new_resource, parse_resource, to_document, validate_resource
from kmesh.model.types import MeshSpec, SecretSpec
from kmesh.pki import (
    CaBundle,
    CaUnavailable,
    InvalidCa,
    backend_ca,
    ca_cert_secret_name,
    ca_from_secrets,
    ca_key_secret_name,
    ca_secrets,
    find_backend,
    generate_self_signed_server_cert,
    identity_of,
    key_to_pem,
    provided_ca,
    provided_files,
)

from .helpers import issue, make_ca_cert, mesh_spec, pem


def secret(name: str, value: bytes, *, mesh: str = "default") -> Resource:
    return new_resource("Secret", name, SecretSpec.from_bytes(value), mesh=mesh)


def through_a_document(resource: Resource) -> Resource:
    """The resource as it comes back after ``get -o yaml`` and ``apply``."""
    return parse_resource(to_document(resource))


def test_secret_names_follow_kuma() -> None:
    assert ca_cert_secret_name("default", "ca-1") == "default.ca-builtin-cert-ca-1"
    assert ca_key_secret_name("default", "ca-1") == "default.ca-builtin-key-ca-1"


def test_ca_secrets_hold_the_pem_as_base64(mesh_ca: CaBundle) -> None:
    cert_secret, key_secret = ca_secrets("default", "ca-1", mesh_ca)
    for resource, value in ((cert_secret, mesh_ca.cert_pem), (key_secret, mesh_ca.key_pem)):
        validate_resource(resource)
        assert (resource.meta.type, resource.meta.mesh) == ("Secret", "default")
        assert isinstance(resource.spec, SecretSpec)
        assert base64.b64decode(resource.spec.data) == value
    assert cert_secret.meta.name == "default.ca-builtin-cert-ca-1"
    assert key_secret.meta.name == "default.ca-builtin-key-ca-1"


def test_round_trip_through_the_store_format(mesh_ca: CaBundle) -> None:
    stored = [through_a_document(r) for r in ca_secrets("default", "ca-1", mesh_ca)]
    others = [secret("default.ca-builtin-cert-ca-2", b"x"), secret("unrelated", b"y")]
    assert ca_from_secrets([*others, *stored], "default", "ca-1") == mesh_ca


def test_a_ca_read_back_still_signs(mesh_ca: CaBundle) -> None:
    loaded = ca_from_secrets(ca_secrets("default", "ca-1", mesh_ca), "default", "ca-1")
    assert loaded is not None
    assert identity_of(issue(loaded)[0]).services == ("web",)


def test_no_secrets_means_no_ca_yet(mesh_ca: CaBundle) -> None:
    assert ca_from_secrets([], "default", "ca-1") is None
    elsewhere = ca_secrets("default", "ca-1", mesh_ca)
    assert ca_from_secrets(elsewhere, "default", "ca-2") is None
    assert ca_from_secrets(elsewhere, "other", "ca-1") is None


def test_half_a_ca_is_an_error_not_a_missing_ca(mesh_ca: CaBundle) -> None:
    cert_secret, key_secret = ca_secrets("default", "ca-1", mesh_ca)
    with pytest.raises(InvalidCa, match=re.escape("'default.ca-builtin-key-ca-1' is missing")):
        ca_from_secrets([cert_secret], "default", "ca-1")
    with pytest.raises(InvalidCa, match=re.escape("'default.ca-builtin-cert-ca-1' is missing")):
        ca_from_secrets([key_secret], "default", "ca-1")


def test_secrets_that_hold_no_ca_are_refused(mesh_ca: CaBundle, other_mesh_ca: CaBundle) -> None:
    mixed = [
        secret("default.ca-builtin-cert-ca-1", mesh_ca.cert_pem),
        secret("default.ca-builtin-key-ca-1", other_mesh_ca.key_pem),
    ]
    with pytest.raises(InvalidCa, match=r"mesh 'default', mTLS backend 'ca-1'.*does not belong"):
        ca_from_secrets(mixed, "default", "ca-1")


def test_broken_material_is_never_stored(mesh_ca: CaBundle, other_mesh_ca: CaBundle) -> None:
    with pytest.raises(InvalidCa):
        ca_secrets("default", "ca-1", CaBundle(cert_pem=mesh_ca.cert_pem, key_pem=other_mesh_ca.key_pem))


# --- provided CAs ---------------------------------------------------------------------------------------


def provided(cert: dict[str, str], key: dict[str, str]) -> MeshSpec:
    return mesh_spec(
        enabledBackend="ours",
        backends=[{"name": "ours", "type": "provided", "conf": {"cert": cert, "key": key}}],
    )


def test_provided_from_secrets(mesh_ca: CaBundle) -> None:
    spec = provided({"secret": "ca-cert"}, {"secret": "ca-key"})
    secrets = [secret("ca-cert", mesh_ca.cert_pem), secret("ca-key", mesh_ca.key_pem)]
    assert provided_ca(find_backend(spec, "ours"), secrets, mesh="default") == mesh_ca


def test_provided_inline_and_inline_string(mesh_ca: CaBundle) -> None:
    spec = provided(
        {"inline": base64.b64encode(mesh_ca.cert_pem).decode()}, {"inlineString": mesh_ca.key_pem.decode()}
    )
    assert provided_ca(find_backend(spec, "ours"), [], mesh="default") == mesh_ca


def test_provided_files_are_read_by_the_caller(mesh_ca: CaBundle) -> None:
    backend = find_backend(provided({"file": "/etc/ca/cert.pem"}, {"file": "/etc/ca/key.pem"}), "ours")
    assert provided_files(backend) == ["/etc/ca/cert.pem", "/etc/ca/key.pem"]
    with pytest.raises(CaUnavailable, match=r"conf.cert: file '/etc/ca/cert.pem' has not been read") as info:
        provided_ca(backend, [], mesh="default")
    assert info.value.code == "ca_unavailable"
    files = {"/etc/ca/cert.pem": mesh_ca.cert_pem, "/etc/ca/key.pem": mesh_ca.key_pem}
    assert provided_ca(backend, [], mesh="default", files=files) == mesh_ca


def test_a_missing_secret_is_unavailable_even_if_another_mesh_has_it(mesh_ca: CaBundle) -> None:
    backend = find_backend(provided({"secret": "ca-cert"}, {"inlineString": "x"}), "ours")
    in_other_mesh = [secret("ca-cert", mesh_ca.cert_pem, mesh="other")]
    with pytest.raises(
        CaUnavailable, match=re.escape("conf.cert: Secret 'ca-cert' does not exist in mesh 'default'")
    ):
        provided_ca(backend, in_other_mesh, mesh="default")


def test_a_provided_leaf_is_not_a_ca() -> None:
    cert, key = generate_self_signed_server_cert(["ca.example"], [])
    backend = find_backend(provided({"inlineString": cert.decode()}, {"inlineString": key.decode()}), "ours")
    with pytest.raises(InvalidCa, match=r"mesh 'default', mTLS backend 'ours': the certificate .* not a CA"):
        provided_ca(backend, [], mesh="default")


def test_a_provided_key_of_another_ca_is_refused(mesh_ca: CaBundle, other_mesh_ca: CaBundle) -> None:
    backend = find_backend(
        provided(
            {"inlineString": mesh_ca.cert_pem.decode()}, {"inlineString": other_mesh_ca.key_pem.decode()}
        ),
        "ours",
    )
    with pytest.raises(InvalidCa, match="does not belong to the certificate") as info:
        provided_ca(backend, [], mesh="default")
    assert other_mesh_ca.key_pem.decode().splitlines()[1] not in str(info.value)


def test_a_provided_intermediate_signs_and_its_chain_is_checked() -> None:
    root_key, inter_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = make_ca_cert(root_key, name="corp root")
    inter = make_ca_cert(inter_key, name="mesh intermediate", issuer=(root, root_key), path_length=0)
    chain = pem(inter) + pem(root)
    backend = find_backend(
        provided({"inlineString": chain.decode()}, {"inlineString": key_to_pem(inter_key).decode()}), "ours"
    )
    ca = provided_ca(backend, [], mesh="default")
    assert ca.cert_pem == chain
    cert_pem, _ = issue(ca)
    x509.load_pem_x509_certificate(cert_pem).verify_directly_issued_by(inter)
    # A chain that holds a non-CA certificate is refused, naming its position.
    leaf, _ = generate_self_signed_server_cert(["x.example"], [])
    bad = find_backend(
        provided(
            {"inlineString": (pem(inter) + leaf).decode()}, {"inlineString": key_to_pem(inter_key).decode()}
        ),
        "ours",
    )
    with pytest.raises(InvalidCa, match="certificate 1 of the chain has basicConstraints CA:FALSE"):
        provided_ca(bad, [], mesh="default")


def test_provided_ca_refuses_builtin_backends() -> None:
    spec = mesh_spec(enabledBackend="ca-1", backends=[{"name": "ca-1", "type": "builtin"}])
    with pytest.raises(ValueError, match="is builtin, not provided"):
        provided_ca(find_backend(spec, "ca-1"), [], mesh="default")


def test_backend_ca_reads_either_kind(mesh_ca: CaBundle, other_mesh_ca: CaBundle) -> None:
    spec = mesh_spec(
        enabledBackend="ca-1",
        backends=[
            {"name": "ca-1", "type": "builtin"},
            {"name": "ours", "type": "provided", "conf": {"cert": {"secret": "c"}, "key": {"secret": "k"}}},
        ],
    )
    secrets = [
        *ca_secrets("default", "ca-1", mesh_ca),
        secret("c", other_mesh_ca.cert_pem),
        secret("k", other_mesh_ca.key_pem),
    ]
    assert backend_ca(find_backend(spec, "ca-1"), secrets, mesh="default") == mesh_ca
    assert backend_ca(find_backend(spec, "ours"), secrets, mesh="default") == other_mesh_ca
    assert backend_ca(find_backend(spec, "ca-1"), [], mesh="default") is None
