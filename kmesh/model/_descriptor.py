"""One descriptor per resource type: the single table that the store, KDS, the REST API and kmeshctl
are generated from (as Kuma's ``ResourceTypeDescriptor``). Nothing else lists resource types by hand.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from kmesh.model._resource import Spec

__all__ = [
    "KdsDirection",
    "ResourceDescriptor",
    "Scope",
    "all_descriptors",
    "by_cli_name",
    "by_path",
    "descriptor",
    "register",
]


class Scope(enum.Enum):
    """Whether a resource lives inside a mesh (``/meshes/{mesh}/...``) or beside meshes."""

    GLOBAL = "global"
    MESH = "mesh"


class KdsDirection(enum.Enum):
    """Which way a type flows between the global and zone control planes."""

    NONE = "none"
    GLOBAL_TO_ZONES = "global-to-zones"
    ZONE_TO_GLOBAL = "zone-to-global"


@dataclass(frozen=True, slots=True)
class ResourceDescriptor:
    """Everything the rest of kmesh needs to know about one resource type.

    ``path`` is the REST collection segment (``meshtrafficpermissions``); ``singular`` and ``plural``
    are kmeshctl's names (``get meshtrafficpermission NAME`` / ``get meshtrafficpermissions``);
    ``flat`` types use Kuma's legacy form with spec fields beside ``type``/``name`` instead of under
    ``spec``; ``read_only`` types are written by control planes only, never through the API;
    ``policy`` marks targetRef policies (the columns kmeshctl shows and the zone API's refusal);
    ``kds_to_other_zones`` marks a zone-to-global type that the global also sends on to every *other*
    zone (ZoneIngress: each zone must know the other zones' ingresses to route cross-zone traffic);
    ``kds_name_prefixes``, only on a type whose ``kds`` is NONE, names the resources of that type that flow
    global -> zones all the same: those whose name starts with one of the prefixes (GlobalSecret: the
    zone-token public keys and revocation list, as Kuma syncs them; every other GlobalSecret stays put).
    """

    name: str
    spec_type: type[Spec]
    scope: Scope
    kds: KdsDirection
    path: str
    singular: str
    plural: str
    short_names: tuple[str, ...] = ()
    read_only: bool = False
    flat: bool = False
    policy: bool = False
    kds_to_other_zones: bool = False
    kds_name_prefixes: tuple[str, ...] = ()

    @property
    def mesh_scoped(self) -> bool:
        return self.scope is Scope.MESH


_BY_NAME: dict[str, ResourceDescriptor] = {}
_BY_CLI: dict[str, ResourceDescriptor] = {}
_BY_PATH: dict[str, ResourceDescriptor] = {}


def register(desc: ResourceDescriptor) -> ResourceDescriptor:
    """Add a type to the table. Raises ValueError when any of its names is taken."""
    if desc.name in _BY_NAME:
        raise ValueError(f"resource type {desc.name} registered twice")
    if desc.kds_name_prefixes and (desc.kds is not KdsDirection.NONE or not all(desc.kds_name_prefixes)):
        raise ValueError(f"kds_name_prefixes of {desc.name} need kds NONE and non-empty prefixes")
    cli_names = (desc.singular, desc.plural, *desc.short_names)
    for cli in cli_names:
        if cli in _BY_CLI:
            raise ValueError(f"CLI name {cli!r} of {desc.name} is taken by {_BY_CLI[cli].name}")
    if desc.path in _BY_PATH:
        raise ValueError(f"REST path {desc.path!r} of {desc.name} is taken")
    _BY_NAME[desc.name] = desc
    for cli in cli_names:
        _BY_CLI[cli] = desc
    _BY_PATH[desc.path] = desc
    return desc


def descriptor(type_name: str) -> ResourceDescriptor:
    """The descriptor of ``type_name``. Raises KeyError for an unknown type."""
    return _BY_NAME[type_name]


def by_cli_name(name: str) -> ResourceDescriptor | None:
    """The descriptor a kmeshctl name (singular, plural or short, any case) refers to."""
    return _BY_CLI.get(name.lower())


def by_path(path: str) -> ResourceDescriptor | None:
    """The descriptor whose REST collection segment is ``path``."""
    return _BY_PATH.get(path)


def all_descriptors() -> Iterator[ResourceDescriptor]:
    """Every registered descriptor, in registration order."""
    return iter(_BY_NAME.values())
