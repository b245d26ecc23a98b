"""Signing keys and key sets: PEM round trips, key ids, refusal of unusable keys, rotation order."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kmesh.tokens import KeySet, SigningKey, generate_signing_key, issue_zone_token

from .helpers import HOUR, NOW, split


def test_pem_round_trip_keeps_the_key_and_its_id(key: SigningKey) -> None:
    pem = key.private_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.from_pem(pem)
    assert loaded == key
    assert loaded.kid == key.kid
    assert SigningKey.from_pem(pem.decode("ascii")) == key


def test_the_key_id_is_a_hash_of_the_public_key(key: SigningKey) -> None:
    der = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")
    assert key.kid == expected
    assert len(key.kid) == 16


def test_distinct_keys_have_distinct_ids_and_are_unequal(key: SigningKey, other_key: SigningKey) -> None:
    assert key.kid != other_key.kid
    assert key != other_key
    assert key != "not a key"
    assert len({key, SigningKey.from_pem(key.private_pem()), other_key}) == 2


def test_the_public_pem_verifies_what_the_key_signs(key: SigningKey) -> None:
    public = serialization.load_pem_public_key(key.public_pem())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = key.private_key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    public.verify(signature, b"data", ec.ECDSA(hashes.SHA256()))


def test_a_sec1_pem_loads(key: SigningKey) -> None:
    sec1 = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert SigningKey.from_pem(sec1) == key


def test_repr_never_shows_key_material(key: SigningKey) -> None:
    body = b"".join(key.private_pem().splitlines()[1:-1]).decode()
    assert repr(key) == f"SigningKey(kid={key.kid!r})"
    assert body[:20] not in repr(KeySet([key]))


@pytest.mark.parametrize(
    "make_pem",
    [
        pytest.param(
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            id="rsa",
        ),
        pytest.param(
            lambda: ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            id="ed25519",
        ),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            id="p384",
        ),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
            id="encrypted",
        ),
        pytest.param(
            lambda: b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", id="junk"
        ),
        pytest.param(lambda: generate_signing_key().public_pem(), id="public-only"),
    ],
)
def test_unusable_pems_are_refused(make_pem: Callable[[], bytes]) -> None:
    pem = make_pem()
    with pytest.raises(ValueError) as info:
        SigningKey.from_pem(pem)
    assert pem.decode("ascii", "replace")[40:60] not in str(info.value)


def test_a_key_set_signs_with_its_newest_key(key: SigningKey, other_key: SigningKey) -> None:
    ks = KeySet([key, other_key])
    assert ks.signing_key is other_key
    assert ks.kids == (key.kid, other_key.kid)
    token = issue_zone_token(ks, zone="z", valid_for_s=HOUR, now=NOW)
    assert split(token)[0]["kid"] == other_key.kid


def test_rotation_and_retirement_build_new_sets(key: SigningKey, other_key: SigningKey) -> None:
    one = KeySet([key])
    two = one.rotated(other_key)
    assert list(one) == [key]
    assert list(two) == [key, other_key]
    assert key.kid in two
    assert two.get(other_key.kid) is other_key
    retired = two.without(key.kid)
    assert list(retired) == [other_key]
    assert key.kid not in retired
    assert retired.get(key.kid) is None
    with pytest.raises(KeyError):
        retired.without(key.kid)


def test_a_key_given_twice_is_refused(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="twice"):
        KeySet([key, SigningKey.from_pem(key.private_pem())])


def test_an_empty_set_cannot_sign() -> None:
    empty = KeySet()
    assert len(empty) == 0
    with pytest.raises(LookupError, match="no token signing key"):
        issue_zone_token(empty, zone="z", valid_for_s=HOUR, now=NOW)
