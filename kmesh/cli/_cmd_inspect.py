"""``kmeshctl inspect TYPES``: resources together with their insights, as kumactl's ``inspect`` commands.

``inspect zones`` lists every Zone with its ZoneInsight: the table has the columns of kumactl's
``inspect zones`` (see ``_render.ZONE_COLUMNS``); ``-o yaml|json`` prints Kuma's overview list,
``{"total", "items": [{"type": "ZoneOverview", "name", ..., "zone": {...}, "zoneInsight": {...}}],
"next": null}``, the zone's spec and its insight side by side. ``inspect dataplanes [-m MESH]`` and
``inspect zone-ingresses`` (alias ``zoneingresses``) do the same with their insights (columns in
``_overview``).

``inspect dataplane NAME [-m MESH]`` shows one dataplane's overview; with ``--config`` it prints the
ProxyConfig its zone CP computes for it now (``GET /meshes/{mesh}/dataplanes/{name}/_config``) as YAML,
followed by the notes as a ``# notes:`` comment block (``-o json``: the server's answer as is). A global
refuses ``--config`` and names the dataplane's zone, whose CP to ask instead.

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

from kmesh.cli._client import BadResponse
from kmesh.cli._fetch import fetch_joined, list_all
from kmesh.cli._overview import DATAPLANE_PRESENTATION, ZONE_INGRESS_PRESENTATION, render_proxy_config
from kmesh.cli._render import (
    OUTPUT_FORMATS,
    ZONE_PRESENTATION,
    Doc,
    Presentation,
    join_key,
    render_json,
    render_table,
    render_yaml,
)
from kmesh.cli._session import Session
from kmesh.cli._types import item_path, spec_of
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


INSPECTIONS: tuple[Inspection, ...] = (
    Inspection("Zone", "ZoneInsight", ZONE_PRESENTATION),
    Inspection("Dataplane", "DataplaneInsight", DATAPLANE_PRESENTATION),
    Inspection("ZoneIngress", "ZoneIngressInsight", ZONE_INGRESS_PRESENTATION),
)


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
    inspection: Inspection, docs: Sequence[Doc], insights: Mapping[tuple[str, str, str], Doc]
) -> dict[str, Any]:
    """Kuma's list object of the overviews of ``docs``, each joined with its insight by
    ``(mesh, name, zone)`` (``_render.join_key``)."""
    items = [overview(inspection, doc, insights.get(join_key(doc))) for doc in docs]
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


def _run_one_dataplane(args: argparse.Namespace, session: Session) -> None:
    inspection = next(i for i in INSPECTIONS if i.type_name == "Dataplane")
    desc = inspection.desc
    client = session.client()
    zone_query = {"zone": args.zone} if args.zone else None
    if args.show_config:
        body = client.get(item_path(desc, args.mesh, args.name) + "/_config", zone_query)
        if not isinstance(body, Mapping) or not isinstance(body.get("config"), Mapping):
            raise BadResponse(f'the control plane answered the config of dataplane "{args.name}" without one')
        session.write(render_json(body) if args.output == "json" else render_proxy_config(body))
        return
    doc = client.get(item_path(desc, args.mesh, args.name), zone_query)
    if not isinstance(doc, Mapping):
        raise BadResponse(f'the control plane answered the read of dataplane "{args.name}" without it')
    # The insight of the same zone's copy: on a global, the zone the dataplane came from.
    zone = join_key(doc)[2] or args.zone
    joined = fetch_joined(client, (inspection.insight_type,), args.mesh, args.name, zone=zone)
    if args.output == "table":
        session.write(
            render_table(desc, [doc], now=session.now(), joined=joined, presentation=inspection.presentation)
        )
        return
    body = overview(inspection, doc, joined.get(inspection.insight_type, {}).get(join_key(doc)))
    session.write(render_yaml(body) if args.output == "yaml" else render_json(body))


def _register_one_dataplane(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = kinds.add_parser(
        "dataplane",
        parents=[common],
        help="one Dataplane with its DataplaneInsight, or with --config the config its zone CP computes",
        description=(
            "Show one Dataplane with its status, or with --config the proxy config its zone control plane "
            "computes for it now, followed by notes on why anything is missing."
        ),
    )
    parser.add_argument("name", metavar="NAME", help="the dataplane's name")
    parser.add_argument(
        "-m", "--mesh", default=DEFAULT_MESH, help=f"mesh of the dataplane (default {DEFAULT_MESH})"
    )
    parser.add_argument("-z", "--zone", default=None, help="on a global: the zone the dataplane is from")
    parser.add_argument(
        "--config",
        dest="show_config",
        action="store_true",
        help="print the proxy config (YAML, then notes) instead; the kmeshctl config file is --config-file",
    )
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table", help="output format")
    parser.set_defaults(handler=_run_one_dataplane)


def _handler(inspection: Inspection) -> Callable[[argparse.Namespace, Session], None]:
    def handle(args: argparse.Namespace, session: Session) -> None:
        _run(inspection, args, session)

    return handle


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    *,
    common_without_config: argparse.ArgumentParser,
) -> None:
    """Add ``inspect``, one subcommand per entry of ``INSPECTIONS`` and ``inspect dataplane`` to
    ``commands``. ``common_without_config`` is ``common`` whose config-file flag is ``--config-file`` only,
    for ``inspect dataplane``, whose ``--config`` asks for the proxy config."""
    inspect = commands.add_parser(
        "inspect", parents=[common], help="show resources with their status (insights)"
    )
    names = ",".join([*(inspection.desc.plural for inspection in INSPECTIONS), "dataplane"])
    kinds = inspect.add_subparsers(dest="inspect_command", required=True, metavar=f"{{{names}}}")
    for inspection in INSPECTIONS:
        desc = inspection.desc
        # ``zoneingresses`` as well as ``zone-ingresses``: kumactl's spelling.
        aliases = [name for name in desc.short_names if name.endswith("s") and name != desc.plural]
        parser = kinds.add_parser(
            desc.plural,
            aliases=aliases,
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
    _register_one_dataplane(kinds, common_without_config)
