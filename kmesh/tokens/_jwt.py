"""The JWT core shared by zone and dataplane tokens: sign a claim set, verify a token against a KeySet.

Rules:
- ES256 only. The header's ``alg`` is checked before anything else and PyJWT is told the same
  (``algorithms=["ES256"]``), so ``alg: none`` and the HS256-keyed-with-the-public-key confusion
  (RFC 8725 section 2.1) never pass. The verifying key is the one the header's ``kid`` names in the KeySet.
- Time is passed in (``now``, Unix seconds). PyJWT compares ``exp``/``nbf``/``iat`` with the system clock,
  so those checks are off there and done here against ``now`` with ``leeway_s`` either way: expired when
  ``exp <= now - leeway`` (RFC 7519 section 4.1.4: valid only before ``exp``), not yet valid when
  ``nbf > now + leeway``.
- Every token carries ``iss``, ``aud``, ``iat``, ``nbf``, ``exp`` and ``jti``; one without them is
  malformed. ``aud`` names the kind of token, so a dataplane token never passes as a zone token even when
  one key signs both.
- Issued times are whole seconds (JWT NumericDate as integers, which every JWT library reads).
- PyJWT's exceptions are translated into the TokenError tree here and go no further.
"""

from __future__ import annotations

import hmac
import math
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any, Final, final

import jwt
import msgspec

from kmesh.tokens._errors import (
    InvalidSignature,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    UnknownSigningKey,
    WrongTokenType,
)
from kmesh.tokens._keys import KeySet, SigningKey, VerifyingKey

__all__ = [
    "ALGORITHM",
    "DEFAULT_LEEWAY_S",
    "Verified",
    "check_token_id",
    "is_revoked",
    "new_token_id",
    "short",
    "sign",
    "time_claims",
    "verify",
]

ALGORITHM: Final = "ES256"
# Clock skew tolerated between the signer and the verifier (they are different machines for dataplane
# tokens, which any control plane of the mesh verifies).
DEFAULT_LEEWAY_S: Final = 60.0
# A kmesh token is a few hundred characters; anything far bigger is refused before it is parsed.
MAX_TOKEN_CHARS: Final = 8192
# Token ids go one per line into a revocation list: printable ASCII, no whitespace.
_TOKEN_ID: Final = re.compile(r"[!-~]{1,128}")
_REQUIRED: Final = ("iss", "aud", "iat", "nbf", "exp", "jti")


@final
class Verified(msgspec.Struct, frozen=True, kw_only=True):
    """A token whose signature, kind and validity period have been checked; ``claims`` is its payload."""

    claims: dict[str, Any]
    key_id: str
    token_id: str
    issued_at: float
    not_before: float
    expires_at: float


def new_token_id() -> str:
    """A fresh random token id (a UUID4), as Kuma uses for ``jti``."""
    return str(uuid.uuid4())


def check_token_id(token_id: str) -> None:
    """Raises ValueError unless ``token_id`` fits on one line of a revocation list."""
    if not _TOKEN_ID.fullmatch(token_id):
        raise ValueError(
            f"token id {token_id!r} must be 1-128 printable ASCII characters without spaces"
            " (it is written one per line in the revocation list)"
        )


def time_claims(now: float, valid_for_s: float) -> dict[str, int]:
    """``iat``, ``nbf`` and ``exp`` for a token issued at ``now`` that lives ``valid_for_s`` seconds.

    Raises ValueError when ``now`` is not a finite time or ``valid_for_s`` is shorter than one second
    (``exp`` would not be after ``iat`` in whole seconds).
    """
    if not math.isfinite(now) or now < 0:
        raise ValueError(f"now must be a Unix time in seconds, got {now!r}")
    if not (math.isfinite(valid_for_s) and valid_for_s >= 1):
        raise ValueError(f"a token must be valid for at least 1s, got {valid_for_s!r}s")
    issued = math.floor(now)
    return {"iat": issued, "nbf": issued, "exp": math.floor(now + valid_for_s)}


def sign(key: SigningKey | KeySet, claims: Mapping[str, Any]) -> str:
    """The compact JWS of ``claims`` signed with ``key`` (a KeySet signs with its newest key).

    Raises LookupError for an empty KeySet.
    """
    signer = key.signing_key if isinstance(key, KeySet) else key
    return jwt.encode(dict(claims), signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid})


def verify(
    token: str, keys: KeySet, *, issuer: str, audience: str, kind: str, now: float, leeway_s: float
) -> Verified:
    """Check ``token``'s form, signature, kind (``iss``, ``aud``) and validity period at ``now``.

    ``kind`` names the expected token in messages (``"a zone token"``). Raises MalformedToken,
    InvalidSignature, UnknownSigningKey, WrongTokenType, TokenExpired or TokenNotYetValid.
    """
    if not isinstance(token, str):
        raise MalformedToken(f"expected a token as text, got {type(token).__name__}")
    # Token files usually end with a newline; surrounding whitespace is never part of a JWT.
    token = token.strip()
    if not token:
        raise MalformedToken("the token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"the token is {len(token)} characters long, more than {MAX_TOKEN_CHARS}")
    key = _key_for(token, keys)
    try:
        claims = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "require": list(_REQUIRED),
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidSignature(
            "token signature does not verify: the token was altered, or it was signed by another key"
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise MalformedToken(f"token has no {exc.claim!r} claim; it was not issued by kmesh") from None
    except jwt.InvalidTokenError as exc:
        raise MalformedToken(f"not a valid token: {exc}") from None
    _check_kind(claims, issuer=issuer, audience=audience, kind=kind)
    issued_at = _numeric(claims, "iat")
    not_before = _numeric(claims, "nbf")
    expires_at = _numeric(claims, "exp")
    if expires_at <= now - leeway_s:
        raise TokenExpired(expires_at, now)
    if not_before > now + leeway_s:
        raise TokenNotYetValid(not_before, now)
    token_id = claims["jti"]
    if not isinstance(token_id, str) or not token_id:
        raise MalformedToken("token claim 'jti' must be a non-empty string")
    return Verified(
        claims=claims,
        key_id=key.kid,
        token_id=token_id,
        issued_at=issued_at,
        not_before=not_before,
        expires_at=expires_at,
    )


def _key_for(token: str, keys: KeySet) -> VerifyingKey:
    """The key that must have signed ``token``, chosen by its header (which is not trusted for more)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise MalformedToken(f"not a signed token (expected header.payload.signature): {exc}") from None
    alg = header.get("alg")
    if alg is None:
        raise MalformedToken("token header has no algorithm ('alg'); it was not issued by kmesh")
    if alg != ALGORITHM:
        raise InvalidSignature(
            f"token algorithm {short(alg)} is not accepted: kmesh tokens are signed with ES256"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise MalformedToken("token header has no key id ('kid'); it was not issued by kmesh")
    key = keys.get(kid)
    if key is None:
        raise UnknownSigningKey(kid)
    return key


def _check_kind(claims: Mapping[str, Any], *, issuer: str, audience: str, kind: str) -> None:
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise MalformedToken("token claim 'aud' must be a string or a list of strings")
    if audience not in audiences:
        raise WrongTokenType(f"expected {kind}, got a token for {short(', '.join(audiences))}")
    if claims["iss"] != issuer:
        raise WrongTokenType(
            f"expected {kind} issued by {issuer!r}, got one issued by {short(claims['iss'])}"
        )


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    # bool is an int in Python but not a NumericDate in JSON.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedToken(f"token claim {name!r} must be a number of seconds")
    return float(value)


def short(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to ``limit`` characters: claims come from the peer and go back into messages."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def is_revoked(token_id: str, revoked_ids: Collection[str]) -> bool:
    """Whether ``token_id`` is on the revocation list.

    Every entry is compared with ``hmac.compare_digest``: a token id is part of a bearer credential, so the
    time this takes must not tell an attacker how much of one matched.
    """
    presented = token_id.encode("utf-8")
    revoked = False
    for entry in revoked_ids:
        # No early exit: the loop takes the same time wherever (or whether) the id is found.
        revoked |= hmac.compare_digest(presented, entry.encode("utf-8"))
    return revoked
