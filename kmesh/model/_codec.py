"""Resources to and from documents (Kuma's REST/YAML shape) and specs to and from stored bytes.

Rules:
- A document has ``type``, ``name``, ``mesh`` (mesh-scoped types only), optional ``labels``, and the spec:
  flat beside those keys for Kuma's legacy types (Mesh, Dataplane, ...), under ``spec`` for policies.
  ``creationTime``/``modificationTime`` are accepted and ignored, so ``get -o yaml`` output re-applies.
- ``parse_resource`` collects every violation it can find (names, labels, then the spec: msgspec stops at
  the first type error, semantic rules are all reported) and raises one ``InvalidResource``.
- ``to_document`` leaves out fields equal to their defaults; ``parse_resource(to_document(r))`` gives back
  the same spec and labels.
- Stored specs are msgspec JSON; ``decode_spec`` trusts its input (no semantic checks).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from kmesh.errors import FieldViolation, InvalidResource
from kmesh.model import _paths
from kmesh.model._descriptor import ResourceDescriptor, all_descriptors, descriptor
from kmesh.model._fields import label_problems, name_problem
from kmesh.model._resource import Meta, Resource, Spec
from kmesh.model._translate import translate
from kmesh.model._validate import spec_violations

__all__ = [
    "decode_spec",
    "encode_spec",
    "new_resource",
    "parse_resource",
    "to_document",
    "validate_resource",
]

_META_KEYS: Final = frozenset({"type", "name", "mesh", "labels", "creationTime", "modificationTime"})
_ENCODER: Final = msgspec.json.Encoder()


def parse_resource(doc: object, *, source: str | None = None) -> Resource:
    """Validate one user document (a dict from YAML or a JSON body) into a Resource.

    Raises InvalidResource listing every violation found, each naming its field as a dotted path.
    """
    if not isinstance(doc, Mapping):
        got = "list" if isinstance(doc, list) else type(doc).__name__
        raise InvalidResource(
            [FieldViolation("", f"expected a mapping with type, name and the resource's fields, got {got}")],
            source=source,
        )
    desc = _descriptor_of(doc, source)
    name = doc.get("name")
    label = f'{desc.name} "{name}"' if isinstance(name, str) and name else desc.name
    violations = _meta_violations(doc, desc)
    spec = _decode_spec(doc, desc, violations)
    if violations:
        raise InvalidResource(violations, source=source, resource=label)
    assert spec is not None
    assert isinstance(name, str)
    mesh = doc.get("mesh", "")
    labels = doc.get("labels") or {}
    meta = Meta(type=desc.name, name=name, mesh=mesh if desc.mesh_scoped else "", labels=dict(labels))
    return Resource(meta=meta, spec=spec)


def _descriptor_of(doc: Mapping[str, Any], source: str | None) -> ResourceDescriptor:
    type_name = doc.get("type")
    known = ", ".join(d.name for d in all_descriptors())
    if type_name is None:
        reason = f"required field is missing; known types: {known}"
    elif not isinstance(type_name, str):
        reason = f"expected str, got {type(type_name).__name__}"
    else:
        try:
            return descriptor(type_name)
        except KeyError:
            reason = f"unknown type {type_name!r}; known types: {known}"
    raise InvalidResource([FieldViolation("type", reason)], source=source)


def _meta_violations(doc: Mapping[str, Any], desc: ResourceDescriptor) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    name = doc.get("name")
    if name is None:
        out.append(FieldViolation("name", "required field is missing"))
    elif not isinstance(name, str):
        out.append(FieldViolation("name", f"expected str, got {type(name).__name__}"))
    elif reason := name_problem(name):
        out.append(FieldViolation("name", reason))
    mesh = doc.get("mesh")
    if desc.mesh_scoped:
        if mesh is None or mesh == "":
            out.append(FieldViolation("mesh", f"required field is missing: {desc.name} lives inside a mesh"))
        elif not isinstance(mesh, str):
            out.append(FieldViolation("mesh", f"expected str, got {type(mesh).__name__}"))
        elif reason := name_problem(mesh):
            out.append(FieldViolation("mesh", reason))
    elif mesh not in (None, ""):  # an empty mesh, as some clients send for every type, means none
        out.append(FieldViolation("mesh", f"must not be set: {desc.name} is not inside a mesh"))
    labels = doc.get("labels")
    if labels is not None:
        out.extend(_label_violations(labels))
    if not desc.flat:
        hint = (
            "unknown field; allowed here: type, mesh, name, labels, spec"
            if desc.mesh_scoped
            else ("unknown field; allowed here: type, name, labels, spec")
        )
        out.extend(FieldViolation(str(k), hint) for k in doc if k not in _META_KEYS and k != "spec")
    return out


def _label_violations(labels: object) -> list[FieldViolation]:
    if not isinstance(labels, Mapping):
        return [FieldViolation("labels", f"expected mapping, got {type(labels).__name__}")]
    wrong = [
        FieldViolation(_paths.key("labels", str(k)), f"expected str, got {type(bad).__name__}")
        for k, v in labels.items()
        for bad in (k, v)
        if not isinstance(bad, str)
    ]
    if wrong:
        return wrong
    return [FieldViolation(f"labels{where}", reason) for where, reason in label_problems(labels)]


def _decode_spec(doc: Mapping[str, Any], desc: ResourceDescriptor, out: list[FieldViolation]) -> Spec | None:
    if desc.flat:
        body: object = {k: v for k, v in doc.items() if k not in _META_KEYS}
        prefix = ""
    else:
        body = doc.get("spec")
        body = {} if body is None else body
        prefix = "spec"
    try:
        spec = msgspec.convert(body, desc.spec_type)
    except msgspec.ValidationError as exc:
        out.append(translate(exc, desc.spec_type, body, prefix))
        return None
    out.extend(spec_violations(spec, prefix))
    return spec


def validate_resource(resource: Resource) -> None:
    """Check a Resource built in code or received from a peer as ``parse_resource`` checks a document.

    Raises InvalidResource with every violation.
    """
    desc = descriptor(resource.meta.type)
    doc: dict[str, Any] = {"name": resource.meta.name, "labels": resource.meta.labels}
    if resource.meta.mesh or desc.mesh_scoped:
        doc["mesh"] = resource.meta.mesh
    violations = _meta_violations(doc, desc)
    if not isinstance(resource.spec, desc.spec_type):
        violations.append(
            FieldViolation(
                "", f"spec is a {type(resource.spec).__name__}, expected {desc.spec_type.__name__}"
            )
        )
    else:
        violations.extend(spec_violations(resource.spec, "" if desc.flat else "spec"))
    if violations:
        raise InvalidResource(violations, resource=f'{desc.name} "{resource.meta.name}"')


def to_document(resource: Resource) -> dict[str, Any]:
    """Kuma's REST/YAML shape of ``resource``; fields at their defaults are left out."""
    meta = resource.meta
    desc = descriptor(meta.type)
    doc: dict[str, Any] = {"type": meta.type}
    if desc.mesh_scoped:
        doc["mesh"] = meta.mesh
    doc["name"] = meta.name
    if meta.creation_time is not None:
        doc["creationTime"] = _rfc3339(meta.creation_time)
    if meta.modification_time is not None:
        doc["modificationTime"] = _rfc3339(meta.modification_time)
    if meta.labels:
        doc["labels"] = dict(meta.labels)
    body = msgspec.to_builtins(resource.spec)
    if desc.flat:
        doc.update(body)
    else:
        doc["spec"] = body
    return doc


def _rfc3339(when: datetime) -> str:
    # Naive times are taken as UTC, as the stores write them.
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def encode_spec(spec: Spec) -> bytes:
    """``spec`` as compact JSON (defaults left out)."""
    return _ENCODER.encode(spec)


@functools.cache
def _decoder(spec_type: type[Spec]) -> msgspec.json.Decoder[Spec]:
    return msgspec.json.Decoder(spec_type)


def decode_spec(type_name: str, data: bytes) -> Spec:
    """The spec of type ``type_name`` stored as ``data`` by ``encode_spec``.

    Raises KeyError for an unknown type, msgspec.DecodeError (or its ValidationError) for bytes that are
    not such a spec.
    """
    return _decoder(descriptor(type_name).spec_type).decode(data)


def new_resource(
    type_name: str,
    name: str,
    spec: Spec | None = None,
    *,
    mesh: str = "",
    labels: Mapping[str, str] | None = None,
) -> Resource:
    """A never-stored Resource, for code that builds resources (tests, the control plane's defaults).

    ``spec`` defaults to the type's empty spec. Raises KeyError for an unknown type, TypeError for a spec
    of the wrong type, ValueError when the type has required spec fields and no spec was given, or when
    ``mesh`` is missing for a mesh-scoped type or given for a global one. Names are not validated here;
    ``validate_resource`` does that.
    """
    desc = descriptor(type_name)
    if desc.mesh_scoped and not mesh:
        raise ValueError(f"{type_name} lives inside a mesh: pass mesh=")
    if not desc.mesh_scoped and mesh:
        raise ValueError(f"{type_name} is not inside a mesh: do not pass mesh=")
    if spec is None:
        try:
            spec = desc.spec_type()
        except TypeError:
            raise ValueError(f"{desc.spec_type.__name__} has required fields: pass a spec") from None
    elif not isinstance(spec, desc.spec_type):
        raise TypeError(f"{type_name} needs a {desc.spec_type.__name__}, got {type(spec).__name__}")
    meta = Meta(type=type_name, name=name, mesh=mesh, labels=dict(labels or {}))
    return Resource(meta=meta, spec=spec)
