"""Where token signing keys and revocation lists live in the store: pure conversions to and from secrets.

The naming convention (Kuma's, so an operator's habits carry over)::

    GlobalSecret  zone-token-signing-key-<serial>                   a zone token signing key
    GlobalSecret  zone-token-signing-public-key-<serial>            its public half (synced to zones)
    GlobalSecret  zone-token-revocations                            revoked zone token ids
    Secret        dataplane-token-signing-key-<mesh>-<serial>       (in <mesh>) a dataplane token signing key
    Secret        dataplane-token-revocations-<mesh>                (in <mesh>) revoked dataplane token ids

Rules:
- A signing key secret's ``data`` is the base64 of the key's unencrypted PKCS#8 PEM. ``<serial>`` is a
  positive integer without leading zeros; the highest serial is the newest key, the one that signs, and
  rotation adds ``serial + 1`` (:func:`next_serial`). Retiring a key is deleting its secret.
- A revocation secret's ``data`` is the base64 of token ids (``jti``), one per line; blank lines and
  surrounding whitespace are ignored, so an operator may edit the list by hand.
- A public key secret's ``data`` is the base64 of the SubjectPublicKeyInfo PEM of the signing key of the
  same serial; the global keeps one for each zone signing key (:func:`zone_public_key_secrets`).
- Zone signing keys are GlobalSecrets: they never leave the global. Their public halves and the zone
  revocation list are the only GlobalSecrets KDS carries (global to zones, by name prefix, as Kuma does),
  so a zone control plane can verify zone tokens of scope ingress/egress without the private key.
  Dataplane signing keys are mesh Secrets, synced to every zone, so any control plane of the mesh can
  verify (and sign) its tokens.
- Everything here is pure: it builds and reads ``Resource`` values; the caller reads and writes the store.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Final

from kmesh.model import Resource, new_resource
from kmesh.model.types import GlobalSecretSpec, SecretSpec
from kmesh.tokens._jwt import check_token_id
from kmesh.tokens._keys import KeySet, PublicKey, SigningKey

__all__ = [
    "DATAPLANE_SIGNING_KEY_PREFIX",
    "ZONE_SIGNING_KEY_PREFIX",
    "ZONE_SIGNING_PUBLIC_KEY_PREFIX",
    "ZONE_TOKEN_REVOCATIONS",
    "dataplane_key_set",
    "dataplane_revocations_name",
    "dataplane_revocations_secret",
    "dataplane_signing_key_name",
    "dataplane_signing_key_secret",
    "next_serial",
    "public_key_from_data",
    "public_key_to_data",
    "revocations_from_data",
    "revocations_to_data",
    "revoked_ids",
    "signing_key_from_data",
    "signing_key_to_data",
    "zone_key_set",
    "zone_public_key_secrets",
    "zone_public_key_set",
    "zone_revocations_secret",
    "zone_signing_key_name",
    "zone_signing_key_secret",
    "zone_signing_public_key_name",
    "zone_signing_public_key_secret",
]

ZONE_SIGNING_KEY_PREFIX: Final = "zone-token-signing-key"
# The KDS selection of GlobalSecrets (the GlobalSecret descriptor's kds_name_prefixes) names these two.
ZONE_SIGNING_PUBLIC_KEY_PREFIX: Final = "zone-token-signing-public-key"
ZONE_TOKEN_REVOCATIONS: Final = "zone-token-revocations"
DATAPLANE_SIGNING_KEY_PREFIX: Final = "dataplane-token-signing-key"
_DATAPLANE_REVOCATIONS_PREFIX: Final = "dataplane-token-revocations"
_SERIAL: Final = re.compile(r"[1-9][0-9]{0,17}")


def zone_signing_key_name(serial: int) -> str:
    """``zone-token-signing-key-<serial>``. Raises ValueError for a serial below 1."""
    return f"{ZONE_SIGNING_KEY_PREFIX}-{_check_serial(serial)}"


def zone_signing_public_key_name(serial: int) -> str:
    """``zone-token-signing-public-key-<serial>``. Raises ValueError for a serial below 1."""
    return f"{ZONE_SIGNING_PUBLIC_KEY_PREFIX}-{_check_serial(serial)}"


def dataplane_signing_key_name(mesh: str, serial: int) -> str:
    """``dataplane-token-signing-key-<mesh>-<serial>``. Raises ValueError for a serial below 1."""
    return f"{DATAPLANE_SIGNING_KEY_PREFIX}-{mesh}-{_check_serial(serial)}"


def dataplane_revocations_name(mesh: str) -> str:
    return f"{_DATAPLANE_REVOCATIONS_PREFIX}-{mesh}"


def _check_serial(serial: int) -> int:
    if serial < 1:
        raise ValueError(f"a signing key serial is a positive integer, got {serial}")
    return serial


def signing_key_to_data(key: SigningKey) -> str:
    """The base64 ``data`` of the secret that stores ``key``."""
    return base64.b64encode(key.private_pem()).decode("ascii")


def signing_key_from_data(data: str) -> SigningKey:
    """The key stored in a secret's base64 ``data``. Raises ValueError when it holds no P-256 key."""
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret data is not base64") from exc
    return SigningKey.from_pem(pem)


def public_key_to_data(key: SigningKey | PublicKey) -> str:
    """The base64 ``data`` of the secret that stores the public half of ``key``."""
    return base64.b64encode(key.public_pem()).decode("ascii")


def public_key_from_data(data: str) -> PublicKey:
    """The public key stored in a secret's base64 ``data``. Raises ValueError when it holds no P-256
    public key."""
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret data is not base64") from exc
    return PublicKey.from_pem(pem)


def zone_signing_public_key_secret(key: SigningKey | PublicKey, serial: int) -> Resource:
    """The GlobalSecret ``zone-token-signing-public-key-<serial>`` holding the public half of ``key``."""
    spec = GlobalSecretSpec(data=public_key_to_data(key))
    return new_resource("GlobalSecret", zone_signing_public_key_name(serial), spec)


def zone_signing_key_secret(key: SigningKey, serial: int) -> Resource:
    """The GlobalSecret ``zone-token-signing-key-<serial>`` holding ``key``."""
    spec = GlobalSecretSpec(data=signing_key_to_data(key))
    return new_resource("GlobalSecret", zone_signing_key_name(serial), spec)


def dataplane_signing_key_secret(key: SigningKey, *, mesh: str, serial: int) -> Resource:
    """The Secret ``dataplane-token-signing-key-<mesh>-<serial>`` in ``mesh`` holding ``key``."""
    spec = SecretSpec(data=signing_key_to_data(key))
    return new_resource("Secret", dataplane_signing_key_name(mesh, serial), spec, mesh=mesh)


def _data_of(secret: Resource) -> str:
    if not isinstance(secret.spec, GlobalSecretSpec | SecretSpec):
        raise ValueError(f"{secret.key} is not a Secret or GlobalSecret")
    return secret.spec.data


def _serial_of(name: str, prefix: str) -> int | None:
    """The serial in ``<prefix>-<serial>``, or None when ``name`` is not such a name."""
    head, sep, tail = name.rpartition("-")
    if not sep or head != prefix or not _SERIAL.fullmatch(tail):
        return None
    return int(tail)


def _key_set(secrets: Iterable[Resource], *, type_name: str, mesh: str, prefix: str) -> KeySet:
    found: list[tuple[int, SigningKey]] = []
    for secret in secrets:
        meta = secret.meta
        if meta.type != type_name or meta.mesh != mesh:
            continue
        serial = _serial_of(meta.name, prefix)
        if serial is None:
            continue
        try:
            key = signing_key_from_data(_data_of(secret))
        except ValueError as exc:
            raise ValueError(f"{secret.key}: not a token signing key: {exc}") from None
        found.append((serial, key))
    found.sort(key=lambda pair: pair[0])
    return KeySet(key for _, key in found)


def zone_public_key_set(secrets: Iterable[Resource]) -> KeySet:
    """The zone token public keys among ``secrets`` (any resources), oldest serial first: a set that
    verifies zone tokens and cannot sign. Raises ValueError naming the secret when one holds no usable
    public key, or when two hold the same key."""
    found: list[tuple[int, PublicKey]] = []
    for secret in secrets:
        meta = secret.meta
        if meta.type != "GlobalSecret" or meta.mesh:
            continue
        serial = _serial_of(meta.name, ZONE_SIGNING_PUBLIC_KEY_PREFIX)
        if serial is None:
            continue
        try:
            key = public_key_from_data(_data_of(secret))
        except ValueError as exc:
            raise ValueError(f"{secret.key}: not a token public key: {exc}") from None
        found.append((serial, key))
    found.sort(key=lambda pair: pair[0])
    return KeySet(key for _, key in found)


def zone_public_key_secrets(secrets: Iterable[Resource]) -> list[Resource]:
    """The public key GlobalSecrets that must exist for the zone signing keys among ``secrets``: one
    ``zone-token-signing-public-key-<serial>`` per ``zone-token-signing-key-<serial>``, serial order.

    Raises ValueError as :func:`zone_key_set` does.
    """
    wanted: list[tuple[int, Resource]] = []
    for secret in secrets:
        meta = secret.meta
        if meta.type != "GlobalSecret" or meta.mesh:
            continue
        serial = _serial_of(meta.name, ZONE_SIGNING_KEY_PREFIX)
        if serial is None:
            continue
        try:
            key = signing_key_from_data(_data_of(secret))
        except ValueError as exc:
            raise ValueError(f"{secret.key}: not a token signing key: {exc}") from None
        wanted.append((serial, zone_signing_public_key_secret(key, serial)))
    wanted.sort(key=lambda pair: pair[0])
    return [resource for _, resource in wanted]


def zone_key_set(secrets: Iterable[Resource]) -> KeySet:
    """The zone token signing keys among ``secrets`` (any resources), oldest serial first.

    Raises ValueError naming the secret when a signing key secret holds no usable key, or when two
    secrets hold the same key.
    """
    return _key_set(secrets, type_name="GlobalSecret", mesh="", prefix=ZONE_SIGNING_KEY_PREFIX)


def dataplane_key_set(secrets: Iterable[Resource], *, mesh: str) -> KeySet:
    """The dataplane token signing keys of ``mesh`` among ``secrets``, oldest serial first.

    Raises ValueError as :func:`zone_key_set` does.
    """
    prefix = f"{DATAPLANE_SIGNING_KEY_PREFIX}-{mesh}"
    return _key_set(secrets, type_name="Secret", mesh=mesh, prefix=prefix)


def next_serial(secrets: Iterable[Resource], *, mesh: str | None = None) -> int:
    """The serial for the next signing key: one above the highest in use, 1 when there is none.

    ``mesh`` None looks at zone token keys, a mesh name at that mesh's dataplane token keys.
    """
    if mesh is None:
        type_name, prefix, where = "GlobalSecret", ZONE_SIGNING_KEY_PREFIX, ""
    else:
        type_name, prefix, where = "Secret", f"{DATAPLANE_SIGNING_KEY_PREFIX}-{mesh}", mesh
    serials = [
        serial
        for secret in secrets
        if secret.meta.type == type_name and secret.meta.mesh == where
        if (serial := _serial_of(secret.meta.name, prefix)) is not None
    ]
    return max(serials, default=0) + 1


def revocations_to_data(token_ids: Iterable[str]) -> str:
    """The base64 ``data`` of a revocation list: the ids sorted, one per line.

    Raises ValueError for an id that cannot stand on one line.
    """
    ids = sorted(set(token_ids))
    for token_id in ids:
        check_token_id(token_id)
    # An empty list is one newline: a secret's data must not be empty.
    text = "".join(f"{token_id}\n" for token_id in ids) or "\n"
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def revocations_from_data(data: str) -> frozenset[str]:
    """The token ids in a revocation list's base64 ``data``. Raises ValueError for data that is not
    base64 of UTF-8 text.
    """
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("revocation list is not base64 of UTF-8 text") from exc
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def zone_revocations_secret(token_ids: Iterable[str]) -> Resource:
    """The GlobalSecret ``zone-token-revocations`` listing ``token_ids``."""
    spec = GlobalSecretSpec(data=revocations_to_data(token_ids))
    return new_resource("GlobalSecret", ZONE_TOKEN_REVOCATIONS, spec)


def dataplane_revocations_secret(token_ids: Iterable[str], *, mesh: str) -> Resource:
    """The Secret ``dataplane-token-revocations-<mesh>`` in ``mesh`` listing ``token_ids``."""
    spec = SecretSpec(data=revocations_to_data(token_ids))
    return new_resource("Secret", dataplane_revocations_name(mesh), spec, mesh=mesh)


def revoked_ids(secret: Resource | None) -> frozenset[str]:
    """The token ids a revocation secret lists; none when there is no such secret yet.

    Raises ValueError when the secret's data is not a revocation list.
    """
    if secret is None:
        return frozenset()
    return revocations_from_data(_data_of(secret))
