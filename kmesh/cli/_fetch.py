"""Reading listings through the REST API: one page, every page, and the types a presentation joins.

Rules:
- A listing answer must be Kuma's list object (``total``, ``items``, ``next``); anything else is a
  BadResponse naming what was being listed. Items that are not objects are skipped, not fatal.
- The offset of the next page is read from the server's ``next`` URL, so paging follows the server. A
  server whose ``next`` does not move forward ends the walk instead of looping forever.
- Joined types (a Zone's ZoneInsight) are keyed by ``(mesh, name, zone)`` (``_render.join_key``); a
  control plane that does not serve the joined type (404) is not an error: the columns just show what
  is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kmesh.cli._client import ApiClient, ApiError, BadResponse
from kmesh.cli._render import Doc, JoinKey, join_key
from kmesh.cli._types import collection_path, item_path
from kmesh.model import ResourceDescriptor, descriptor

__all__ = ["fetch_joined", "list_all", "listing", "next_offset"]

# descriptor name of a joined type -> (mesh, name, zone) -> its document
JoinedDocs = dict[str, dict[JoinKey, Doc]]


def listing(body: Any, what: str) -> tuple[list[Doc], Any]:
    """The items and ``next`` of a list answer. Raises BadResponse when it is not a list object."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise BadResponse(f"the control plane answered the listing of {what} without an items list")
    return [item for item in body["items"] if isinstance(item, Mapping)], body.get("next")


def next_offset(next_url: object, offset: int, count: int) -> int | None:
    """The offset of the next page, read from the ``next`` URL; None on the last page."""
    if not next_url:
        return None
    found = parse_qs(urlsplit(str(next_url)).query).get("offset")
    if found and found[0].isdigit():
        return int(found[0])
    return offset + count


def list_all(client: ApiClient, desc: ResourceDescriptor, mesh: str, *, zone: str | None = None) -> list[Doc]:
    """Every page of a listing of ``desc`` (in ``mesh`` when mesh-scoped; from ``zone`` when given).

    Raises ApiError, CpUnreachable, BadResponse.
    """
    docs: list[Doc] = []
    offset = 0
    while True:
        query = {"offset": str(offset)}
        if zone is not None:
            query["zone"] = zone
        page, next_url = listing(client.get(collection_path(desc, mesh), query), desc.plural)
        docs.extend(page)
        following = next_offset(next_url, offset, len(page))
        if following is None or following <= offset:
            return docs
        offset = following


def fetch_joined(
    client: ApiClient, joins: tuple[str, ...], mesh: str, name: str | None, *, zone: str | None = None
) -> JoinedDocs:
    """The documents of the ``joins`` types (one named ``name``, or all), keyed by ``(mesh, name, zone)``;
    ``zone`` picks a zone's copy on a global.

    Raises ApiError (other than 404), CpUnreachable, BadResponse.
    """
    joined: JoinedDocs = {}
    for type_name in joins:
        try:
            other = descriptor(type_name)
        except KeyError:
            continue  # the model does not define that type: there is nothing to join
        try:
            docs = (
                [client.get(item_path(other, mesh, name), {"zone": zone} if zone is not None else None)]
                if name is not None
                else list_all(client, other, mesh, zone=zone)
            )
        except ApiError as exc:
            if exc.status != 404:
                raise
            docs = []
        joined[type_name] = {join_key(d): d for d in docs if isinstance(d, Mapping)}
    return joined
