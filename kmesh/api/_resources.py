"""The resource endpoints: list, get, put and delete of any type in the descriptor table.

Rules:
- Documents in and out are Kuma's REST shape (``kmesh.model.to_document`` / ``parse_resource``). A copy
  synced from a zone always shows its zone of origin as the ``kuma.io/zone`` label, even if the sender
  left it out: the zone is part of its identity, and ``kmeshctl get`` reads the ZONE column from it.
- PUT creates (201) or replaces (200) and answers with what was stored. A replace carries the version it
  read, so a concurrent writer is detected by the store; the loser re-reads and retries once (the body is
  a full replacement, so retrying is what the caller meant), then gives up with 409.
- Identity is ``(type, mesh, name, zone)``: on a global control plane two zones may each have sent a
  ``web-1``. A GET or DELETE picks one with ``?zone=``; without it, the resource created on this control
  plane is meant, or else the only zone copy there is (400 naming ``zone`` when several zones have one).
- A missing mesh is reported as such (404 naming the mesh) so a typo in the mesh is not mistaken for an
  empty one. Store errors propagate to the error middleware, the one place they become statuses.
- A DELETE that passed every other check asks the control plane's delete guard last, with the key of the
  resource it is about to delete (zone of origin included). A violation refuses it with 400
  ``could not delete``: a global refuses to delete a Zone whose CP is still connected, as Kuma's
  ``ZoneManager`` does, and deletes a disconnected one with everything it owns (the store's cascade).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kmesh.api._query import next_page_url, parse_list_query, parse_zone
from kmesh.api._responses import ApiError, json_response
from kmesh.api._writes import Mode, decode_body, reconcile_identity, write_refusal
from kmesh.errors import AlreadyExists, Conflict, FieldViolation, NotFound
from kmesh.model import LABEL_ZONE, Resource, ResourceDescriptor, ResourceKey, parse_resource, to_document
from kmesh.store import ResourceStore

__all__ = ["DELETE_REFUSED", "DeleteGuard", "ResourceEndpoints"]

_MESH = "Mesh"
DELETE_REFUSED = "could not delete"

# Why the resource with this key must not be deleted now, or None to let the delete go ahead.
DeleteGuard = Callable[[ResourceKey], Awaitable[FieldViolation | None]]


def _document(resource: Resource) -> dict[str, Any]:
    """The REST document of ``resource``, with its zone of origin among its labels."""
    doc = to_document(resource)
    zone = resource.meta.zone
    if zone and doc.get("labels", {}).get(LABEL_ZONE) != zone:
        doc["labels"] = {**doc.get("labels", {}), LABEL_ZONE: zone}
    return doc


class ResourceEndpoints:
    """Request handlers over one store; each takes the request and the descriptor of its route."""

    def __init__(self, store: ResourceStore, mode: Mode, *, delete_guard: DeleteGuard | None = None) -> None:
        self._store = store
        self._mode = mode
        self._delete_guard = delete_guard

    async def list(self, request: web.Request, desc: ResourceDescriptor) -> web.Response:
        """One page of ``desc`` resources: in the URL's mesh, or everywhere when the URL names none."""
        query = parse_list_query(request.query.items())
        mesh = request.match_info.get("mesh")
        if mesh is not None:
            await self._require_mesh(mesh)
        page = await self._store.list(
            desc.name,
            mesh=mesh,
            zone=query.zone,
            labels=query.labels or None,
            name_prefix=query.name_prefix,
            offset=query.offset,
            limit=query.size,
        )
        return json_response(
            {
                "total": page.total,
                "items": [_document(r) for r in page.items],
                "next": next_page_url(request.url, page.next_offset, query.size),
            }
        )

    async def get(self, request: web.Request, desc: ResourceDescriptor) -> web.Response:
        mesh, name = self._identity(request, desc)
        resource = await self._locate(desc, mesh, name, parse_zone(request.query.items()))
        return json_response(_document(resource))

    async def put(self, request: web.Request, desc: ResourceDescriptor) -> web.Response:
        mesh, name = self._identity(request, desc)
        refusal = write_refusal(desc, self._mode, name)
        if refusal is not None:
            raise refusal
        doc = decode_body(await request.read(), request.content_type)
        doc = reconcile_identity(doc, desc, name, mesh if desc.mesh_scoped else None)
        resource = parse_resource(doc, source=f"PUT {request.path}")
        stored, created = await self._save(resource)
        return json_response(to_document(stored), status=201 if created else 200)

    async def delete(self, request: web.Request, desc: ResourceDescriptor) -> web.Response:
        mesh, name = self._identity(request, desc)
        refusal = write_refusal(desc, self._mode, name)
        if refusal is not None:
            raise refusal
        resource = await self._locate(desc, mesh, name, parse_zone(request.query.items()))
        if self._delete_guard is not None:
            violation = await self._delete_guard(resource.key)
            if violation is not None:
                raise ApiError(
                    400,
                    DELETE_REFUSED,
                    f"{violation.field}: {violation.reason}",
                    invalid_parameters=[violation],
                )
        try:
            await self._store.delete(resource.key)
        except NotFound:
            # Deleted by someone else between our read and our delete: the caller's intent holds,
            # but say so as Kuma does for a missing resource.
            raise await self._missing(desc, mesh, name) from None
        return json_response({})

    @staticmethod
    def _identity(request: web.Request, desc: ResourceDescriptor) -> tuple[str, str]:
        """The (mesh, name) a single-resource URL names; mesh is "" for a type outside meshes."""
        mesh = request.match_info.get("mesh", "") if desc.mesh_scoped else ""
        return mesh, request.match_info["name"]

    async def _save(self, resource: Resource) -> tuple[Resource, bool]:
        """Create or replace ``resource``; returns what was stored and whether it was created."""
        for attempt in range(2):
            last = attempt == 1
            try:
                current = await self._store.get(resource.key)
            except NotFound:
                try:
                    return await self._store.create(resource), True
                except AlreadyExists:
                    if last:
                        raise
                    continue  # created concurrently: replace it instead
            try:
                return await self._store.update(resource, expected_version=current.meta.version), False
            except (Conflict, NotFound):
                if last:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _locate(self, desc: ResourceDescriptor, mesh: str, name: str, zone: str | None) -> Resource:
        """The resource a single-resource URL (and its ``?zone=``) names. Raises ApiError 404/400."""
        try:
            return await self._store.get(ResourceKey(desc.name, name, mesh, zone or ""))
        except NotFound:
            if zone is not None:
                raise await self._missing(desc, mesh, name, zone) from None
        # Not created here: on a global control plane it may have been synced from a zone.
        page = await self._store.list(desc.name, mesh=mesh if desc.mesh_scoped else None, name_prefix=name)
        copies = [r for r in page.items if r.meta.name == name]
        if len(copies) == 1:
            return copies[0]
        if not copies:
            raise await self._missing(desc, mesh, name)
        zones = ", ".join(sorted(r.meta.zone for r in copies))
        reason = f"{desc.name} {name!r} exists in zones {zones}; choose one with ?zone="
        raise ApiError(400, "Ambiguous resource", reason, invalid_parameters=[FieldViolation("zone", reason)])

    async def _missing(self, desc: ResourceDescriptor, mesh: str, name: str, zone: str = "") -> ApiError:
        """The 404 for a resource that is not there, naming the mesh when that is what is missing."""
        if mesh:
            await self._require_mesh(mesh)
        where = f" in mesh {mesh!r}" if mesh else ""
        if zone:
            where += f" from zone {zone!r}"
        return ApiError(404, "Not found", f"{desc.name} {name!r} not found{where}")

    async def _require_mesh(self, mesh: str) -> None:
        """Raises ApiError (404) unless Mesh ``mesh`` exists."""
        try:
            await self._store.get(ResourceKey(_MESH, mesh))
        except NotFound:
            raise ApiError(404, "Not found", f"mesh {mesh!r} not found; create it first") from None
