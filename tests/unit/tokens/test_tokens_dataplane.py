"""Dataplane tokens: issue and verify per mesh, and the checks of a token against the proxy that uses it."""

from __future__ import annotations

import pytest

from kmesh.tokens import (
    PROXY_TYPES,
    DataplaneTokenClaims,
    KeySet,
    MalformedToken,
    SigningKey,
    TokenError,
    TokenExpired,
    TokenMismatch,
    TokenRevoked,
    UnknownSigningKey,
    WrongTokenType,
    check_dataplane_identity,
    issue_dataplane_token,
    issue_zone_token,
    verify_dataplane_token,
)

from .helpers import HOUR, NOW, es256_sign, split


def dp_claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "kmesh",
        "aud": "kmesh-dataplane",
        "mesh": "default",
        "proxy_type": "sidecar",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW + HOUR),
        "jti": "dp-1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def refused(token: str, keys: KeySet, *, mesh: str = "default", **kwargs: object) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify_dataplane_token(token, keys, mesh=mesh, now=NOW, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_issue_then_verify_a_bound_token(key: SigningKey, keys: KeySet) -> None:
    token = issue_dataplane_token(
        key,
        mesh="default",
        name="web-1",
        tags={"kuma.io/service": "web", "version": "v2"},
        valid_for_s=HOUR,
        now=NOW,
        token_id="dp-web-1",
    )
    claims = verify_dataplane_token(token, keys, mesh="default", now=NOW)
    assert claims == DataplaneTokenClaims(
        mesh="default",
        name="web-1",
        tags={"kuma.io/service": "web", "version": "v2"},
        proxy_type="sidecar",
        token_id="dp-web-1",
        key_id=key.kid,
        issued_at=NOW,
        not_before=NOW,
        expires_at=NOW + HOUR,
    )
    assert split(token)[1]["sub"] == "web-1"


def test_an_unbound_token_carries_no_name_or_tags(key: SigningKey, keys: KeySet) -> None:
    token = issue_dataplane_token(key, mesh="default", proxy_type="ingress", valid_for_s=HOUR, now=NOW)
    _, payload, _ = split(token)
    assert "name" not in payload
    assert "sub" not in payload
    assert "tags" not in payload
    claims = verify_dataplane_token(token, keys, mesh="default", now=NOW)
    assert claims.name is None
    assert claims.tags == {}
    assert claims.proxy_type == "ingress"


def test_a_token_of_another_mesh(key: SigningKey, keys: KeySet) -> None:
    token = issue_dataplane_token(key, mesh="payments", valid_for_s=HOUR, now=NOW)
    error = refused(token, keys, mesh="default")
    assert isinstance(error, TokenMismatch)
    assert "mesh 'payments'" in str(error)


def test_each_mesh_has_its_own_keys(key: SigningKey, other_key: SigningKey) -> None:
    token = issue_dataplane_token(other_key, mesh="default", valid_for_s=HOUR, now=NOW)
    assert isinstance(refused(token, KeySet([key])), UnknownSigningKey)


def test_a_zone_token_is_not_a_dataplane_token(key: SigningKey, keys: KeySet) -> None:
    zone_token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    error = refused(zone_token, keys)
    assert isinstance(error, WrongTokenType)
    assert "expected a dataplane token" in str(error)


def test_expired_and_revoked(key: SigningKey, keys: KeySet) -> None:
    token = issue_dataplane_token(key, mesh="default", valid_for_s=HOUR, now=NOW - 2 * HOUR, token_id="t1")
    assert isinstance(refused(token, keys), TokenExpired)
    fresh = issue_dataplane_token(key, mesh="default", valid_for_s=HOUR, now=NOW, token_id="t2")
    assert verify_dataplane_token(fresh, keys, mesh="default", now=NOW, revoked_ids=["t1"]).token_id == "t2"
    error = refused(fresh, keys, revoked_ids=["t1", "t2"])
    assert isinstance(error, TokenRevoked)
    assert error.token_id == "t2"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (dp_claims(mesh=None), "names no mesh"),
        (dp_claims(mesh=3), "names no mesh"),
        (dp_claims(name=""), "'name' must be"),
        (dp_claims(tags=["a"]), "'tags' must map"),
        (dp_claims(tags={"a": 1}), "'tags' must map"),
        (dp_claims(proxy_type="router"), "'proxy_type' must be one of sidecar, ingress, egress"),
        (dp_claims(proxy_type=None), "'proxy_type'"),
    ],
)
def test_malformed_claims(key: SigningKey, keys: KeySet, claims: dict[str, object], message: str) -> None:
    error = refused(es256_sign(key, claims), keys)
    assert isinstance(error, MalformedToken)
    assert message in str(error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mesh": ""}, "mesh: must not be empty"),
        ({"mesh": "a b"}, "mesh: invalid name"),
        ({"name": "-web"}, "name: invalid name"),
        ({"tags": {"kuma.io/service": ""}}, "tag value must not be empty"),
        ({"tags": {"": "x"}}, "tag name must not be empty"),
        ({"proxy_type": "gateway"}, "unknown proxy type 'gateway'"),
        ({"valid_for_s": 0}, "at least 1s"),
    ],
)
def test_bad_requests_are_refused_when_issuing(
    key: SigningKey, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"mesh": "default", "valid_for_s": HOUR, "now": NOW, **kwargs}
    with pytest.raises(ValueError, match=message):
        issue_dataplane_token(key, **args)  # type: ignore[arg-type]


@pytest.fixture
def web_claims(key: SigningKey, keys: KeySet) -> DataplaneTokenClaims:
    token = issue_dataplane_token(
        key, mesh="default", name="web-1", tags={"kuma.io/service": "web"}, valid_for_s=HOUR, now=NOW
    )
    return verify_dataplane_token(token, keys, mesh="default", now=NOW)


def test_the_proxy_the_token_was_made_for_passes(web_claims: DataplaneTokenClaims) -> None:
    check_dataplane_identity(
        web_claims,
        name="web-1",
        proxy_type="sidecar",
        tag_values={"kuma.io/service": ["web", "web"], "version": ["v1", "v2"]},
    )


@pytest.mark.parametrize(
    ("name", "proxy_type", "tag_values", "message"),
    [
        ("web-2", "sidecar", {"kuma.io/service": ["web"]}, "token is for dataplane 'web-1'"),
        ("web-1", "ingress", {"kuma.io/service": ["web"]}, "token is for a sidecar proxy"),
        ("web-1", "sidecar", {}, "the dataplane has kuma.io/service: no value"),
        ("web-1", "sidecar", {"kuma.io/service": ["db"]}, "the dataplane has kuma.io/service: 'db'"),
        # A token for web cannot also register db beside it.
        ("web-1", "sidecar", {"kuma.io/service": ["web", "db"]}, "kuma.io/service: 'db, web'"),
    ],
)
def test_a_different_proxy_is_refused(
    web_claims: DataplaneTokenClaims,
    name: str,
    proxy_type: str,
    tag_values: dict[str, list[str]],
    message: str,
) -> None:
    with pytest.raises(TokenMismatch) as info:
        check_dataplane_identity(web_claims, name=name, proxy_type=proxy_type, tag_values=tag_values)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert info.value.code == "token_mismatch"


@pytest.mark.parametrize("proxy_type", PROXY_TYPES)
def test_an_unbound_token_fits_any_proxy_of_its_type(key: SigningKey, keys: KeySet, proxy_type: str) -> None:
    token = issue_dataplane_token(key, mesh="default", proxy_type=proxy_type, valid_for_s=HOUR, now=NOW)  # type: ignore[arg-type]
    claims = verify_dataplane_token(token, keys, mesh="default", now=NOW)
    check_dataplane_identity(claims, name="anything", proxy_type=proxy_type, tag_values={"a": ["b"]})  # type: ignore[arg-type]
    other = next(p for p in PROXY_TYPES if p != proxy_type)
    with pytest.raises(TokenMismatch):
        check_dataplane_identity(claims, name="anything", proxy_type=other, tag_values={})
