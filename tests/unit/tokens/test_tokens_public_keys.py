"""Public-only key sets: the public halves stored as GlobalSecrets verify what the signing keys sign, and
cannot sign themselves."""

from __future__ import annotations

import pytest

from kmesh.tokens import (
    KeySet,
    PublicKey,
    UnknownSigningKey,
    generate_signing_key,
    issue_zone_token,
    public_key_from_data,
    public_key_to_data,
    verify_zone_token,
    zone_key_set,
    zone_public_key_secrets,
    zone_public_key_set,
    zone_signing_key_secret,
    zone_signing_public_key_name,
)


def test_a_public_key_set_verifies_and_cannot_sign() -> None:
    first, second = generate_signing_key(), generate_signing_key()
    private = [zone_signing_key_secret(first, 1), zone_signing_key_secret(second, 2)]
    public = zone_public_key_secrets(private)
    assert [s.meta.name for s in public] == [zone_signing_public_key_name(1), zone_signing_public_key_name(2)]
    # The public secrets are not signing keys, and the private ones are not public keys.
    assert zone_key_set(public).kids == ()
    keys = zone_public_key_set([*private, *public])
    assert keys.kids == (first.kid, second.kid)
    assert zone_key_set(private).public().kids == keys.kids
    token = issue_zone_token(
        zone_key_set(private), zone="zone-1", scopes=("ingress",), valid_for_s=60, now=100
    )
    assert verify_zone_token(token, keys, now=101, required_scope="ingress").key_id == second.kid
    with pytest.raises(LookupError, match="public keys only"):
        issue_zone_token(keys, zone="zone-1", valid_for_s=60, now=100)
    with pytest.raises(UnknownSigningKey):
        verify_zone_token(token, KeySet([PublicKey.of(first)]), now=101, required_scope="ingress")


def test_public_key_data_round_trips_and_refuses_a_private_key() -> None:
    key = generate_signing_key()
    assert public_key_from_data(public_key_to_data(key)) == PublicKey.of(key)
    assert public_key_from_data(public_key_to_data(key)).kid == key.kid
    with pytest.raises(ValueError, match="not a PEM public key"):
        public_key_from_data(zone_signing_key_secret(key, 1).spec.data)  # type: ignore[attr-defined]
