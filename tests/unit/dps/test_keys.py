"""The proxy's key book: a fresh key per request, certificates matched to their keys, renewal times."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kmesh.dps import CertificateIssued
from kmesh.dps._keys import KeyBook


def issued(request_id: str, *, renew_at: float = 80.0, not_after: float = 100.0) -> CertificateIssued:
    return CertificateIssued(
        cert_pem=b"cert-" + request_id.encode(),
        ca_bundle_pem=b"ca",
        not_after=not_after,
        renew_at=renew_at,
        request_id=request_id,
        backend="ca-1",
    )


def public_key_of_csr(csr_pem: bytes) -> bytes:
    return (
        x509.load_pem_x509_csr(csr_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def public_key_of_pem(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_certificate_comes_with_the_key_of_its_request() -> None:
    book = KeyBook(service="web")
    rid, csr = book.new_request("default", now=0.0)
    assert book.pending("default")
    cert = book.receive(issued(rid), mesh="default")
    assert cert is not None
    assert public_key_of_pem(cert.key_pem) == public_key_of_csr(csr)
    assert "key_pem" not in repr(cert)
    assert book.certificate("default") is cert
    assert not book.pending("default")


def test_each_request_has_its_own_key() -> None:
    book = KeyBook(service="web")
    _, first = book.new_request("default", now=0.0)
    _, second = book.new_request("default", now=1.0)
    assert public_key_of_csr(first) != public_key_of_csr(second)


def test_an_unknown_request_id_is_ignored() -> None:
    book = KeyBook(service="web")
    book.new_request("default", now=0.0)
    assert book.receive(issued("someone-else"), mesh="default") is None
    assert book.certificate("default") is None


def test_renewal_falls_due_at_renew_at_and_retries_unanswered_requests() -> None:
    book = KeyBook(service="web", retry_s=10.0)
    meshes = {"default"}
    assert book.due(meshes, 0.0) == ["default"]
    rid, _ = book.new_request("default", now=0.0)
    assert book.due(meshes, 5.0) == []
    assert book.next_due(meshes) == 10.0, "an unanswered request is sent again after retry_s"
    book.receive(issued(rid, renew_at=80.0), mesh="default")
    assert book.next_due(meshes) == 80.0
    assert book.due(meshes, 79.9) == []
    assert book.due(meshes, 80.0) == ["default"]
    renewal, _ = book.new_request("default", now=80.0)
    assert book.next_due(meshes) == 90.0
    newer = book.receive(issued(renewal, renew_at=160.0, not_after=180.0), mesh="default")
    assert newer is not None
    assert book.next_due(meshes) == 160.0


def test_a_renewal_in_flight_keeps_its_key_when_an_older_certificate_is_resent() -> None:
    book = KeyBook(service="web")
    old, _ = book.new_request("default", now=0.0)
    book.receive(issued(old), mesh="default")
    pending, _ = book.new_request("default", now=80.0)
    # The server re-signs the older CSR (say, its CA changed) before answering the renewal.
    assert book.receive(issued(old), mesh="default") is not None
    assert book.receive(issued(pending), mesh="default") is not None


def test_a_final_refusal_drops_the_key_and_waits_before_asking_again() -> None:
    book = KeyBook(service="web", retry_s=10.0)
    rid, _ = book.new_request("default", now=0.0)
    book.refused(rid, retry=True)
    assert book.pending("default")
    book.refused(rid, retry=False)
    assert not book.pending("default")
    assert book.receive(issued(rid), mesh="default") is None
    assert book.due({"default"}, 5.0) == [], "no tight loop of refused requests"
    assert book.next_due({"default"}) == 10.0


def test_an_invalid_service_name_falls_back() -> None:
    book = KeyBook(service="not a service/")
    _, csr = book.new_request("default", now=0.0)
    parsed = x509.load_pem_x509_csr(csr)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://default/proxy"]
