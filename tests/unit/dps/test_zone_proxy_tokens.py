"""Zone-proxy tokens: signed with the zone's own keys, refused by another zone, revocable, rotatable."""

from __future__ import annotations

import pytest

from kmesh.dps import (
    ZONE_PROXY_TOKEN_MESH,
    issue_zone_proxy_token,
    verify_zone_proxy_token,
    zone_proxy_key_set,
    zone_proxy_revoked_ids,
    zone_proxy_signing_key_secret,
)
from kmesh.model import new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.tokens import TokenError, generate_signing_key, revocations_to_data

NOW = 1_700_000_000.0


def test_a_token_verifies_against_the_zone_keys() -> None:
    key = generate_signing_key()
    keys = zone_proxy_key_set([zone_proxy_signing_key_secret(key, 1)])
    token = issue_zone_proxy_token(keys, proxy_type="egress", name="egress-1", valid_for_s=60, now=NOW)
    claims = verify_zone_proxy_token(token, keys, now=NOW)
    assert (claims.mesh, claims.name, claims.proxy_type) == (ZONE_PROXY_TOKEN_MESH, "egress-1", "egress")


def test_another_zones_token_is_refused() -> None:
    mine = zone_proxy_key_set([zone_proxy_signing_key_secret(generate_signing_key(), 1)])
    theirs = generate_signing_key()
    token = issue_zone_proxy_token(theirs, proxy_type="ingress", valid_for_s=60, now=NOW)
    with pytest.raises(TokenError) as raised:
        verify_zone_proxy_token(token, mine, now=NOW)
    assert raised.value.code == "token_unknown_key"


def test_keys_rotate_newest_signing_and_revocations_apply() -> None:
    old, new = generate_signing_key(), generate_signing_key()
    secrets = [zone_proxy_signing_key_secret(new, 2), zone_proxy_signing_key_secret(old, 1)]
    keys = zone_proxy_key_set(secrets)
    assert keys.signing_key == new
    old_token = issue_zone_proxy_token(old, proxy_type="ingress", valid_for_s=60, now=NOW)
    assert verify_zone_proxy_token(old_token, keys, now=NOW).proxy_type == "ingress"
    revoked = issue_zone_proxy_token(keys, proxy_type="ingress", valid_for_s=60, now=NOW)
    claims = verify_zone_proxy_token(revoked, keys, now=NOW)
    listing = new_resource(
        "GlobalSecret",
        "zone-proxy-token-revocations",
        GlobalSecretSpec(data=revocations_to_data([claims.token_id])),
    )
    ids = zone_proxy_revoked_ids([*secrets, listing])
    assert ids == {claims.token_id}
    with pytest.raises(TokenError) as raised:
        verify_zone_proxy_token(revoked, keys, now=NOW, revoked=ids)
    assert raised.value.code == "token_revoked"


def test_only_zone_proxies_get_zone_proxy_tokens() -> None:
    with pytest.raises(ValueError, match="ingress or an egress"):
        issue_zone_proxy_token(generate_signing_key(), proxy_type="sidecar", valid_for_s=60, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="serial"):
        zone_proxy_signing_key_secret(generate_signing_key(), 0)
