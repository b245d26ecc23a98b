"""Why a token was refused: one exception per reason, each with a ``code`` for a ``Reject`` or a close.

The tree (all under :class:`kmesh.errors.KmeshError`)::

    TokenError               code                  a token was refused
    ├── MalformedToken       token_malformed       not a JWT, bad JSON, a claim missing or of the wrong type
    ├── InvalidSignature     token_bad_signature   the signature does not verify, or alg is not ES256
    │   └── UnknownSigningKey token_unknown_key    the ``kid`` names no key we hold (foreign or retired)
    ├── WrongTokenType       token_wrong_type      a dataplane token where a zone token belongs, or back
    ├── TokenExpired         token_expired         ``expires_at`` is past
    ├── TokenNotYetValid     token_not_yet_valid   ``not_before`` is still ahead
    ├── WrongScope           token_wrong_scope     the token does not grant the scope asked for
    ├── TokenRevoked         token_revoked         its id is on the revocation list
    ├── ZoneMissing          token_zone_missing    a zone token that names no zone
    └── TokenMismatch        token_mismatch        valid, but for another zone, mesh, name, tags or type

Rules: the message of every one of these may be sent to the peer that presented the token: it says what
was wrong and what to do, and never carries the token, a key or anything else secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import final

from kmesh.errors import KmeshError

__all__ = [
    "InvalidSignature",
    "MalformedToken",
    "TokenError",
    "TokenExpired",
    "TokenMismatch",
    "TokenNotYetValid",
    "TokenRevoked",
    "UnknownSigningKey",
    "WrongScope",
    "WrongTokenType",
    "ZoneMissing",
]


def format_time(ts: float) -> str:
    """``ts`` (Unix seconds) as RFC 3339 UTC, as an operator reads it in a message."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TokenError(KmeshError):
    """A token was refused. ``code`` is the machine-readable reason; the message is safe to send back."""

    code = "token_invalid"

    def __init__(self, message: str) -> None:
        self.reason = message
        super().__init__(message)


@final
class MalformedToken(TokenError):
    code = "token_malformed"


class InvalidSignature(TokenError):
    code = "token_bad_signature"


@final
class UnknownSigningKey(InvalidSignature):
    """The token names a key id that is not in the key set: signed elsewhere, or by a retired key."""

    code = "token_unknown_key"

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"token is signed by key {key_id[:64]!r}, which this control plane does not hold "
            "(a token of another control plane, or of a signing key that was removed); generate a new token"
        )


@final
class WrongTokenType(TokenError):
    code = "token_wrong_type"


@final
class TokenExpired(TokenError):
    code = "token_expired"

    def __init__(self, expires_at: float, now: float) -> None:
        self.expires_at = expires_at
        super().__init__(
            f"token expired at {format_time(expires_at)} ({now - expires_at:.0f}s ago); generate a new token"
        )


@final
class TokenNotYetValid(TokenError):
    code = "token_not_yet_valid"

    def __init__(self, not_before: float, now: float) -> None:
        self.not_before = not_before
        super().__init__(
            f"token is not valid before {format_time(not_before)} (in {not_before - now:.0f}s); "
            "check that the clocks of the issuer and this control plane agree"
        )


@final
class WrongScope(TokenError):
    code = "token_wrong_scope"

    def __init__(self, required: str, granted: frozenset[str]) -> None:
        self.required = required
        self.granted = granted
        super().__init__(
            f"token grants scope {', '.join(sorted(granted)) or '(none)'} but {required!r} is needed; "
            f"generate a token with --scope {required}"
        )


@final
class TokenRevoked(TokenError):
    code = "token_revoked"

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"token {token_id!r} was revoked; generate a new token")


@final
class ZoneMissing(TokenError):
    code = "token_zone_missing"


@final
class TokenMismatch(TokenError):
    code = "token_mismatch"
