"""Signing keys for tokens: ECDSA P-256 key pairs (JWS ``ES256``), and the set of keys valid at once.

Rules:
- A key's id (``kid``, written in every token header) is derived from its public key: the first 12 bytes of
  the SHA-256 of its DER SubjectPublicKeyInfo, base64url without padding (16 characters). Two control planes
  that hold the same key agree on its id without storing it, and a foreign key never collides by accident.
- Keys are serialized as unencrypted PKCS#8 PEM. The private half never appears in ``repr`` or logs;
  whoever writes ``private_pem()`` to disk makes the file 0600.
- A :class:`KeySet` is ordered oldest first: the newest key signs, any key verifies (by ``kid``), so a key
  can be rotated in, and the old one retired once its tokens have expired.
- A :class:`PublicKey` is the public half alone: a KeySet of them verifies tokens but cannot sign (a zone
  control plane verifies the global's zone tokens with the public keys synced to it).
- Equality of two keys compares private key material with ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from typing import Final, final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["KeySet", "PublicKey", "SigningKey", "VerifyingKey", "generate_signing_key", "key_id"]

_KID_BYTES: Final = 12


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The ``kid`` of a public key: a short, stable hash of its SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der).digest()[:_KID_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@final
class SigningKey:
    """An ES256 key pair with its key id.

    Build one with :func:`generate_signing_key` or :meth:`from_pem`. Raises ValueError for a key that is not
    on the P-256 curve: ES256 is defined on that curve only (RFC 7518 section 3.4).
    """

    __slots__ = ("_private", "_public", "kid")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("a token signing key must be an ECDSA key on curve P-256 (secp256r1)")
        self._private = private_key
        self._public = private_key.public_key()
        self.kid: Final = key_id(self._public)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> SigningKey:
        """Load a key from PEM (PKCS#8 or SEC1 "EC PRIVATE KEY").

        Raises ValueError when the text is not an unencrypted private key or the key is not P-256; the
        message never quotes the input.
        """
        data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            # cryptography's messages do not echo key bytes, but stay generic all the same.
            raise ValueError("not an unencrypted PEM private key") from exc
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError(f"a token signing key must be ECDSA P-256, got {type(private).__name__}")
        return cls(private)

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The private key object, for signing. Never log or print it."""
        return self._private

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM: write it only to a file of mode 0600 or a secret."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM, enough to verify tokens."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _private_der(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        # Key material is secret: compare it in constant time, so equality checks leak nothing.
        return hmac.compare_digest(self._private_der(), other._private_der())

    def __hash__(self) -> int:
        return hash(self.kid)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


@final
class PublicKey:
    """The public half of an ES256 key pair with its key id (the same id as its :class:`SigningKey`'s):
    enough to verify tokens, never to sign them.

    Build one with :meth:`of` or :meth:`from_pem`. Raises ValueError for a key that is not on P-256.
    """

    __slots__ = ("_public", "kid")

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("a token verification key must be an ECDSA key on curve P-256 (secp256r1)")
        self._public = public_key
        self.kid: Final = key_id(public_key)

    @classmethod
    def of(cls, key: SigningKey | PublicKey) -> PublicKey:
        """The public half of ``key``."""
        return cls(key.public_key)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> PublicKey:
        """Load a key from SubjectPublicKeyInfo PEM. Raises ValueError when the text is not a P-256 public
        key; the message never quotes the input."""
        data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
        try:
            public = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a PEM public key") from exc
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError(f"a token verification key must be ECDSA P-256, got {type(public).__name__}")
        return cls(public)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def public_pem(self) -> bytes:
        """The key as SubjectPublicKeyInfo PEM."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.public_pem() == other.public_pem()

    def __hash__(self) -> int:
        return hash(self.kid)

    def __repr__(self) -> str:
        return f"PublicKey(kid={self.kid!r})"


# What a KeySet verifies with: a whole key pair, or its public half alone.
VerifyingKey = SigningKey | PublicKey


def generate_signing_key() -> SigningKey:
    """A new random P-256 key."""
    return SigningKey(ec.generate_private_key(ec.SECP256R1()))


@final
class KeySet:
    """The keys valid at one time, oldest first. The newest signs; any of them verifies.

    A set may hold :class:`PublicKey` values: it verifies with them, and signs only when its newest key is
    a :class:`SigningKey`. Raises ValueError when two keys share a key id (the same key given twice).
    """

    __slots__ = ("_by_kid", "_keys")

    def __init__(self, keys: Iterable[VerifyingKey] = ()) -> None:
        self._keys: tuple[VerifyingKey, ...] = tuple(keys)
        self._by_kid: dict[str, VerifyingKey] = {}
        for key in self._keys:
            if key.kid in self._by_kid:
                raise ValueError(f"key {key.kid!r} appears twice in the key set")
            self._by_kid[key.kid] = key

    @property
    def signing_key(self) -> SigningKey:
        """The newest key. Raises LookupError when the set is empty or its newest key is public only."""
        if not self._keys:
            raise LookupError("no token signing key exists yet; one must be generated first")
        newest = self._keys[-1]
        if not isinstance(newest, SigningKey):
            raise LookupError("this key set holds public keys only: it verifies tokens but cannot sign them")
        return newest

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(key.kid for key in self._keys)

    def get(self, kid: str) -> VerifyingKey | None:
        """The key whose id is ``kid``, or None."""
        return self._by_kid.get(kid)

    def public(self) -> KeySet:
        """The same keys, public halves only: it verifies exactly what this set verifies."""
        return KeySet(PublicKey.of(key) for key in self._keys)

    def rotated(self, new_key: VerifyingKey) -> KeySet:
        """This set with ``new_key`` added as the newest: it signs from now on, the others still verify."""
        return KeySet((*self._keys, new_key))

    def without(self, kid: str) -> KeySet:
        """This set with key ``kid`` retired: tokens it signed stop verifying. Raises KeyError if absent."""
        if kid not in self._by_kid:
            raise KeyError(kid)
        return KeySet(key for key in self._keys if key.kid != kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __iter__(self) -> Iterator[VerifyingKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self.kids)!r})"
