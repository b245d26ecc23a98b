"""``kmeshctl inspect TYPES``: resources together with their insights, as kumactl's ``inspect`` commands.

``inspect zones`` lists every Zone with its ZoneInsight: the table has the columns of kumactl's
``inspect zones`` (see ``_render.ZONE_COLUMNS``); ``-o yaml|json`` prints Kuma's overview list,
``{"total", "items": [{"type": "ZoneOverview", "name", ..., "zone": {...}, "zoneInsight": {...}}],
"next": null}``, the zone's spec and its insight side by side.

Rules:
- One :class:`Inspection` per inspectable type in ``INSPECTIONS``: the type, its insight type and the
  table's columns. ``inspect dataplanes`` or ``inspect zoneingresses`` are one entry each; a mesh-scoped
  type gets ``-m/--mesh`` by itself. The subcommand is the type's plural CLI name.
- Every page of both types is read, so the overview is complete whatever the page size; a control plane
  that serves no insights of the type (404) shows the resources without them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kmesh.cli._fetch import fetch_joined, list_all
from kmesh.cli._render import (
    OUTPUT_FORMATS,
    ZONE_PRESENTATION,
    Doc,
    Presentation,
    render_json,
    render_table,
    render_yaml,
)
from kmesh.cli._session import Session
from kmesh.cli._types import spec_of
from kmesh.model import ResourceDescriptor, descriptor

__all__ = ["INSPECTIONS", "Inspection", "overview", "overview_list", "register"]

DEFAULT_MESH = "default"
_ENVELOPE = ("creationTime", "modificationTime", "labels")


@dataclass(frozen=True, slots=True)
class Inspection:
    """What ``inspect <plural>`` shows: resources of ``type_name`` joined with their ``insight_type``."""

    type_name: str
    insight_type: str
    presentation: Presentation

    @property
    def desc(self) -> ResourceDescriptor:
        return descriptor(self.type_name)

    @property
    def insight_desc(self) -> ResourceDescriptor:
        return descriptor(self.insight_type)


INSPECTIONS: tuple[Inspection, ...] = (Inspection("Zone", "ZoneInsight", ZONE_PRESENTATION),)


def _field_name(type_name: str) -> str:
    """Kuma's overview field for a type: its name in lowerCamelCase (``zoneInsight``, ``zoneIngress``)."""
    return type_name[:1].lower() + type_name[1:]


def overview(inspection: Inspection, doc: Doc, insight: Doc | None) -> dict[str, Any]:
    """Kuma's ``<Type>Overview`` document: the resource's envelope, its spec and its insight's spec."""
    desc = inspection.desc
    out: dict[str, Any] = {"type": f"{desc.name}Overview"}
    if desc.mesh_scoped:
        out["mesh"] = doc.get("mesh")
    out["name"] = doc.get("name")
    out.update({key: doc[key] for key in _ENVELOPE if key in doc})
    out[_field_name(desc.name)] = dict(spec_of(desc, doc))
    insight_spec = spec_of(inspection.insight_desc, insight) if insight is not None else {}
    out[_field_name(inspection.insight_type)] = dict(insight_spec)
    return out


def overview_list(
    inspection: Inspection, docs: Sequence[Doc], insights: Mapping[tuple[str, str], Doc]
) -> dict[str, Any]:
    """Kuma's list object of the overviews of ``docs``, each joined with its insight by ``(mesh, name)``."""
    items = [
        overview(inspection, doc, insights.get((str(doc.get("mesh") or ""), str(doc.get("name") or ""))))
        for doc in docs
    ]
    return {"total": len(items), "items": items, "next": None}


def _run(inspection: Inspection, args: argparse.Namespace, session: Session) -> None:
    desc = inspection.desc
    mesh = getattr(args, "mesh", "") if desc.mesh_scoped else ""
    client = session.client()
    docs = list_all(client, desc, mesh)
    joined = fetch_joined(client, (inspection.insight_type,), mesh, None)
    if args.output == "table":
        session.write(
            render_table(desc, docs, now=session.now(), joined=joined, presentation=inspection.presentation)
        )
        return
    body = overview_list(inspection, docs, joined.get(inspection.insight_type, {}))
    session.write(render_yaml(body) if args.output == "yaml" else render_json(body))


def _handler(inspection: Inspection) -> Callable[[argparse.Namespace, Session], None]:
    def handle(args: argparse.Namespace, session: Session) -> None:
        _run(inspection, args, session)

    return handle


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``inspect`` and one subcommand per entry of ``INSPECTIONS`` to ``commands``."""
    inspect = commands.add_parser(
        "inspect", parents=[common], help="show resources with their status (insights)"
    )
    names = ",".join(inspection.desc.plural for inspection in INSPECTIONS)
    kinds = inspect.add_subparsers(dest="inspect_command", required=True, metavar=f"{{{names}}}")
    for inspection in INSPECTIONS:
        desc = inspection.desc
        parser = kinds.add_parser(
            desc.plural,
            parents=[common],
            help=f"{desc.name} resources with their {inspection.insight_type}",
            description=f"Show every {desc.name} with its status from its {inspection.insight_type}.",
        )
        if desc.mesh_scoped:
            parser.add_argument(
                "-m", "--mesh", default=DEFAULT_MESH, help=f"mesh to inspect (default {DEFAULT_MESH})"
            )
        parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table", help="output format")
        parser.set_defaults(handler=_handler(inspection))
