"""Zone tokens: issue and verify, every reason a token is refused, rotation, forged and altered tokens."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.model import parse_duration
from kmesh.tokens import (
    DEFAULT_LEEWAY_S,
    ZONE_SCOPES,
    InvalidSignature,
    KeySet,
    MalformedToken,
    SigningKey,
    TokenError,
    TokenExpired,
    TokenMismatch,
    TokenNotYetValid,
    TokenRevoked,
    UnknownSigningKey,
    WrongScope,
    WrongTokenType,
    ZoneMissing,
    generate_signing_key,
    issue_dataplane_token,
    issue_zone_token,
    verify_zone_token,
)

from .helpers import HOUR, NOW, b64url, b64url_json, es256_sign, split, unsigned, zone_claims

# One key for the property tests: a function-scoped fixture would be shared across examples anyway.
PROPERTY_KEY = generate_signing_key()
ZONE_NAMES = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,40}[A-Za-z0-9])?", fullmatch=True)


def refused(token: str, keys: KeySet, **kwargs: object) -> TokenError:
    """Verify a token that must fail at NOW, and return the error; the message never quotes the token."""
    kwargs.setdefault("now", NOW)
    with pytest.raises(TokenError) as info:
        verify_zone_token(token, keys, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.code.startswith("token_")
    assert error.reason == str(error)
    signature = token.rsplit(".", 1)[-1]
    if len(signature) >= 16:
        assert signature[:16] not in str(error)
    return error


def test_issue_then_verify(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="zone-1", scopes=("cp", "ingress"), valid_for_s=HOUR, now=NOW + 0.7)
    claims = verify_zone_token(token, keys, now=NOW + 10, zone="zone-1")
    assert claims.zone == "zone-1"
    assert claims.scopes == frozenset({"cp", "ingress"})
    assert claims.key_id == key.kid
    assert claims.issued_at == NOW
    assert claims.not_before == NOW
    assert claims.expires_at == NOW + HOUR
    header, payload, _ = split(token)
    assert header == {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    assert payload["iss"] == "kmesh-global"
    assert payload["sub"] == payload["zone"] == "zone-1"
    assert payload["scope"] == ["cp", "ingress"]
    assert payload["jti"] == claims.token_id


def test_token_ids_are_random_unless_given(key: SigningKey, keys: KeySet) -> None:
    a = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    b = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(a, keys, now=NOW).token_id != verify_zone_token(b, keys, now=NOW).token_id
    fixed = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW, token_id="my-id")
    assert verify_zone_token(fixed, keys, now=NOW).token_id == "my-id"


def test_valid_for_takes_a_parsed_duration(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=parse_duration("720h"), now=NOW)
    claims = verify_zone_token(token, keys, now=NOW)
    assert claims.expires_at - claims.issued_at == 30 * 24 * HOUR


def test_surrounding_whitespace_from_a_token_file_is_ignored(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(f"{token}\n", keys, now=NOW).zone == "z"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zone": ""}, "zone: must not be empty"),
        ({"zone": "bad zone"}, "invalid name"),
        ({"zone": "z", "scopes": ()}, "at least one scope"),
        ({"zone": "z", "scopes": ("cp", "admin")}, "unknown zone token scope admin"),
        ({"zone": "z", "valid_for_s": 0.5}, "at least 1s"),
        ({"zone": "z", "valid_for_s": float("nan")}, "at least 1s"),
        ({"zone": "z", "now": float("inf")}, "Unix time"),
        ({"zone": "z", "token_id": "two words"}, "printable ASCII"),
        ({"zone": "z", "token_id": ""}, "printable ASCII"),
    ],
)
def test_bad_requests_are_refused_when_issuing(
    key: SigningKey, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"valid_for_s": HOUR, "now": NOW, **kwargs}
    with pytest.raises(ValueError, match=message):
        issue_zone_token(key, **args)  # type: ignore[arg-type]


def test_a_lone_string_is_not_a_scope_list(key: SigningKey) -> None:
    with pytest.raises(TypeError, match="not a string"):
        issue_zone_token(key, zone="z", scopes="cp", valid_for_s=HOUR, now=NOW)


def test_expired_says_when(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    expires = NOW + HOUR
    assert verify_zone_token(token, keys, now=expires + DEFAULT_LEEWAY_S - 0.001).zone == "z"
    error = refused(token, keys, now=expires + DEFAULT_LEEWAY_S)
    assert isinstance(error, TokenExpired)
    assert error.code == "token_expired"
    assert error.expires_at == expires
    assert "expired at 2023-11-14T23:13:20Z (60s ago)" in str(error)
    # Without leeway the token is valid only strictly before exp (RFC 7519 section 4.1.4).
    assert isinstance(refused(token, keys, now=expires, leeway_s=0), TokenExpired)


def test_not_yet_valid(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(token, keys, now=NOW - DEFAULT_LEEWAY_S).zone == "z"
    error = refused(token, keys, now=NOW - DEFAULT_LEEWAY_S - 1)
    assert isinstance(error, TokenNotYetValid)
    assert error.code == "token_not_yet_valid"
    assert error.not_before == NOW
    assert "not valid before 2023-11-14T22:13:20Z" in str(error)


def test_wrong_scope(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", scopes=("ingress",), valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(token, keys, now=NOW, required_scope="ingress").scopes == {"ingress"}
    error = refused(token, keys)
    assert isinstance(error, WrongScope)
    assert error.required == "cp"
    assert error.granted == frozenset({"ingress"})
    assert "--scope cp" in str(error)


def test_asking_for_an_unknown_scope_is_a_caller_bug(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW)
    with pytest.raises(ValueError, match="unknown zone token scope"):
        verify_zone_token(token, keys, now=NOW, required_scope="admin")


def test_revoked(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="z", valid_for_s=HOUR, now=NOW, token_id="abc")
    # Near misses (prefixes, extensions, non-ASCII ids) do not revoke it.
    assert verify_zone_token(token, keys, now=NOW, revoked_ids=["ab", "abcd", "ABC", "äbc"]).zone == "z"
    error = refused(token, keys, revoked_ids={"other", "abc"})
    assert isinstance(error, TokenRevoked)
    assert error.token_id == "abc"
    assert error.code == "token_revoked"


def test_zone_missing(key: SigningKey, keys: KeySet) -> None:
    for claims in (zone_claims(zone=None, sub=None), zone_claims(zone="", sub="")):
        error = refused(es256_sign(key, claims), keys)
        assert isinstance(error, ZoneMissing)
        assert "--zone" in str(error)


def test_a_token_for_another_zone(key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(key, zone="east", valid_for_s=HOUR, now=NOW)
    error = refused(token, keys, zone="west")
    assert isinstance(error, TokenMismatch)
    assert "'east'" in str(error)
    assert "'west'" in str(error)


def test_rotation_across_two_keys(key: SigningKey, other_key: SigningKey) -> None:
    before = issue_zone_token(KeySet([key]), zone="z", valid_for_s=HOUR, now=NOW)
    rotated = KeySet([key]).rotated(other_key)
    after = issue_zone_token(rotated, zone="z", valid_for_s=HOUR, now=NOW)
    assert verify_zone_token(before, rotated, now=NOW).key_id == key.kid
    assert verify_zone_token(after, rotated, now=NOW).key_id == other_key.kid
    retired = rotated.without(key.kid)
    assert isinstance(refused(before, retired), UnknownSigningKey)
    assert verify_zone_token(after, retired, now=NOW).zone == "z"


def test_a_token_of_a_foreign_key(key: SigningKey, other_key: SigningKey, keys: KeySet) -> None:
    token = issue_zone_token(other_key, zone="z", valid_for_s=HOUR, now=NOW)
    error = refused(token, keys)
    assert isinstance(error, UnknownSigningKey)
    assert isinstance(error, InvalidSignature)
    assert error.key_id == other_key.kid
    assert error.code == "token_unknown_key"


def test_a_foreign_key_claiming_our_key_id(key: SigningKey, other_key: SigningKey, keys: KeySet) -> None:
    error = refused(es256_sign(other_key, zone_claims(), kid=key.kid), keys)
    assert type(error) is InvalidSignature
    assert error.code == "token_bad_signature"


@given(new_zone=ZONE_NAMES, extra_scopes=st.sets(st.sampled_from(ZONE_SCOPES)))
def test_a_tampered_payload_is_refused(new_zone: str, extra_scopes: set[str]) -> None:
    token = issue_zone_token(PROPERTY_KEY, zone="victim", valid_for_s=HOUR, now=NOW)
    header, _, signature = token.split(".")
    _, claims, _ = split(token)
    claims.update(zone=new_zone, sub=new_zone, scope=sorted({"cp", *extra_scopes}), exp=claims["exp"] + 1)
    forged = f"{header}.{b64url_json(claims)}.{signature}"
    with pytest.raises(InvalidSignature, match="does not verify"):
        verify_zone_token(forged, KeySet([PROPERTY_KEY]), now=NOW)


def test_alg_none_is_refused(key: SigningKey, keys: KeySet) -> None:
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "kid": key.kid, "typ": "JWT"}, zone_claims())
        error = refused(token, keys)
        assert type(error) is InvalidSignature
        assert "ES256" in str(error)


def test_hs256_keyed_with_the_public_key_is_refused(key: SigningKey, keys: KeySet) -> None:
    # The classic algorithm confusion: an HMAC "signed" with the verifier's public key (RFC 8725 2.1).
    header = b64url_json({"alg": "HS256", "kid": key.kid, "typ": "JWT"})
    payload = b64url_json(zone_claims())
    for secret in (key.public_pem(), key.public_pem().strip()):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        error = refused(f"{header}.{payload}.{b64url(mac)}", keys)
        assert type(error) is InvalidSignature


def test_other_asymmetric_algorithms_are_refused(key: SigningKey, keys: KeySet) -> None:
    for alg in ("ES384", "RS256", "PS256", "EdDSA"):
        assert type(refused(unsigned({"alg": alg, "kid": key.kid}, zone_claims(), b"x" * 64), keys)) is (
            InvalidSignature
        )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "   ",
        "garbage",
        "a.b",
        "a.b.c",
        "e30.e30.",
        "x" * 9000,
    ],
)
def test_malformed_text(token: str, keys: KeySet) -> None:
    assert isinstance(refused(token, keys), MalformedToken)


def test_not_a_string(keys: KeySet) -> None:
    with pytest.raises(MalformedToken) as info:
        verify_zone_token(b"abc", keys, now=NOW)  # type: ignore[arg-type]
    error = info.value
    assert error.code == "token_malformed"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not a valid token"),
        (b"[1, 2]", "not a valid token"),
        (zone_claims(exp=None), "no 'exp' claim"),
        (zone_claims(jti=None), "no 'jti' claim"),
        (zone_claims(iss=None), "no 'iss' claim"),
        (zone_claims(aud=None), "no 'aud' claim"),
        (zone_claims(nbf=None), "no 'nbf' claim"),
        (zone_claims(exp="tomorrow"), "'exp' must be a number"),
        (zone_claims(iat=True), "'iat' must be a number"),
        (zone_claims(jti=7), "not a valid token"),
        (zone_claims(jti=""), "'jti' must be a non-empty string"),
        (zone_claims(scope="cp"), "'scope' must be a list"),
        (zone_claims(scope=None), "'scope' must be a list"),
        (zone_claims(sub="other"), "name different zones"),
        (zone_claims(aud=[1]), "'aud' must be a string"),
    ],
)
def test_malformed_claims(
    key: SigningKey, keys: KeySet, payload: dict[str, object] | bytes, message: str
) -> None:
    error = refused(es256_sign(key, payload), keys)
    assert isinstance(error, MalformedToken)
    assert message in str(error)


def test_a_token_without_a_key_id(key: SigningKey, keys: KeySet) -> None:
    error = refused(es256_sign(key, zone_claims(), kid=None), keys)
    assert isinstance(error, MalformedToken)
    assert "'kid'" in str(error)


def test_other_kinds_of_token_are_refused(key: SigningKey, keys: KeySet) -> None:
    dataplane = issue_dataplane_token(key, mesh="default", valid_for_s=HOUR, now=NOW)
    error = refused(dataplane, keys)
    assert isinstance(error, WrongTokenType)
    assert "expected a zone token" in str(error)
    assert isinstance(refused(es256_sign(key, zone_claims(iss="someone-else")), keys), WrongTokenType)
    # A list audience that names the zone audience is accepted, as RFC 7519 section 4.1.3 allows.
    assert verify_zone_token(es256_sign(key, zone_claims(aud=["x", "kmesh-zone"])), keys, now=NOW).zone


@given(zone=ZONE_NAMES, scopes=st.sets(st.sampled_from(ZONE_SCOPES), min_size=1))
def test_any_zone_and_scope_set_round_trips(zone: str, scopes: set[str]) -> None:
    keys = KeySet([PROPERTY_KEY])
    token = issue_zone_token(PROPERTY_KEY, zone=zone, scopes=sorted(scopes), valid_for_s=HOUR, now=NOW)
    for scope in ZONE_SCOPES:
        if scope in scopes:
            claims = verify_zone_token(token, keys, now=NOW, required_scope=scope, zone=zone)
            assert claims.zone == zone
            assert claims.scopes == scopes
        else:
            with pytest.raises(WrongScope):
                verify_zone_token(token, keys, now=NOW, required_scope=scope)


@given(zone=st.text(min_size=1, max_size=30).filter(lambda z: not z[0].isascii() or " " in z or "/" in z))
def test_names_that_are_not_resource_names_are_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="zone:"):
        issue_zone_token(PROPERTY_KEY, zone=zone, valid_for_s=HOUR, now=NOW)


def test_messages_are_json_safe_for_a_reject(key: SigningKey, keys: KeySet) -> None:
    # The reason goes into Reject{code, reason}: plain text, no token, serializable as is.
    error = refused(issue_zone_token(key, zone="z", scopes=("egress",), valid_for_s=HOUR, now=NOW), keys)
    assert json.loads(json.dumps({"code": error.code, "reason": error.reason}))["code"] == "token_wrong_scope"
