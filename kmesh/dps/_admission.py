"""Admission of a proxy: its document, its token, and the resource the zone control plane registers for it.

Pure: the server hands in the proxy's Hello and what its store view holds; :func:`admit` returns the
resource to register or the refusal to send. Every refusal's reason is safe to send back to the proxy: it
names what was wrong and what to do, and never quotes the token.

Rules, in this order (the first failure wins):

1. The document parses as a resource (``kmesh.model.parse_resource``: every violation, with field paths);
   else ``bad_dataplane``.
2. Its type is the proxy type's: ``Dataplane`` for a sidecar, ``ZoneIngress`` for an ingress,
   ``ZoneEgress`` for an egress (``bad_dataplane``, naming the ``--proxy-type`` that would fit). A zone
   proxy whose document names another zone is refused too: it belongs to that zone's control plane.
3. A sidecar's mesh exists here (``mesh_not_found``: meshes are made on the global and synced down).
4. The token (unless the server runs without authentication): a sidecar's is a dataplane token of its
   mesh, verified against the mesh's ``dataplane-token-signing-key-<mesh>-<serial>`` Secrets and its
   revocation list; a zone proxy's is either a zone token of the global (``kmeshctl generate zone-token
   --zone Z --scope ingress|egress``, Kuma's way: audience ``kmesh-zone``, verified with the
   ``zone-token-signing-public-key-<serial>`` GlobalSecrets and the ``zone-token-revocations`` list that
   KDS brings from the global; its scope must be the proxy type and its zone this zone), or a zone-proxy
   token of this zone's control plane (:mod:`kmesh.dps.zone_proxy_tokens`). A token
   error is sent with its own code (``token_expired``, ``token_bad_signature``, ...); a token signed by
   another mesh's key is ``token_mismatch`` naming the mesh it was made for.
5. The token fits the proxy (``check_dataplane_identity``): proxy type, name, and each tag it sets equal
   to the only value the dataplane's inbounds give that tag (``token_mismatch``).
6. The mesh's ``constraints.dataplaneProxy``: some requirement (if any) and no restriction matches one of
   the dataplane's inbounds (``dataplane_not_allowed``), as Kuma checks them.

The registered resource carries the labels ``kuma.io/origin: zone``, ``kuma.io/zone: <zone>`` and
``kmesh.io/proxy-instance: <the proxy's instance id>`` (when it is a valid label value), and a zone proxy
its ``zone`` field set to this zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, final

import jwt
import msgspec

from kmesh.dps.messages import CloseCode, Hello
from kmesh.dps.zone_proxy_tokens import verify_zone_proxy_token, zone_proxy_key_set, zone_proxy_revoked_ids
from kmesh.errors import InvalidResource
from kmesh.model import LABEL_ORIGIN, LABEL_ZONE, Resource, parse_resource
from kmesh.model._fields import label_problems
from kmesh.model.types import DataplaneSpec, MeshSpec, ZoneEgressSpec, ZoneIngressSpec
from kmesh.model.types.mesh import TagRules
from kmesh.tokens import (
    ZONE_AUDIENCE,
    ZONE_TOKEN_REVOCATIONS,
    DataplaneTokenClaims,
    ProxyType,
    TokenError,
    UnknownSigningKey,
    ZoneTokenClaims,
    check_dataplane_identity,
    dataplane_key_set,
    dataplane_revocations_name,
    revoked_ids,
    verify_dataplane_token,
    verify_zone_token,
    zone_public_key_set,
)

__all__ = [
    "LABEL_PROXY_INSTANCE",
    "RESOURCE_TYPES",
    "Admitted",
    "Refused",
    "admit",
    "inbound_tag_values",
]

LABEL_PROXY_INSTANCE: Final = "kmesh.io/proxy-instance"
ORIGIN_ZONE: Final = "zone"
RESOURCE_TYPES: Final[Mapping[str, str]] = {
    "sidecar": "Dataplane",
    "ingress": "ZoneIngress",
    "egress": "ZoneEgress",
}
_PROXY_TYPE_OF: Final = {type_name: proxy_type for proxy_type, type_name in RESOURCE_TYPES.items()}


@final
@dataclass(frozen=True, slots=True)
class Admitted:
    """The proxy may join: register ``resource``. ``claims`` is None when authentication is off; a zone
    proxy admitted with a zone token of the global has :class:`ZoneTokenClaims`."""

    resource: Resource
    claims: DataplaneTokenClaims | ZoneTokenClaims | None


@final
@dataclass(frozen=True, slots=True)
class Refused:
    """The proxy is refused with ``code`` and ``reason`` (sent in a Reject)."""

    code: str
    reason: str


def inbound_tag_values(spec: DataplaneSpec) -> dict[str, set[str]]:
    """Every value each tag takes across the dataplane's inbounds (a gateway's tags count as one)."""
    values: dict[str, set[str]] = {}
    tag_sets = [inbound.tags for inbound in spec.networking.inbound]
    if spec.networking.gateway is not None:
        tag_sets.append(spec.networking.gateway.tags)
    for tags in tag_sets:
        for tag, value in tags.items():
            values.setdefault(tag, set()).add(value)
    return values


def admit(
    hello: Hello,
    *,
    zone: str,
    meshes: Mapping[str, Resource],
    secrets: Sequence[Resource],
    global_secrets: Sequence[Resource],
    now: float,
    require_token: bool = True,
) -> Admitted | Refused:
    """Judge ``hello`` (see the module rules). ``meshes`` maps mesh names to Meshes; ``secrets`` holds the
    Secrets of the dataplane's mesh (at least), ``global_secrets`` this zone's GlobalSecrets."""
    proxy_type = hello.proxy_type
    expected = RESOURCE_TYPES.get(proxy_type)
    if expected is None:
        return Refused(
            CloseCode.BAD_HELLO, f"proxy type {proxy_type[:64]!r} is not sidecar, ingress or egress"
        )
    try:
        resource = parse_resource(hello.dataplane, source="the proxy's dataplane document")
    except InvalidResource as exc:
        return Refused(CloseCode.BAD_DATAPLANE, exc.describe())
    meta = resource.meta
    if meta.type != expected:
        fits = _PROXY_TYPE_OF.get(meta.type)
        hint = f"; run it with --proxy-type {fits}" if fits else ""
        return Refused(
            CloseCode.BAD_DATAPLANE,
            f"a {proxy_type} proxy is described by a {expected}, but its document is a {meta.type}{hint}",
        )
    spec = resource.spec
    if isinstance(spec, ZoneIngressSpec | ZoneEgressSpec):
        if spec.zone and spec.zone != zone:
            return Refused(
                CloseCode.BAD_DATAPLANE,
                f"{meta.type} {meta.name!r} belongs to zone {spec.zone!r}, but this control plane serves "
                f"zone {zone!r}: connect the proxy to its own zone's control plane",
            )
        spec = msgspec.structs.replace(spec, zone=zone)
    mesh = meshes.get(meta.mesh) if meta.mesh else None
    if meta.mesh and mesh is None:
        return Refused(
            CloseCode.MESH_NOT_FOUND,
            f"mesh {meta.mesh!r} does not exist in this zone: meshes are created on the global control "
            "plane and reach zones over KDS (check the mesh name, or wait for the zone to sync)",
        )
    claims: DataplaneTokenClaims | ZoneTokenClaims | None = None
    if require_token:
        checked = _check_token(hello, resource, secrets, global_secrets, now, zone)
        if isinstance(checked, Refused):
            return checked
        claims = checked
    if isinstance(spec, DataplaneSpec) and mesh is not None and isinstance(mesh.spec, MeshSpec):
        refusal = _constraints(mesh.spec, spec, meta.name, meta.mesh)
        if refusal is not None:
            return refusal
    labels = {**meta.labels, LABEL_ORIGIN: ORIGIN_ZONE, LABEL_ZONE: zone}
    instance = {LABEL_PROXY_INSTANCE: hello.instance_id}
    if hello.instance_id and not any(True for _ in label_problems(instance)):
        labels.update(instance)
    registered = Resource(meta=msgspec.structs.replace(meta, labels=labels), spec=spec)
    return Admitted(resource=registered, claims=claims)


def _check_token(
    hello: Hello,
    resource: Resource,
    secrets: Sequence[Resource],
    global_secrets: Sequence[Resource],
    now: float,
    zone: str,
) -> DataplaneTokenClaims | ZoneTokenClaims | Refused:
    meta = resource.meta
    proxy_type: ProxyType = "sidecar" if meta.type == "Dataplane" else _zone_proxy_type(meta.type)
    if not hello.token:
        what = (
            f"a dataplane token (kmeshctl generate dataplane-token --mesh {meta.mesh} --name {meta.name})"
            if meta.mesh
            else (
                f"a zone token on the global (kmeshctl generate zone-token --zone {zone} --scope "
                f"{proxy_type}) or a zone-proxy token of type {proxy_type} from this zone's control plane"
            )
        )
        return Refused(
            CloseCode.UNAUTHENTICATED,
            f"a token is required: generate {what} and give it to the proxy with --dataplane-token-file",
        )
    if not meta.mesh and _audience(hello.token) == ZONE_AUDIENCE:
        return _check_zone_token(hello.token, proxy_type, global_secrets, now, zone)
    try:
        if meta.mesh:
            keys = dataplane_key_set(secrets, mesh=meta.mesh)
            revocations = next(
                (s for s in secrets if s.meta.name == dataplane_revocations_name(meta.mesh)), None
            )
            revoked = revoked_ids(revocations)
            where = f"mesh {meta.mesh!r} has"
        else:
            keys = zone_proxy_key_set(global_secrets)
            revoked = zone_proxy_revoked_ids(global_secrets)
            where = "this zone control plane has"
    except ValueError as exc:
        return Refused(CloseCode.UNAUTHENTICATED, f"the token cannot be checked: {exc}")
    if not keys.kids:
        return Refused(
            CloseCode.UNAUTHENTICATED,
            f"{where} no token signing key here yet, so no token can be verified (a mesh's keys are made "
            "on the global and reach zones over KDS; a zone's proxy key is made when its control plane "
            "starts)",
        )
    try:
        if meta.mesh:
            claims = verify_dataplane_token(hello.token, keys, mesh=meta.mesh, now=now, revoked_ids=revoked)
        else:
            claims = verify_zone_proxy_token(hello.token, keys, now=now, revoked=revoked)
        spec = resource.spec
        tags = inbound_tag_values(spec) if isinstance(spec, DataplaneSpec) else {}
        check_dataplane_identity(claims, name=meta.name, proxy_type=proxy_type, tag_values=tags)
    except UnknownSigningKey as exc:
        return _other_mesh(hello.token, meta.mesh) or Refused(exc.code, exc.reason)
    except TokenError as exc:
        return Refused(exc.code, exc.reason)
    return claims


def _audience(token: str) -> object:
    """The token's (unverified) audience, read only to tell a zone token from a zone-proxy token; the
    chosen verification checks it again with the signature."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("aud")
    except jwt.PyJWTError:
        return None


def _check_zone_token(
    token: str, proxy_type: ProxyType, global_secrets: Sequence[Resource], now: float, zone: str
) -> ZoneTokenClaims | Refused:
    """A zone token of the global for a zone ingress or egress of this zone, verified with the public keys
    and the revocation list synced from the global."""
    try:
        keys = zone_public_key_set(global_secrets)
        revocations = next((s for s in global_secrets if s.meta.name == ZONE_TOKEN_REVOCATIONS), None)
        revoked = revoked_ids(revocations)
    except ValueError as exc:
        return Refused(CloseCode.UNAUTHENTICATED, f"the zone token cannot be checked: {exc}")
    if not keys.kids:
        return Refused(
            UnknownSigningKey.code,
            "this zone control plane has no zone token public key yet, so no zone token can be verified: "
            "the global's zone-token-signing-public-key GlobalSecrets reach zones over KDS (check that this "
            "zone is connected to the global, or use a zone-proxy token of this zone)",
        )
    try:
        claims = verify_zone_token(token, keys, now=now, required_scope=proxy_type, revoked_ids=revoked)
    except UnknownSigningKey as exc:
        return Refused(
            exc.code,
            f"{exc.reason}: the zone token was not signed by a key of the global this zone is connected to "
            "(or its public key has not reached this zone yet)",
        )
    except TokenError as exc:
        return Refused(exc.code, exc.reason)
    if claims.zone != zone:
        return Refused(
            "token_mismatch",
            f"the zone token is for zone {claims.zone[:64]!r}, but this control plane serves zone {zone!r}; "
            f"generate one with: kmeshctl generate zone-token --zone {zone} --scope {proxy_type}",
        )
    return claims


def _other_mesh(token: str, mesh: str) -> Refused | None:
    """A clearer refusal for a token signed by a key of another mesh: its (unverified) mesh claim, read
    only to word the message, names the mesh it was made for."""
    if not mesh:
        return None
    try:
        claimed = jwt.decode(token, options={"verify_signature": False}).get("mesh")
    except jwt.PyJWTError:
        return None
    if not isinstance(claimed, str) or claimed == mesh:
        return None
    return Refused(
        "token_mismatch",
        f"token is for mesh {claimed[:64]!r}, but the dataplane is in mesh {mesh!r}; generate a token for "
        f"mesh {mesh!r}",
    )


def _zone_proxy_type(type_name: str) -> ProxyType:
    return "ingress" if type_name == "ZoneIngress" else "egress"


def _matches(rules: Sequence[TagRules], spec: DataplaneSpec) -> TagRules | None:
    tag_sets = [inbound.tags for inbound in spec.networking.inbound]
    if spec.networking.gateway is not None:
        tag_sets.append(spec.networking.gateway.tags)
    for rule in rules:
        for tags in tag_sets:
            if all(tags.get(k) is not None and (v == "*" or tags[k] == v) for k, v in rule.tags.items()):
                return rule
    return None


def _constraints(mesh: MeshSpec, spec: DataplaneSpec, name: str, mesh_name: str) -> Refused | None:
    constraints = mesh.constraints.dataplane_proxy if mesh.constraints is not None else None
    if constraints is None:
        return None
    if constraints.requirements and _matches(constraints.requirements, spec) is None:
        wanted = "; ".join(str(dict(rule.tags)) for rule in constraints.requirements)
        return Refused(
            CloseCode.NOT_ALLOWED,
            f"dataplane {name!r} matches none of mesh {mesh_name!r}'s constraints.dataplaneProxy."
            f"requirements ({wanted})",
        )
    restriction = _matches(constraints.restrictions, spec)
    if restriction is not None:
        return Refused(
            CloseCode.NOT_ALLOWED,
            f"dataplane {name!r} matches mesh {mesh_name!r}'s constraints.dataplaneProxy.restrictions "
            f"{dict(restriction.tags)}",
        )
    return None
