"""Signing keys and revocation lists as Secrets and GlobalSecrets: names, round trips, rotation by serial."""

from __future__ import annotations

import base64

import pytest

from kmesh.model import Resource, new_resource, parse_resource, to_document, validate_resource
from kmesh.model.types import GlobalSecretSpec, SecretSpec
from kmesh.tokens import (
    KeySet,
    SigningKey,
    TokenRevoked,
    UnknownSigningKey,
    dataplane_key_set,
    dataplane_revocations_name,
    dataplane_revocations_secret,
    dataplane_signing_key_name,
    dataplane_signing_key_secret,
    generate_signing_key,
    issue_dataplane_token,
    issue_zone_token,
    next_serial,
    revocations_from_data,
    revocations_to_data,
    revoked_ids,
    signing_key_from_data,
    signing_key_to_data,
    verify_dataplane_token,
    verify_zone_token,
    zone_key_set,
    zone_revocations_secret,
    zone_signing_key_name,
    zone_signing_key_secret,
)

from .helpers import HOUR, NOW


def through_a_document(resource: Resource) -> Resource:
    """The resource as it comes back after ``get -o yaml`` and ``apply``: the store's view of it."""
    return parse_resource(to_document(resource))


def test_secret_data_is_the_base64_pem(key: SigningKey) -> None:
    data = signing_key_to_data(key)
    assert base64.b64decode(data) == key.private_pem()
    assert signing_key_from_data(data) == key


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"hello").decode(), "not an unencrypted PEM private key"),
    ],
)
def test_a_secret_without_a_key_is_refused(data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing_key_from_data(data)


def test_names_follow_the_convention() -> None:
    assert zone_signing_key_name(1) == "zone-token-signing-key-1"
    assert dataplane_signing_key_name("default", 3) == "dataplane-token-signing-key-default-3"
    assert dataplane_revocations_name("default") == "dataplane-token-revocations-default"
    with pytest.raises(ValueError, match="positive integer"):
        zone_signing_key_name(0)


def test_zone_signing_key_secret_is_a_valid_global_secret(key: SigningKey) -> None:
    secret = zone_signing_key_secret(key, 1)
    validate_resource(secret)
    assert secret.meta.type == "GlobalSecret"
    assert secret.meta.name == "zone-token-signing-key-1"
    assert secret.meta.mesh == ""
    assert zone_key_set([through_a_document(secret)]).signing_key == key


def test_dataplane_signing_key_secret_is_a_valid_mesh_secret(key: SigningKey) -> None:
    secret = dataplane_signing_key_secret(key, mesh="default", serial=1)
    validate_resource(secret)
    assert secret.meta.type == "Secret"
    assert secret.meta.mesh == "default"
    assert secret.meta.name == "dataplane-token-signing-key-default-1"
    assert list(dataplane_key_set([through_a_document(secret)], mesh="default")) == [key]


def test_the_key_set_is_ordered_by_serial_and_ignores_other_secrets() -> None:
    k2, k10, k3 = generate_signing_key(), generate_signing_key(), generate_signing_key()
    unrelated = generate_signing_key()
    secrets = [
        zone_signing_key_secret(k10, 10),
        zone_signing_key_secret(k2, 2),
        zone_signing_key_secret(k3, 3),
        zone_revocations_secret(["a"]),
        new_resource(
            "GlobalSecret", "zone-token-signing-key-01", GlobalSecretSpec(data=signing_key_to_data(unrelated))
        ),
        new_resource("GlobalSecret", "zone-token-signing-key-x", GlobalSecretSpec(data="eA==")),
        new_resource("GlobalSecret", "my-zone-token-signing-key-4", GlobalSecretSpec(data="eA==")),
        dataplane_signing_key_secret(unrelated, mesh="default", serial=50),
        new_resource("Mesh", "default"),
    ]
    keys = zone_key_set(secrets)
    # Numeric order: 10 is newer than 2 and 3, although "10" sorts before "2" as text.
    assert list(keys) == [k2, k3, k10]
    assert keys.signing_key == k10
    assert next_serial(secrets) == 11
    assert next_serial(secrets, mesh="default") == 51
    assert next_serial([]) == 1


def test_dataplane_keys_belong_to_their_mesh_only() -> None:
    mine, theirs, prefixed = generate_signing_key(), generate_signing_key(), generate_signing_key()
    secrets = [
        dataplane_signing_key_secret(mine, mesh="a", serial=1),
        dataplane_signing_key_secret(theirs, mesh="b", serial=2),
        # Mesh "a-1" serial 2 is named dataplane-token-signing-key-a-1-2: not mesh "a" serial "1-2".
        dataplane_signing_key_secret(prefixed, mesh="a-1", serial=2),
    ]
    assert list(dataplane_key_set(secrets, mesh="a")) == [mine]
    assert list(dataplane_key_set(secrets, mesh="a-1")) == [prefixed]
    assert next_serial(secrets, mesh="a") == 2
    assert next_serial(secrets, mesh="c") == 1


def test_a_corrupt_signing_key_secret_is_named() -> None:
    broken = new_resource("GlobalSecret", "zone-token-signing-key-2", GlobalSecretSpec(data="eA=="))
    with pytest.raises(ValueError, match="GlobalSecret 'zone-token-signing-key-2': not a token signing key"):
        zone_key_set([zone_signing_key_secret(generate_signing_key(), 1), broken])


def test_rotation_through_the_store() -> None:
    old, new = generate_signing_key(), generate_signing_key()
    store = [zone_signing_key_secret(old, next_serial([]))]
    before = issue_zone_token(zone_key_set(store), zone="z", valid_for_s=HOUR, now=NOW)
    store.append(zone_signing_key_secret(new, next_serial(store)))
    assert [s.meta.name for s in store] == ["zone-token-signing-key-1", "zone-token-signing-key-2"]
    after = issue_zone_token(zone_key_set(store), zone="z", valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(before, zone_key_set(store), now=NOW).key_id == old.kid
    assert verify_zone_token(after, zone_key_set(store), now=NOW).key_id == new.kid
    del store[0]  # retire the old key once its tokens have expired
    with pytest.raises(UnknownSigningKey):
        verify_zone_token(before, zone_key_set(store), now=NOW)


def test_revocation_lists_round_trip() -> None:
    secret = zone_revocations_secret(["b", "a", "b"])
    validate_resource(secret)
    assert secret.meta.name == "zone-token-revocations"
    assert base64.b64decode(secret.spec.data) == b"a\nb\n"  # type: ignore[attr-defined]
    assert revoked_ids(through_a_document(secret)) == {"a", "b"}
    assert revoked_ids(None) == frozenset()


def test_an_empty_revocation_list_is_still_a_valid_secret() -> None:
    secret = zone_revocations_secret([])
    validate_resource(secret)
    assert revoked_ids(secret) == frozenset()


def test_a_hand_edited_list_is_read_leniently() -> None:
    data = base64.b64encode(b"\n  id-1  \r\n\nid-2\n\n").decode()
    assert revocations_from_data(data) == {"id-1", "id-2"}


@pytest.mark.parametrize("data", ["###", base64.b64encode(b"\xff\xfe").decode()])
def test_a_list_that_is_not_text_is_refused(data: str) -> None:
    with pytest.raises(ValueError, match="revocation list"):
        revocations_from_data(data)


def test_ids_that_cannot_stand_on_one_line_are_refused() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        revocations_to_data(["ok", "two\nlines"])


def test_revoked_ids_refuses_other_resources() -> None:
    with pytest.raises(ValueError, match="not a Secret or GlobalSecret"):
        revoked_ids(new_resource("Mesh", "default"))


def test_revoking_a_dataplane_token_through_the_store(key: SigningKey) -> None:
    token = issue_dataplane_token(key, mesh="default", valid_for_s=HOUR, now=NOW, token_id="dp-7")
    revocations = dataplane_revocations_secret(["dp-7"], mesh="default")
    validate_resource(revocations)
    assert revocations.meta.mesh == "default"
    assert isinstance(revocations.spec, SecretSpec)
    with pytest.raises(TokenRevoked):
        verify_dataplane_token(
            token, KeySet([key]), mesh="default", now=NOW, revoked_ids=revoked_ids(revocations)
        )
    data = revocations_to_data(revoked_ids(revocations) - {"dp-7"})
    assert (
        verify_dataplane_token(
            token, KeySet([key]), mesh="default", now=NOW, revoked_ids=revocations_from_data(data)
        ).token_id
        == "dp-7"
    )
