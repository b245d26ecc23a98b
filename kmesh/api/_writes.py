"""What a write (PUT or DELETE) must pass before it reaches the store.

Rules:
- A body is JSON, or YAML when the Content-Type says so (``kubectl``-style tooling and ``curl --data-binary
  @mesh.yaml`` send YAML); exactly one object. YAML timestamps stay strings, as they would in JSON, so both
  forms reach the resource codec identically.
- The URL names the resource: ``type``, ``name`` and ``mesh`` missing from the body are taken from it, and
  a body that names another resource is refused with the field at fault rather than silently written
  under the URL's name.
- Who may write what follows the descriptor table. Read-only types (insights) are written by control
  planes only: 405. A zone control plane refuses types that flow global -> zones (meshes, policies,
  secrets): the global would overwrite them on the next sync. A global refuses types that zones own and
  sync up (dataplanes, ingresses, egresses): the owning zone would overwrite them. Both are 400 with a
  message saying where to apply instead, as Kuma does (its ``validateResourceOperation``).
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
import yaml

from kmesh.api._responses import ApiError
from kmesh.errors import ConfigError, FieldViolation
from kmesh.model import KdsDirection, ResourceDescriptor

__all__ = ["Mode", "decode_body", "parse_mode", "reconcile_identity", "write_refusal"]


class Mode(enum.Enum):
    """The role of the control plane serving the API."""

    STANDALONE = "standalone"
    ZONE = "zone"
    GLOBAL = "global"


def parse_mode(mode: str) -> Mode:
    """The Mode named ``mode``. Raises ConfigError for any other name."""
    try:
        return Mode(mode)
    except ValueError:
        names = ", ".join(m.value for m in Mode)
        raise ConfigError(f"API mode {mode!r} is not one of {names}") from None


class _StringTimesLoader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as strings (JSON has no timestamp type)."""


_StringTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _body_error(reason: str) -> ApiError:
    return ApiError.bad_parameter("body", reason, title="Could not parse the request body")


def decode_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The one object in a request body. Raises ApiError (400) for anything else."""
    if not raw.strip():
        raise _body_error("is empty; send the resource as a JSON object")
    if "yaml" in content_type.lower():
        try:
            docs = [d for d in yaml.load_all(raw.decode("utf-8"), Loader=_StringTimesLoader) if d is not None]
        except UnicodeDecodeError as exc:
            raise _body_error(f"is not UTF-8: {exc}") from None
        except yaml.YAMLError as exc:
            raise _body_error(f"is not valid YAML: {exc}") from None
        if len(docs) != 1:
            raise _body_error(f"must hold exactly one YAML document, found {len(docs)}")
        doc: object = docs[0]
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _body_error(f"is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _body_error(f"must be an object, got {type(doc).__name__}")
    return doc


def reconcile_identity(
    doc: dict[str, Any], desc: ResourceDescriptor, name: str, mesh: str | None
) -> dict[str, Any]:
    """``doc`` with ``type``, ``name`` and ``mesh`` taken from the URL where absent.

    Raises ApiError (400) naming every field whose value contradicts the URL.
    """
    out = dict(doc)
    violations: list[FieldViolation] = []
    expected: dict[str, str] = {"type": desc.name, "name": name}
    if desc.mesh_scoped and mesh is not None:
        expected["mesh"] = mesh
    elif out.get("mesh") in (None, ""):
        out.pop("mesh", None)
    else:
        violations.append(FieldViolation("mesh", f"{desc.name} does not belong to a mesh; remove the field"))
    for field, value in expected.items():
        given = out.get(field)
        if given is None:
            out[field] = value
        elif given != value:
            violations.append(FieldViolation(field, f"is {given!r} but the URL is for {value!r}"))
    if violations:
        raise ApiError(
            400,
            "Resource does not match the URL",
            "; ".join(f"{v.field}: {v.reason}" for v in violations),
            invalid_parameters=violations,
        )
    return out


def write_refusal(desc: ResourceDescriptor, mode: Mode, name: str) -> ApiError | None:
    """Why this control plane must not write ``desc`` resources through its API, or None if it may."""
    if desc.read_only:
        return ApiError(
            405,
            "Method not allowed",
            f"{desc.name} is read-only: control planes write it, the API only reads it",
            headers={"Allow": "GET"},
        )
    if mode is Mode.ZONE and desc.kds is KdsDirection.GLOBAL_TO_ZONES:
        return ApiError(
            400,
            "Managed by the global control plane",
            f"{desc.name} {name!r} is managed by the global control plane; apply it there",
        )
    if mode is Mode.GLOBAL and desc.kds is KdsDirection.ZONE_TO_GLOBAL:
        return ApiError(
            400,
            "Managed by zone control planes",
            f"{desc.name} {name!r} is managed by zone control planes; apply it on the zone it belongs to, "
            "which syncs it to the global control plane",
        )
    return None
