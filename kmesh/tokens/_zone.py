"""Zone tokens: how a zone control plane (or a zone's ingress or egress) proves its zone to the global.

``kmeshctl generate zone-token --zone Z [--scope cp|ingress|egress] [--valid-for 720h]`` issues one; the
global verifies it in the KDS ``Hello`` and pins everything that connection sends to the token's zone.

A zone token is an ES256 JWT (see ``_jwt``) with the claims::

    iss    "kmesh-global"
    aud    "kmesh-zone"             tells it apart from a dataplane token
    sub    the zone name
    zone   the zone name            (Kuma's ``Zone`` claim)
    scope  ["cp", "ingress", ...]   what the holder may connect as, a non-empty list
    iat, nbf, exp                   whole Unix seconds
    jti    the token id             what a revocation names

and the header ``kid`` of the key that signed it.

Rules: issuing checks its inputs and raises ValueError (a bad zone name, an unknown or empty scope set, a
validity under one second); verifying raises only TokenError subclasses, whose messages go back to the zone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final, final

import msgspec

from kmesh.model._fields import name_problem
from kmesh.tokens._errors import MalformedToken, TokenMismatch, TokenRevoked, WrongScope, ZoneMissing
from kmesh.tokens._jwt import (
    DEFAULT_LEEWAY_S,
    check_token_id,
    is_revoked,
    new_token_id,
    short,
    sign,
    time_claims,
    verify,
)
from kmesh.tokens._keys import KeySet, SigningKey

__all__ = [
    "ZONE_AUDIENCE",
    "ZONE_ISSUER",
    "ZONE_SCOPES",
    "ZoneTokenClaims",
    "issue_zone_token",
    "verify_zone_token",
]

ZONE_ISSUER: Final = "kmesh-global"
ZONE_AUDIENCE: Final = "kmesh-zone"
# Kuma's zone token scopes: the zone control plane itself, and the zone's ingress and egress proxies.
ZONE_SCOPES: Final = ("cp", "ingress", "egress")


@final
class ZoneTokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a verified zone token says. Times are Unix seconds."""

    zone: str
    scopes: frozenset[str]
    token_id: str
    key_id: str
    issued_at: float
    not_before: float
    expires_at: float


def _scope_list(scopes: Sequence[str]) -> list[str]:
    if isinstance(scopes, str):
        raise TypeError(f"scopes must be a sequence of scope names, such as ({scopes!r},), not a string")
    unknown = sorted(set(scopes) - set(ZONE_SCOPES))
    if unknown:
        raise ValueError(f"unknown zone token scope {', '.join(unknown)}; use {', '.join(ZONE_SCOPES)}")
    if not scopes:
        raise ValueError(f"a zone token needs at least one scope of {', '.join(ZONE_SCOPES)}")
    # One canonical order, so the same request always makes the same claim.
    return [scope for scope in ZONE_SCOPES if scope in scopes]


def issue_zone_token(
    key: SigningKey | KeySet,
    *,
    zone: str,
    scopes: Sequence[str] = ("cp",),
    valid_for_s: float,
    now: float,
    token_id: str | None = None,
) -> str:
    """A zone token for ``zone`` granting ``scopes``, valid from ``now`` for ``valid_for_s`` seconds.

    A KeySet signs with its newest key. ``token_id`` defaults to a random UUID. Raises ValueError for a
    zone name that is not a valid resource name, unknown or no scopes, a bad token id or a validity under
    one second; TypeError for a single string as ``scopes``; LookupError for an empty KeySet.
    """
    problem = name_problem(zone)
    if problem is not None:
        raise ValueError(f"zone: {problem}")
    scope_list = _scope_list(scopes)
    jti = new_token_id() if token_id is None else token_id
    check_token_id(jti)
    claims = {
        "iss": ZONE_ISSUER,
        "aud": ZONE_AUDIENCE,
        "sub": zone,
        "zone": zone,
        "scope": scope_list,
        **time_claims(now, valid_for_s),
        "jti": jti,
    }
    return sign(key, claims)


def verify_zone_token(
    token: str,
    keys: KeySet,
    *,
    now: float,
    required_scope: str = "cp",
    revoked_ids: Collection[str] = (),
    zone: str | None = None,
    leeway_s: float = DEFAULT_LEEWAY_S,
) -> ZoneTokenClaims:
    """The claims of ``token`` once it is shown to be a valid zone token granting ``required_scope``.

    ``zone``, when given, is the zone the peer says it is: a token for another zone is refused. The checks
    run in this order, and the first that fails raises: form (MalformedToken), algorithm and signature
    (InvalidSignature, UnknownSigningKey), kind (WrongTokenType), validity period at ``now`` give or take
    ``leeway_s`` (TokenExpired, TokenNotYetValid), the zone claim (ZoneMissing), revocation
    (TokenRevoked), scope (WrongScope), the expected zone (TokenMismatch). Raises ValueError when
    ``required_scope`` is not a zone token scope (a bug in the caller, not in the token).
    """
    if required_scope not in ZONE_SCOPES:
        raise ValueError(f"unknown zone token scope {required_scope!r}; use {', '.join(ZONE_SCOPES)}")
    verified = verify(
        token,
        keys,
        issuer=ZONE_ISSUER,
        audience=ZONE_AUDIENCE,
        kind="a zone token",
        now=now,
        leeway_s=leeway_s,
    )
    claims = verified.claims
    token_zone = claims.get("zone")
    if not isinstance(token_zone, str) or not token_zone:
        raise ZoneMissing(
            "token names no zone; generate a zone token with: kmeshctl generate zone-token --zone NAME"
        )
    if claims.get("sub", token_zone) != token_zone:
        raise MalformedToken("token claims 'sub' and 'zone' name different zones")
    scope = claims.get("scope")
    if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope):
        raise MalformedToken("token claim 'scope' must be a list of scope names")
    granted = frozenset(scope)
    if is_revoked(verified.token_id, revoked_ids):
        raise TokenRevoked(verified.token_id)
    if required_scope not in granted:
        raise WrongScope(required_scope, granted)
    if zone is not None and zone != token_zone:
        raise TokenMismatch(
            f"token was issued for zone {short(token_zone)}, but the peer says it is zone {short(zone)}; "
            "use the token generated for this zone"
        )
    return ZoneTokenClaims(
        zone=token_zone,
        scopes=granted,
        token_id=verified.token_id,
        key_id=verified.key_id,
        issued_at=verified.issued_at,
        not_before=verified.not_before,
        expires_at=verified.expires_at,
    )
