"""Helpers for the token tests: a fixed clock and ways to hand-craft tokens.

``es256_sign`` and ``unsigned`` build a JWS from raw header and payload values without going through
kmesh's issuer, to show the verifier what an attacker, a buggy issuer or another product might send.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt

from kmesh.tokens import SigningKey

NOW = 1_700_000_000.0
HOUR = 3600.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Header and payload of a compact JWS as dicts, and its signature segment as is."""
    header, payload, signature = token.split(".")
    return json.loads(_unb64url(header)), json.loads(_unb64url(payload)), signature


def es256_sign(key: SigningKey, payload: dict[str, Any] | bytes, *, kid: str | None = "auto") -> str:
    """A JWS signed by ``key`` over exactly ``payload`` (``kid`` "auto": the key's id, None: no kid)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {} if kid is None else {"kid": key.kid if kid == "auto" else kid}
    return jwt.PyJWS().encode(body, key.private_key, algorithm="ES256", headers=headers)


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with the given header and payload and an arbitrary signature."""
    return f"{b64url_json(header)}.{b64url_json(payload)}.{b64url(signature)}"


def zone_claims(**overrides: Any) -> dict[str, Any]:
    """A zone token payload as kmesh issues it, with ``overrides`` applied (None deletes a claim)."""
    claims: dict[str, Any] = {
        "iss": "kmesh-global",
        "aud": "kmesh-zone",
        "sub": "zone-1",
        "zone": "zone-1",
        "scope": ["cp"],
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW + HOUR),
        "jti": "token-1",
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims
