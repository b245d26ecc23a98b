"""The exceptions kmesh raises, all rooted at :class:`KmeshError`.

The tree::

    KmeshError
    ├── ConfigError            bad settings for a command (file, env var, flag)
    ├── InvalidResource        a resource document failed validation; carries every FieldViolation
    ├── StoreError             raised by a ResourceStore
    │   ├── NotFound           the resource does not exist            (retry: no)
    │   ├── AlreadyExists      create of an existing resource          (retry: no)
    │   ├── Conflict           version check failed, concurrent write  (retry: yes, after re-reading)
    │   ├── InvalidReference   the mesh or owner it needs is missing   (retry: no)
    │   └── StoreUnavailable   the backing store cannot be reached     (retry: yes, with backoff)
    ├── ProtocolError          a peer broke the wire protocol
    │   ├── LocalProtocolError   we were asked to send something illegal
    │   └── RemoteProtocolError  the peer sent something illegal
    ├── TokenError             kmesh.tokens: a zone or dataplane token was refused (``.code``, ``.reason``)
    ├── PkiError               kmesh.pki: a CSR, CA or identity is unusable (``.code``)
    ├── StartupError           kmesh.cp: a control plane could not start (names the setting)
    └── (kmeshctl)             kmesh.cli: CpUnreachable, ApiError, BadResponse, UnknownType, ...

Subtrees that belong to one package are defined there, next to the code that raises them.
Foreign exceptions (sqlite3, OSError, yaml) are translated into these only at I/O edges.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "Conflict",
    "FieldViolation",
    "InvalidReference",
    "InvalidResource",
    "KmeshError",
    "LocalProtocolError",
    "NotFound",
    "ProtocolError",
    "RemoteProtocolError",
    "StoreError",
    "StoreUnavailable",
]


class KmeshError(Exception):
    """Root of every error kmesh raises on purpose."""


class ConfigError(KmeshError):
    """A setting is missing or wrong; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One thing wrong with one field: ``field`` is a dotted path such as ``spec.from[0].targetRef``."""

    field: str
    reason: str


class InvalidResource(KmeshError):
    """A resource failed validation.

    ``source`` says where the document came from (``"dp.yaml, document 2"``), ``line`` is the 1-based line
    of the offending field in that source where it is known.
    """

    def __init__(
        self,
        violations: list[FieldViolation],
        *,
        source: str | None = None,
        line: int | None = None,
        resource: str | None = None,
    ) -> None:
        self.violations = violations
        self.source = source
        self.line = line
        self.resource = resource
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.resource:
            where.append(self.resource)
        prefix = f"{', '.join(where)}: " if where else ""
        details = "; ".join(f"{v.field}: {v.reason}" if v.field else v.reason for v in self.violations)
        return f"{prefix}{details}"


class StoreError(KmeshError):
    """Raised by a ResourceStore."""


class NotFound(StoreError):
    """The resource does not exist. Not retryable."""


class AlreadyExists(StoreError):
    """A create named a resource that already exists. Not retryable."""


class Conflict(StoreError):
    """The expected version did not match the stored one. Retryable after reading the resource again."""


class InvalidReference(StoreError):
    """The mesh or owner a resource needs does not exist. Not retryable until that is created."""


class StoreUnavailable(StoreError):
    """The backing store cannot be reached or was closed. Retryable with backoff."""


class ProtocolError(KmeshError):
    """A wire protocol was broken. ``code`` goes into a NACK or a close reason."""

    def __init__(self, message: str, *, code: str = "protocol_error") -> None:
        self.code = code
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""
