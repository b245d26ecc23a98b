"""Signed tokens: zone tokens (a zone control plane to the global) and dataplane tokens (a proxy to its zone).

Both are ES256 JWTs signed with a :class:`SigningKey` (ECDSA P-256). A :class:`KeySet` holds the keys valid
at one time: the newest signs, any verifies by the ``kid`` in the token header, so keys rotate without
invalidating tokens in flight. Verification takes the current time as an argument and raises a
:class:`TokenError` whose ``code`` and message can be sent to the peer (see ``_errors`` for the tree).
``_storage`` maps keys and revocation lists to Secrets and GlobalSecrets, and documents their names.

Sans-IO: nothing here imports asyncio or socket, reads a clock or touches a file.
"""

from __future__ import annotations

from kmesh.tokens._dataplane import (
    DATAPLANE_AUDIENCE,
    DATAPLANE_ISSUER,
    PROXY_TYPES,
    DataplaneTokenClaims,
    ProxyType,
    check_dataplane_identity,
    issue_dataplane_token,
    verify_dataplane_token,
)
from kmesh.tokens._errors import (
    InvalidSignature,
    MalformedToken,
    TokenError,
    TokenExpired,
    TokenMismatch,
    TokenNotYetValid,
    TokenRevoked,
    UnknownSigningKey,
    WrongScope,
    WrongTokenType,
    ZoneMissing,
)
from kmesh.tokens._jwt import ALGORITHM, DEFAULT_LEEWAY_S
from kmesh.tokens._keys import KeySet, PublicKey, SigningKey, VerifyingKey, generate_signing_key
from kmesh.tokens._storage import (
    DATAPLANE_SIGNING_KEY_PREFIX,
    ZONE_SIGNING_KEY_PREFIX,
    ZONE_SIGNING_PUBLIC_KEY_PREFIX,
    ZONE_TOKEN_REVOCATIONS,
    dataplane_key_set,
    dataplane_revocations_name,
    dataplane_revocations_secret,
    dataplane_signing_key_name,
    dataplane_signing_key_secret,
    next_serial,
    public_key_from_data,
    public_key_to_data,
    revocations_from_data,
    revocations_to_data,
    revoked_ids,
    signing_key_from_data,
    signing_key_to_data,
    zone_key_set,
    zone_public_key_secrets,
    zone_public_key_set,
    zone_revocations_secret,
    zone_signing_key_name,
    zone_signing_key_secret,
    zone_signing_public_key_name,
    zone_signing_public_key_secret,
)
from kmesh.tokens._zone import (
    ZONE_AUDIENCE,
    ZONE_ISSUER,
    ZONE_SCOPES,
    ZoneTokenClaims,
    issue_zone_token,
    verify_zone_token,
)

__all__ = [
    "ALGORITHM",
    "DATAPLANE_AUDIENCE",
    "DATAPLANE_ISSUER",
    "DATAPLANE_SIGNING_KEY_PREFIX",
    "DEFAULT_LEEWAY_S",
    "PROXY_TYPES",
    "ZONE_AUDIENCE",
    "ZONE_ISSUER",
    "ZONE_SCOPES",
    "ZONE_SIGNING_KEY_PREFIX",
    "ZONE_SIGNING_PUBLIC_KEY_PREFIX",
    "ZONE_TOKEN_REVOCATIONS",
    "DataplaneTokenClaims",
    "InvalidSignature",
    "KeySet",
    "MalformedToken",
    "ProxyType",
    "PublicKey",
    "SigningKey",
    "TokenError",
    "TokenExpired",
    "TokenMismatch",
    "TokenNotYetValid",
    "TokenRevoked",
    "UnknownSigningKey",
    "VerifyingKey",
    "WrongScope",
    "WrongTokenType",
    "ZoneMissing",
    "ZoneTokenClaims",
    "check_dataplane_identity",
    "dataplane_key_set",
    "dataplane_revocations_name",
    "dataplane_revocations_secret",
    "dataplane_signing_key_name",
    "dataplane_signing_key_secret",
    "generate_signing_key",
    "issue_dataplane_token",
    "issue_zone_token",
    "next_serial",
    "public_key_from_data",
    "public_key_to_data",
    "revocations_from_data",
    "revocations_to_data",
    "revoked_ids",
    "signing_key_from_data",
    "signing_key_to_data",
    "verify_dataplane_token",
    "verify_zone_token",
    "zone_key_set",
    "zone_public_key_secrets",
    "zone_public_key_set",
    "zone_revocations_secret",
    "zone_signing_key_name",
    "zone_signing_key_secret",
    "zone_signing_public_key_name",
    "zone_signing_public_key_secret",
]
