"""``POST /tokens/dataplane`` and ``POST /tokens/zone-proxy``: the tokens proxies present to their zone CP.

``/tokens/dataplane`` is Kuma's endpoint with Kuma's field names (``DataplaneTokenRequest``)::

    {"mesh": "default", "name": "web-1", "tags": {"kuma.io/service": ["web"]}, "type": "dataplane",
     "validFor": "24h"}

- ``mesh`` (required) the mesh the token is valid in; the Mesh must exist here;
- ``name`` (optional) binds the token to one Dataplane name;
- ``tags`` (optional) binds it to tag values: ``{tag: [value]}`` as Kuma sends it, or ``{tag: value}``.
  A kmesh token holds one value per tag (the dataplane's inbounds must give that tag exactly that
  value), so a list of several values is refused, naming the tag;
- ``type`` (optional) ``dataplane``, the only kind this endpoint makes: a zone ingress's or egress's token
  comes from ``/tokens/zone-proxy`` on its zone CP;
- ``validFor`` (optional, default ``8760h``) as for zone tokens.

``/tokens/zone-proxy`` is kmesh's own: ``{"type": "ingress"|"egress", "name"?, "validFor"?}``. Kuma signs a
zone proxy's token on the global with the zone-token key; in kmesh that key never leaves the global, so a
zone CP could not check such a token, and the zone CP signs its own ingresses' and egresses' tokens
(``kmesh.dps.zone_proxy_tokens``).

Rules (as for ``/tokens/zone``): the answer is the token alone, ``200 text/plain``; each field at fault is
named in one 400, unknown fields included; a control plane without the matching issuer answers 404 saying
where such tokens come from; a token is never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web

from kmesh.api._responses import ApiError
from kmesh.api._tokens import refuse, unknown_fields, valid_for_field
from kmesh.api._writes import decode_body
from kmesh.errors import FieldViolation
from kmesh.model._fields import name_problem, tag_problems

__all__ = [
    "DATAPLANE_TOKEN_PATH",
    "DP_TOKENS_NOT_ISSUED_HERE",
    "ZONE_PROXY_TOKENS_NOT_ISSUED_HERE",
    "ZONE_PROXY_TOKEN_PATH",
    "DataplaneTokenEndpoint",
    "DataplaneTokenIssuer",
    "DataplaneTokenRequest",
    "ZoneProxyTokenEndpoint",
    "ZoneProxyTokenIssuer",
    "ZoneProxyTokenRequest",
    "parse_dataplane_token_request",
    "parse_zone_proxy_token_request",
]

DATAPLANE_TOKEN_PATH: Final = "/tokens/dataplane"
ZONE_PROXY_TOKEN_PATH: Final = "/tokens/zone-proxy"
_DP_FIELDS: Final = ("mesh", "name", "tags", "type", "validFor")
_ZONE_PROXY_FIELDS: Final = ("type", "name", "validFor")
_ZONE_PROXY_TYPES: Final = ("ingress", "egress")

DP_TOKENS_NOT_ISSUED_HERE: Final = (
    "dataplane tokens are issued by the global control plane (or a standalone one); "
    "a zone control plane only verifies them"
)
ZONE_PROXY_TOKENS_NOT_ISSUED_HERE: Final = (
    "zone ingress and egress tokens are issued by the zone control plane of their zone "
    "(or a standalone one), which is the one that verifies them"
)


@dataclass(frozen=True, slots=True)
class DataplaneTokenRequest:
    """A checked request: the mesh, the optional dataplane name and tags, the validity in seconds."""

    mesh: str
    name: str | None
    tags: dict[str, str]
    valid_for_s: float


@dataclass(frozen=True, slots=True)
class ZoneProxyTokenRequest:
    """A checked request: ingress or egress, the optional resource name, the validity in seconds."""

    proxy_type: Literal["ingress", "egress"]
    name: str | None
    valid_for_s: float


# Each signs a checked request and returns the token. Raises KmeshError (NotFound: no such mesh).
DataplaneTokenIssuer = Callable[[DataplaneTokenRequest], Awaitable[str]]
ZoneProxyTokenIssuer = Callable[[ZoneProxyTokenRequest], Awaitable[str]]


def _name(doc: dict[str, Any], key: str, out: list[FieldViolation], *, what: str) -> str | None:
    value = doc.get(key)
    if value is None:
        if what:
            out.append(FieldViolation(key, f"required field is missing: {what}"))
        return None
    if not isinstance(value, str):
        out.append(FieldViolation(key, f"expected a string, got {type(value).__name__}"))
        return None
    problem = name_problem(value)
    if problem is not None:
        out.append(FieldViolation(key, problem))
    return value


def _tags(doc: dict[str, Any], out: list[FieldViolation]) -> dict[str, str]:
    raw = doc.get("tags")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        out.append(FieldViolation("tags", f"expected an object of tag: [value], got {type(raw).__name__}"))
        return {}
    tags: dict[str, str] = {}
    for tag, value in raw.items():
        where = f'tags["{tag}"]'
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            out.append(FieldViolation(where, 'expected a list of one string value, such as ["web"]'))
            continue
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            out.append(
                FieldViolation(
                    where,
                    f"a kmesh token binds one value per tag, got {len(distinct)} ({', '.join(distinct)}); "
                    "generate one token per value",
                )
            )
            continue
        tags[str(tag)] = distinct[0]
    out.extend(FieldViolation(f"tags{where}", reason) for where, reason in tag_problems(tags))
    return tags


def parse_dataplane_token_request(doc: dict[str, Any]) -> DataplaneTokenRequest:
    """The checked request in ``doc``. Raises ApiError (400) naming every field at fault."""
    violations = unknown_fields(doc, _DP_FIELDS)
    mesh = _name(doc, "mesh", violations, what="the mesh the token is valid in")
    name = _name(doc, "name", violations, what="")
    tags = _tags(doc, violations)
    kind = doc.get("type", "dataplane")
    if kind in _ZONE_PROXY_TYPES:
        violations.append(
            FieldViolation(
                "type",
                f"{kind} tokens are made by the zone control plane: POST {ZONE_PROXY_TOKEN_PATH} there "
                f"(kmeshctl generate zone-proxy-token --type {kind})",
            )
        )
    elif kind != "dataplane":
        violations.append(FieldViolation("type", f"unknown type {kind!r}; use dataplane"))
    valid_for_s = valid_for_field(doc, violations)
    refuse("Invalid dataplane token request", violations)
    assert mesh is not None  # a missing mesh is a violation
    return DataplaneTokenRequest(mesh=mesh, name=name, tags=tags, valid_for_s=valid_for_s)


def parse_zone_proxy_token_request(doc: dict[str, Any]) -> ZoneProxyTokenRequest:
    """The checked request in ``doc``. Raises ApiError (400) naming every field at fault."""
    violations = unknown_fields(doc, _ZONE_PROXY_FIELDS)
    kind = doc.get("type")
    if kind is None:
        violations.append(FieldViolation("type", "required field is missing: ingress or egress"))
    elif kind not in _ZONE_PROXY_TYPES:
        violations.append(FieldViolation("type", f"unknown type {kind!r}; use ingress or egress"))
    name = _name(doc, "name", violations, what="")
    valid_for_s = valid_for_field(doc, violations)
    refuse("Invalid zone proxy token request", violations)
    proxy_type: Literal["ingress", "egress"] = "ingress" if kind == "ingress" else "egress"
    return ZoneProxyTokenRequest(proxy_type=proxy_type, name=name, valid_for_s=valid_for_s)


class DataplaneTokenEndpoint:
    """The handler of ``POST /tokens/dataplane`` over one issuer (None: a zone CP, which issues none)."""

    def __init__(self, issuer: DataplaneTokenIssuer | None) -> None:
        self._issuer = issuer

    async def generate(self, request: web.Request) -> web.Response:
        if self._issuer is None:
            raise ApiError(404, "Not found", DP_TOKENS_NOT_ISSUED_HERE)
        doc = decode_body(await request.read(), request.content_type)
        token = await self._issuer(parse_dataplane_token_request(doc))
        return web.Response(text=token, content_type="text/plain", charset="utf-8")


class ZoneProxyTokenEndpoint:
    """The handler of ``POST /tokens/zone-proxy`` over one issuer (None: the global, which issues none)."""

    def __init__(self, issuer: ZoneProxyTokenIssuer | None) -> None:
        self._issuer = issuer

    async def generate(self, request: web.Request) -> web.Response:
        if self._issuer is None:
            raise ApiError(404, "Not found", ZONE_PROXY_TOKENS_NOT_ISSUED_HERE)
        doc = decode_body(await request.read(), request.content_type)
        token = await self._issuer(parse_zone_proxy_token_request(doc))
        return web.Response(text=token, content_type="text/plain", charset="utf-8")
