"""The envelope every stored resource shares: its key, its metadata and its typed spec.

Identity is ``(type, mesh, name, zone)``: ``zone`` is the zone of origin of a resource synced up from a
zone control plane and ``""`` for one created on this control plane, so two zones may each own a
``web-1`` without renaming either. ``version`` is bumped by the store on every write; ``0`` means "never
stored".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final, final

import msgspec

__all__ = [
    "LABEL_ORIGIN",
    "LABEL_PROTOCOL",
    "LABEL_SERVICE",
    "LABEL_ZONE",
    "Meta",
    "Resource",
    "ResourceKey",
    "Spec",
]

LABEL_SERVICE: Final = "kuma.io/service"
LABEL_PROTOCOL: Final = "kuma.io/protocol"
LABEL_ZONE: Final = "kuma.io/zone"
LABEL_ORIGIN: Final = "kuma.io/origin"


class Spec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel", omit_defaults=True
):
    """Base of every resource spec and of every struct inside one.

    Field names are snake_case in Python and camelCase on the wire, as in Kuma's YAML. Subclasses must
    repeat ``kw_only=True`` and ``forbid_unknown_fields=True``: msgspec does not inherit those options.
    Fields equal to their default are left out when encoding (``omit_defaults``), so documents and stored
    specs carry only what was set, as Kuma's ``omitempty`` fields do.
    """

    def problems(self) -> Iterator[tuple[str, str]]:
        """Rules this struct breaks beyond what its field types already enforce.

        Yields ``(field, reason)`` with ``field`` relative to this struct in wire names (``"port"``,
        ``"backends[1].name"``, ``""`` for the struct as a whole). Nested structs report their own
        problems; the validator in ``kmesh.model._validate`` walks the tree and prefixes the paths.
        """
        return iter(())


@final
class ResourceKey(msgspec.Struct, frozen=True, order=True):
    """Identity of a stored resource."""

    type: str
    name: str
    mesh: str = ""
    zone: str = ""

    def __str__(self) -> str:
        parts = [self.type]
        if self.mesh:
            parts.append(f"mesh={self.mesh}")
        if self.zone:
            parts.append(f"zone={self.zone}")
        return f"{' '.join(parts)} {self.name!r}"


@final
class Meta(msgspec.Struct, frozen=True, kw_only=True):
    """Metadata of a resource; ``version`` and the times are set by the store."""

    type: str
    name: str
    mesh: str = ""
    zone: str = ""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    version: int = 0
    creation_time: datetime | None = None
    modification_time: datetime | None = None
    owner: ResourceKey | None = None

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.type, self.name, self.mesh, self.zone)


@final
class Resource(msgspec.Struct, frozen=True, kw_only=True):
    """A resource: metadata plus the typed spec of its descriptor's ``spec_type``."""

    meta: Meta
    spec: Spec

    @property
    def key(self) -> ResourceKey:
        return self.meta.key
