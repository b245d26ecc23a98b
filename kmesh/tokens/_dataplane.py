"""Dataplane tokens: how a proxy proves to its zone control plane that it may join a mesh, and as what.

Each mesh has its own signing keys (mesh Secrets, made on the global and synced to every zone), so a token
validates on any control plane of that mesh and on no other mesh. A dataplane token is an ES256 JWT (see
``_jwt``) with the claims::

    iss         "kmesh"
    aud         "kmesh-dataplane"         tells it apart from a zone token
    mesh        the mesh it is valid in
    name, sub   the dataplane it is bound to      (absent: any name)
    tags        {tag: value} the proxy must carry (absent: any tags)
    proxy_type  "sidecar", "ingress" or "egress"
    iat, nbf, exp, jti                            as for zone tokens

Rules: as in Kuma, a token narrows who may use it: the DP server first verifies it
(:func:`verify_dataplane_token`, for the mesh the proxy names), then checks it against the proxy's
Dataplane (:func:`check_dataplane_identity`): same proxy type, same name if the token names one, and for
each tag in the token the dataplane's inbounds carry exactly that value, so a token for ``web`` cannot
register ``web`` beside ``db``. Issuing raises ValueError for bad input; verifying raises TokenError only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final, Literal, final

import msgspec

from kmesh.model._fields import name_problem, tag_problems
from kmesh.tokens._errors import MalformedToken, TokenMismatch, TokenRevoked
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
    "DATAPLANE_AUDIENCE",
    "DATAPLANE_ISSUER",
    "PROXY_TYPES",
    "DataplaneTokenClaims",
    "ProxyType",
    "check_dataplane_identity",
    "issue_dataplane_token",
    "verify_dataplane_token",
]

DATAPLANE_ISSUER: Final = "kmesh"
DATAPLANE_AUDIENCE: Final = "kmesh-dataplane"
ProxyType = Literal["sidecar", "ingress", "egress"]
PROXY_TYPES: Final[tuple[ProxyType, ...]] = ("sidecar", "ingress", "egress")


@final
class DataplaneTokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a verified dataplane token says. ``name`` None and empty ``tags`` mean "not restricted"."""

    mesh: str
    name: str | None
    tags: dict[str, str]
    proxy_type: ProxyType
    token_id: str
    key_id: str
    issued_at: float
    not_before: float
    expires_at: float


def issue_dataplane_token(
    key: SigningKey | KeySet,
    *,
    mesh: str,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    proxy_type: ProxyType = "sidecar",
    valid_for_s: float,
    now: float,
    token_id: str | None = None,
) -> str:
    """A dataplane token for ``mesh``, optionally bound to a dataplane ``name`` and ``tags``.

    Raises ValueError for an invalid mesh or dataplane name, invalid tags, an unknown proxy type, a bad
    token id or a validity under one second; LookupError for an empty KeySet.
    """
    for field, value in (("mesh", mesh), ("name", name)):
        problem = None if value is None else name_problem(value)
        if problem is not None:
            raise ValueError(f"{field}: {problem}")
    tag_map = dict(tags or {})
    for where, reason in tag_problems(tag_map):
        raise ValueError(f"tags{where}: {reason}")
    if proxy_type not in PROXY_TYPES:
        raise ValueError(f"unknown proxy type {proxy_type!r}; use {', '.join(PROXY_TYPES)}")
    jti = new_token_id() if token_id is None else token_id
    check_token_id(jti)
    claims: dict[str, Any] = {"iss": DATAPLANE_ISSUER, "aud": DATAPLANE_AUDIENCE, "mesh": mesh}
    if name is not None:
        claims["sub"] = claims["name"] = name
    if tag_map:
        claims["tags"] = tag_map
    claims.update(proxy_type=proxy_type, **time_claims(now, valid_for_s), jti=jti)
    return sign(key, claims)


def verify_dataplane_token(
    token: str,
    keys: KeySet,
    *,
    mesh: str,
    now: float,
    revoked_ids: Collection[str] = (),
    leeway_s: float = DEFAULT_LEEWAY_S,
) -> DataplaneTokenClaims:
    """The claims of ``token`` once it is shown to be a valid dataplane token of ``mesh``.

    ``keys`` are that mesh's signing keys. Raises, first failure wins: MalformedToken, InvalidSignature,
    UnknownSigningKey, WrongTokenType, TokenExpired, TokenNotYetValid (as for zone tokens), MalformedToken
    for a missing or ill-typed mesh, name, tags or proxy type, TokenMismatch for a token of another mesh,
    TokenRevoked.
    """
    verified = verify(
        token,
        keys,
        issuer=DATAPLANE_ISSUER,
        audience=DATAPLANE_AUDIENCE,
        kind="a dataplane token",
        now=now,
        leeway_s=leeway_s,
    )
    claims = verified.claims
    token_mesh = claims.get("mesh")
    if not isinstance(token_mesh, str) or not token_mesh:
        raise MalformedToken("token names no mesh; generate a dataplane token with --mesh")
    name = claims.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise MalformedToken("token claim 'name' must be a dataplane name")
    tags = claims.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise MalformedToken("token claim 'tags' must map tag names to values")
    proxy_type = claims.get("proxy_type")
    if proxy_type not in PROXY_TYPES:
        raise MalformedToken(f"token claim 'proxy_type' must be one of {', '.join(PROXY_TYPES)}")
    if token_mesh != mesh:
        raise TokenMismatch(
            f"token is for mesh {short(token_mesh)}, but the dataplane is in mesh {short(mesh)}; "
            "generate a token for this mesh"
        )
    if is_revoked(verified.token_id, revoked_ids):
        raise TokenRevoked(verified.token_id)
    return DataplaneTokenClaims(
        mesh=token_mesh,
        name=name,
        tags=tags,
        proxy_type=proxy_type,
        token_id=verified.token_id,
        key_id=verified.key_id,
        issued_at=verified.issued_at,
        not_before=verified.not_before,
        expires_at=verified.expires_at,
    )


def check_dataplane_identity(
    claims: DataplaneTokenClaims,
    *,
    name: str,
    proxy_type: ProxyType,
    tag_values: Mapping[str, Collection[str]],
) -> None:
    """Raise TokenMismatch unless a proxy called ``name`` of ``proxy_type`` may use the token.

    ``tag_values`` maps each tag name to every value the dataplane's inbounds give it. For each tag in
    the token, that set must be exactly the token's value.
    """
    if claims.proxy_type != proxy_type:
        raise TokenMismatch(f"token is for a {claims.proxy_type} proxy, but this proxy is a {proxy_type}")
    if claims.name is not None and claims.name != name:
        raise TokenMismatch(
            f"token is for dataplane {short(claims.name)}, but this dataplane is {short(name)}"
        )
    for tag, value in sorted(claims.tags.items()):
        found = set(tag_values.get(tag, ()))
        if found != {value}:
            have = short(", ".join(sorted(found))) if found else "no value"
            raise TokenMismatch(f"token allows only {tag}={value}, but the dataplane has {tag}: {have}")
