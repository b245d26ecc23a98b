"""How kmeshctl names resource types and where each lives in the REST API.

Rules:
- Type names come only from the descriptor table (``by_cli_name``: singular, plural and short names, any
  case), so a type added to the model is usable by ``get``/``delete`` without touching the CLI.
- REST paths follow Kuma's: ``/meshes/{mesh}/{path}[/{name}]`` for mesh-scoped types and
  ``/{path}[/{name}]`` for the others (``Mesh`` itself is ``/meshes/{name}``). Every segment taken from
  user input is percent-quoted, so a name can never change which resource a request addresses.
- ``spec_of`` reads a REST document through its descriptor: ``flat`` types keep their fields beside
  ``type``/``name``, the others under ``spec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kmesh.errors import KmeshError
from kmesh.model import Resource, ResourceDescriptor, all_descriptors, by_cli_name, descriptor

__all__ = [
    "UnknownType",
    "collection_path",
    "describe_resource",
    "item_path",
    "resolve_type",
    "resource_path",
    "spec_of",
    "valid_type_names",
]

# Keys of the REST envelope; everything else in a flat document is the spec.
_ENVELOPE_KEYS = frozenset({"type", "name", "mesh", "labels", "creationTime", "modificationTime"})


class UnknownType(KmeshError):
    """A type name on the command line matches no descriptor; the message lists the valid names."""


def valid_type_names() -> list[str]:
    """The plural name of every type, sorted: what ``get`` shows when a type is unknown."""
    return sorted(d.plural for d in all_descriptors())


def resolve_type(name: str) -> ResourceDescriptor:
    """The descriptor ``name`` refers to: a CLI name, or the type's own name (``GlobalSecret``) in any case.

    Raises UnknownType naming the valid types.
    """
    desc = by_cli_name(name) or next((d for d in all_descriptors() if d.name.lower() == name.lower()), None)
    if desc is None:
        raise UnknownType(f'unknown resource type "{name}"; valid types: {", ".join(valid_type_names())}')
    return desc


def _seg(value: str) -> str:
    # safe="" quotes "/" too: a name like "a/b" must stay one path segment.
    return quote(value, safe="")


def collection_path(desc: ResourceDescriptor, mesh: str) -> str:
    """The REST path listing ``desc``'s resources (in ``mesh`` when the type is mesh-scoped)."""
    if desc.mesh_scoped:
        return f"/meshes/{_seg(mesh)}/{_seg(desc.path)}"
    return f"/{_seg(desc.path)}"


def item_path(desc: ResourceDescriptor, mesh: str, name: str) -> str:
    """The REST path of one resource."""
    return f"{collection_path(desc, mesh)}/{_seg(name)}"


def resource_path(resource: Resource) -> str:
    """The REST path a parsed resource is PUT to."""
    return item_path(descriptor(resource.meta.type), resource.meta.mesh, resource.meta.name)


def describe_resource(resource: Resource) -> str:
    """``Dataplane "web-1" in mesh "default"``: how apply names a resource in its output and errors."""
    meta = resource.meta
    text = f'{meta.type} "{meta.name}"'
    if descriptor(meta.type).mesh_scoped:
        text += f' in mesh "{meta.mesh}"'
    return text


def spec_of(desc: ResourceDescriptor, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec part of a REST document of type ``desc`` (empty when it is missing or malformed)."""
    if desc.flat:
        return {k: v for k, v in doc.items() if k not in _ENVELOPE_KEYS}
    spec = doc.get("spec")
    return spec if isinstance(spec, Mapping) else {}
