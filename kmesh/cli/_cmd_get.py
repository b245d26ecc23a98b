"""``kmeshctl get`` and ``kmeshctl delete``: reading and removing resources through the REST API.

- ``get TYPE`` lists (plural or singular name), ``get TYPE NAME`` shows one; ``-m/--mesh`` picks the mesh of
  mesh-scoped types (default ``default``), ``-o table|yaml|json``, ``--size``/``--offset`` page a listing.
- ``delete TYPE NAME [-m MESH]`` prints ``deleted Mesh "x"``; a missing resource is the server's 404.
- ``-z/--zone Z`` (both verbs) picks resources synced from zone ``Z``: on a global control plane two zones
  may each have sent a ``web-1``, and the API serves them apart with ``?zone=``.

Rules:
- Type names and paths come from the descriptor table (``_types``); columns from ``_render``.
- A table of a listing that has more pages ends with the command that shows the rest, as kumactl's does.
- Types a presentation joins (a Zone's ZoneInsight) are fetched only for tables (``_fetch``).
- A delete the control plane refuses for a reason of its own (a Zone whose CP is still connected) prints
  that reason alone, ``Error: zone: unable to delete Zone, ...``, exactly as the server words it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Final

from kmesh.cli._client import ApiError, BadResponse
from kmesh.cli._fetch import fetch_joined, listing, next_offset
from kmesh.cli._render import OUTPUT_FORMATS, Doc, presentation_for, render
from kmesh.cli._session import Session
from kmesh.cli._types import collection_path, item_path, resolve_type
from kmesh.errors import KmeshError

__all__ = ["DeleteRefused", "register"]

DEFAULT_MESH = "default"
# The title of the API's 400 for a delete its control plane refuses (kmesh.api's DELETE_REFUSED).
DELETE_REFUSED_TITLE: Final = "could not delete"


class DeleteRefused(KmeshError):
    """The control plane refused a delete; the message is its reason, ``field: reason``."""


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (the API pages with size >= 1, offset >= 0)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


def _zone_query(args: argparse.Namespace) -> dict[str, str]:
    return {"zone": args.zone} if args.zone else {}


def _get(args: argparse.Namespace, session: Session) -> None:
    desc = resolve_type(args.type)
    client = session.client()
    if args.name is not None:
        body = client.get(item_path(desc, args.mesh, args.name), _zone_query(args) or None)
        if not isinstance(body, Mapping):
            raise BadResponse(f'the control plane answered the read of {desc.name} "{args.name}" without it')
        docs: list[Doc] = [body]
        next_url = None
    else:
        query = _zone_query(args)
        if args.offset:
            query["offset"] = str(args.offset)
        if args.size is not None:
            query["size"] = str(args.size)
        body = client.get(collection_path(desc, args.mesh), query)
        docs, next_url = listing(body, desc.plural)
    joins = presentation_for(desc).joins if args.output == "table" else ()
    joined = fetch_joined(client, joins, args.mesh, args.name)
    session.write(render(args.output, desc, body, docs, now=session.now(), joined=joined))
    following = next_offset(next_url, args.offset, len(docs))
    if args.output == "table" and following is not None:
        hint = f"kmeshctl get {desc.plural} --offset {following}"
        if args.size is not None:
            hint += f" --size {args.size}"
        if desc.mesh_scoped and args.mesh != DEFAULT_MESH:
            hint += f" --mesh {args.mesh}"
        if args.zone:
            hint += f" --zone {args.zone}"
        session.print(f"\nRest of the resources: {hint}")


def _delete(args: argparse.Namespace, session: Session) -> None:
    desc = resolve_type(args.type)
    try:
        session.client().delete(item_path(desc, args.mesh, args.name), _zone_query(args) or None)
    except ApiError as exc:
        if exc.status == 400 and exc.title == DELETE_REFUSED_TITLE and exc.details:
            raise DeleteRefused(exc.details) from None
        raise
    session.print(f'deleted {desc.name} "{args.name}"')


def _mesh_and_zone_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m",
        "--mesh",
        default=DEFAULT_MESH,
        help=f"mesh of a mesh-scoped type (default {DEFAULT_MESH})",
    )
    parser.add_argument(
        "-z", "--zone", help="only resources synced from this zone (on a global control plane)"
    )


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``get`` and ``delete`` to ``commands``."""
    get = commands.add_parser(
        "get", parents=[common], help="show resources", description="Show one resource or list a type."
    )
    get.add_argument("type", metavar="TYPE", help="resource type, e.g. meshes, dataplane, mtp")
    get.add_argument("name", metavar="NAME", nargs="?", help="show only this resource")
    _mesh_and_zone_flags(get)
    get.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table", help="output format")
    get.add_argument("--size", type=_whole_number(1), help="page size of a listing")
    get.add_argument("--offset", type=_whole_number(0), default=0, help="where a listing starts")
    get.set_defaults(handler=_get)

    delete = commands.add_parser("delete", parents=[common], help="delete a resource")
    delete.add_argument("type", metavar="TYPE", help="resource type, e.g. mesh, dataplane")
    delete.add_argument("name", metavar="NAME", help="name of the resource")
    _mesh_and_zone_flags(delete)
    delete.set_defaults(handler=_delete)
