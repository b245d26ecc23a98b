"""Workload identities: URI SANs built from services and tags, read back from certificates (property
tested over the names the model allows) and from ``getpeercert()`` dicts.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from kmesh.pki import (
    CaBundle,
    InvalidIdentity,
    generate_ca,
    generate_workload_key,
    identity_of,
    make_csr,
    parse_spiffe_id,
    sign_workload_csr,
    spiffe_id,
    spiffe_ids_from_peercert,
    workload_uris,
)

from .helpers import DAY_S, NOW, issue

MESHES = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?", fullmatch=True)
VALUES = st.from_regex(r"[A-Za-z0-9.\-_:]{1,40}", fullmatch=True)
TAG_NAMES = st.from_regex(r"[A-Za-z0-9.\-_:/]{1,40}", fullmatch=True)
TAGS = st.dictionaries(TAG_NAMES, st.lists(VALUES, max_size=4), max_size=5)


@pytest.fixture(scope="module")
def ca() -> CaBundle:
    return generate_ca("default", "ca-1", now=NOW)


@pytest.fixture(scope="module")
def csr() -> bytes:
    return make_csr(generate_workload_key(), mesh="default", service="web")


@settings(max_examples=60, deadline=None)
@given(mesh=MESHES, services=st.lists(VALUES, min_size=1, max_size=5), tags=TAGS)
def test_sans_round_trip_through_a_certificate(
    ca: CaBundle, csr: bytes, mesh: str, services: list[str], tags: Mapping[str, list[str]]
) -> None:
    cert = sign_workload_csr(csr, ca, mesh=mesh, services=services, tags=tags, now=NOW, valid_for_s=DAY_S)
    identity = identity_of(cert)
    assert identity.mesh == mesh
    assert identity.services == tuple(sorted(set(services)))
    assert identity.tags == {tag: frozenset(values) for tag, values in tags.items() if values}
    assert identity.spiffe_ids == tuple(f"spiffe://{mesh}/{s}" for s in sorted(set(services)))
    san = x509.load_pem_x509_certificate(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    in_cert = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert in_cert == workload_uris(mesh, services, tags)
    assert len(in_cert) == len(set(in_cert))


@given(mesh=MESHES, services=st.lists(VALUES, min_size=1, max_size=5), tags=TAGS)
def test_uri_order_is_canonical(mesh: str, services: list[str], tags: Mapping[str, list[str]]) -> None:
    uris = workload_uris(mesh, services, tags)
    spiffe = [u for u in uris if u.startswith("spiffe://")]
    kuma = [u for u in uris if u.startswith("kuma://")]
    assert uris == spiffe + kuma
    assert spiffe == sorted(spiffe)
    assert (
        workload_uris(mesh, list(reversed(services)), {t: list(reversed(v)) for t, v in tags.items()}) == uris
    )


@given(mesh=MESHES, service=VALUES)
def test_spiffe_id_round_trip(mesh: str, service: str) -> None:
    assert parse_spiffe_id(spiffe_id(mesh, service)) == (mesh, service)


def test_tag_names_with_slashes_split_at_the_last_one(ca: CaBundle) -> None:
    cert, _ = issue(ca, tags={"kuma.io/zone": ["east"], "a/b/c": ["d"]})
    assert identity_of(cert).tags == {"a/b/c": frozenset({"d"}), "kuma.io/zone": frozenset({"east"})}


def test_identity_of_reads_pem_der_and_parsed_certificates(ca: CaBundle) -> None:
    cert_pem, _ = issue(ca, service="web")
    parsed = x509.load_pem_x509_certificate(cert_pem)
    der = parsed.public_bytes(serialization.Encoding.DER)
    assert identity_of(cert_pem) == identity_of(der) == identity_of(parsed)


def hand_made(uris: list[str]) -> bytes:
    """A certificate carrying exactly ``uris``, as no kmesh CA would sign it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "hand made")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW.replace(year=NOW.year + 1))
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("uris", "message"),
    [
        ([], "no Subject Alternative Name"),
        (["https://example.com/"], "no spiffe://<mesh>/<service>"),
        (["spiffe://default"], "not a workload SPIFFE id"),
        (["spiffe://default/a/b"], "not a workload SPIFFE id"),
        (["spiffe://default/web", "spiffe://other/web"], "several meshes: default, other"),
        (["spiffe://default/web", "kuma://novalue"], "not a tag URI"),
        (["spiffe://default/web", "kuma://zone/"], "not a tag URI"),
    ],
)
def test_certificates_without_a_clean_identity_are_refused(uris: list[str], message: str) -> None:
    with pytest.raises(InvalidIdentity, match=message) as info:
        identity_of(hand_made(uris))
    assert info.value.code == "identity_invalid"


def test_foreign_uris_are_ignored() -> None:
    identity = identity_of(hand_made(["https://ops.example/ca", "spiffe://default/web"]))
    assert (identity.mesh, identity.services, dict(identity.tags)) == ("default", ("web",), {})


def test_garbage_is_no_certificate() -> None:
    with pytest.raises(InvalidIdentity, match=r"not an X\.509 certificate"):
        identity_of(b"\x30\x03\x02\x01\x00")


def test_spiffe_ids_from_a_getpeercert_dict() -> None:
    peercert = {
        "subject": (),
        "subjectAltName": (
            ("URI", "spiffe://default/web"),
            ("URI", "kuma://kuma.io/zone/east"),
            ("DNS", "spiffe://not-a-uri"),
            ("URI", "spiffe://default/api"),
        ),
    }
    assert spiffe_ids_from_peercert(peercert) == ["spiffe://default/web", "spiffe://default/api"]


@pytest.mark.parametrize(
    "peercert",
    [
        None,
        {},
        {"subject": ()},
        {"subjectAltName": "URI:spiffe://default/web"},
        {"subjectAltName": (("URI",),)},
    ],
)
def test_no_ids_from_an_empty_or_odd_peercert(peercert: dict[str, object] | None) -> None:
    assert spiffe_ids_from_peercert(peercert) == []


@pytest.mark.parametrize(
    ("mesh", "service"), [("", "web"), ("default", ""), ("-bad", "web"), ("default", "a/b"), ("m e", "web")]
)
def test_spiffe_id_refuses_names_that_would_not_parse_back(mesh: str, service: str) -> None:
    with pytest.raises(ValueError):
        spiffe_id(mesh, service)
