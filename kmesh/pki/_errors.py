"""Why certificate material was refused: one exception per reason, each with a ``code`` for a ``Reject``.

The tree (all under :class:`kmesh.errors.KmeshError`; each is also a ``ValueError``, since each says that
some bytes handed in were not what they had to be)::

    PkiError              code                  certificate material was refused
    ├── InvalidCsr        csr_invalid           not a PEM CSR, its signature fails, or its key type is refused
    ├── InvalidCa         ca_invalid            not a CA, key does not match, expired, bad PEM, half stored
    ├── CaUnavailable     ca_unavailable        a data source names a Secret we lack, or a file not read yet
    └── InvalidIdentity   identity_invalid      a certificate carries no (or a malformed) kmesh identity

Rules: a message says what was wrong, where (mesh, backend, field, secret) and what to do. It never carries
a private key, nor the text of an exception raised while parsing one (that text could quote key bytes).
``CaUnavailable`` is the one worth retrying: the Secret may arrive with the next KDS update.
"""

from __future__ import annotations

from typing import final

from kmesh.errors import KmeshError

__all__ = ["CaUnavailable", "InvalidCa", "InvalidCsr", "InvalidIdentity", "PkiError"]


class PkiError(KmeshError, ValueError):
    """Certificate material was refused. ``code`` is the machine-readable reason; the message is safe to
    send back to the peer that sent the material.
    """

    code = "pki_error"

    def __init__(self, message: str) -> None:
        self.reason = message
        super().__init__(message)


@final
class InvalidCsr(PkiError):
    """A proxy's certificate signing request was refused: it does not parse, its signature does not verify
    with the key it carries, or that key is neither ECDSA (P-256/P-384) nor RSA of 2048 bits or more.
    Not retryable with the same CSR.
    """

    code = "csr_invalid"


@final
class InvalidCa(PkiError):
    """CA material cannot sign: bad PEM, not a CA certificate, no ``keyCertSign``, a key that does not match
    the certificate, outside its validity period, or only one of the cert/key pair stored. Not retryable
    until an operator fixes the material.
    """

    code = "ca_invalid"


@final
class CaUnavailable(PkiError):
    """A provided CA's data source cannot be read here: it names a Secret this control plane does not hold
    (yet), or a file the caller has not read. Retryable once the Secret arrives or the file is read.
    """

    code = "ca_unavailable"


@final
class InvalidIdentity(PkiError):
    """A certificate does not name exactly one mesh and at least one service in ``spiffe://`` URI SANs, or
    carries a ``spiffe://``/``kuma://`` URI kmesh does not write. The peer is refused.
    """

    code = "identity_invalid"
