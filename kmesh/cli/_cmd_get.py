"""``kmeshctl get`` and ``kmeshctl delete``: reading and removing resources through the REST API.

- ``get TYPE`` lists (plural or singular name), ``get TYPE NAME`` shows one; ``-m/--mesh`` picks the mesh of
  mesh-scoped types (default ``default``), ``-o table|yaml|json``, ``--size``/``--offset`` page a listing.
- ``delete TYPE NAME [-m MESH]`` prints ``deleted Mesh "x"``; a missing resource is the server's 404.

Rules:
- Type names and paths come from the descriptor table (``_types``); columns from ``_columns``.
- A table of a listing that has more pages ends with the command that shows the rest, as kumactl's does.
- Types a presentation joins (a Zone's ZoneInsight) are fetched only for tables, and a control plane that
  does not serve the joined type (404) is not an error: the columns just show what is known.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kmesh.cli._client import ApiClient, ApiError, BadResponse
from kmesh.cli._render import OUTPUT_FORMATS, Doc, presentation_for, render
from kmesh.cli._session import Session
from kmesh.cli._types import collection_path, item_path, resolve_type
from kmesh.model import ResourceDescriptor, descriptor

__all__ = ["register"]

DEFAULT_MESH = "default"


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


def _listing(body: Any, what: str) -> tuple[list[Doc], Any]:
    """The items and ``next`` of a list answer. Raises BadResponse when it is not a list object."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise BadResponse(f"the control plane answered the listing of {what} without an items list")
    return [item for item in body["items"] if isinstance(item, Mapping)], body.get("next")


def _next_offset(next_url: object, offset: int, count: int) -> int | None:
    """The offset of the next page, read from the ``next`` URL; None on the last page."""
    if not next_url:
        return None
    found = parse_qs(urlsplit(str(next_url)).query).get("offset")
    if found and found[0].isdigit():
        return int(found[0])
    return offset + count


def _list_all(client: ApiClient, desc: ResourceDescriptor, mesh: str) -> list[Doc]:
    """Every page of a listing."""
    docs: list[Doc] = []
    offset = 0
    while True:
        page, next_url = _listing(
            client.get(collection_path(desc, mesh), {"offset": str(offset)}), desc.plural
        )
        docs.extend(page)
        following = _next_offset(next_url, offset, len(page))
        # A server whose ``next`` does not move forward would otherwise be asked forever.
        if following is None or following <= offset:
            return docs
        offset = following


def _joined(
    client: ApiClient, desc: ResourceDescriptor, mesh: str, name: str | None
) -> dict[str, dict[tuple[str, str], Doc]]:
    """The documents of the types ``desc``'s presentation joins, keyed by ``(mesh, name)``."""
    joined: dict[str, dict[tuple[str, str], Doc]] = {}
    for type_name in presentation_for(desc).joins:
        try:
            other = descriptor(type_name)
        except KeyError:
            continue  # the model does not define that type: there is nothing to join
        try:
            docs = (
                [client.get(item_path(other, mesh, name))]
                if name is not None
                else _list_all(client, other, mesh)
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            docs = []
        joined[type_name] = {
            (str(d.get("mesh") or ""), str(d.get("name") or "")): d for d in docs if isinstance(d, Mapping)
        }
    return joined


def _get(args: argparse.Namespace, session: Session) -> None:
    desc = resolve_type(args.type)
    client = session.client()
    if args.name is not None:
        body = client.get(item_path(desc, args.mesh, args.name))
        if not isinstance(body, Mapping):
            raise BadResponse(f'the control plane answered the read of {desc.name} "{args.name}" without it')
        docs: list[Doc] = [body]
        next_url = None
    else:
        query = {"offset": str(args.offset)} if args.offset else {}
        if args.size is not None:
            query["size"] = str(args.size)
        body = client.get(collection_path(desc, args.mesh), query)
        docs, next_url = _listing(body, desc.plural)
    joined = _joined(client, desc, args.mesh, args.name) if args.output == "table" else {}
    session.write(render(args.output, desc, body, docs, now=session.now(), joined=joined))
    following = _next_offset(next_url, args.offset, len(docs))
    if args.output == "table" and following is not None:
        hint = f"kmeshctl get {desc.plural} --offset {following}"
        if args.size is not None:
            hint += f" --size {args.size}"
        if desc.mesh_scoped and args.mesh != DEFAULT_MESH:
            hint += f" --mesh {args.mesh}"
        session.print(f"\nRest of the resources: {hint}")


def _delete(args: argparse.Namespace, session: Session) -> None:
    desc = resolve_type(args.type)
    session.client().delete(item_path(desc, args.mesh, args.name))
    session.print(f'deleted {desc.name} "{args.name}"')


def _mesh_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m",
        "--mesh",
        default=DEFAULT_MESH,
        help=f"mesh of a mesh-scoped type (default {DEFAULT_MESH})",
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
    _mesh_flag(get)
    get.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table", help="output format")
    get.add_argument("--size", type=_whole_number(1), help="page size of a listing")
    get.add_argument("--offset", type=_whole_number(0), default=0, help="where a listing starts")
    get.set_defaults(handler=_get)

    delete = commands.add_parser("delete", parents=[common], help="delete a resource")
    delete.add_argument("type", metavar="TYPE", help="resource type, e.g. mesh, dataplane")
    delete.add_argument("name", metavar="NAME", help="name of the resource")
    _mesh_flag(delete)
    delete.set_defaults(handler=_delete)
