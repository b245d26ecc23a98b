"""``POST /tokens/zone``: a zone token from the global control plane, Kuma's endpoint and field names.

The request is ``{"zone": "z1", "scope": ["cp"], "validFor": "720h"}``:

- ``zone`` (required) is a resource name: the zone the token proves;
- ``scope`` (optional, default ``["cp"]``) lists what the holder may connect as, each of ``cp``,
  ``ingress``, ``egress``; duplicates are dropped, the order kept;
- ``validFor`` (optional, default ``8760h``, a year) is a duration as ``kmesh.model.parse_duration`` reads
  it, of at least one second (tokens carry whole seconds).

The answer is the token alone, ``200 text/plain``, so ``curl ... > token`` gives a usable file, as Kuma's
does. Every field at fault is named in one 400; an unknown field is refused rather than ignored, because a
misspelt ``validfor`` would otherwise silently give a year-long token.

Rules:
- Only a control plane that was handed an issuer signs tokens: that is the global. Elsewhere the route
  answers 404 with the reason, so ``kmeshctl generate zone-token`` against a zone CP says where to go.
- The token is a secret: it is never logged, and the access log line names only the path. What the issuer
  raises (a ``KmeshError``) goes to the error middleware like any other handler's error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from kmesh.api._responses import ApiError
from kmesh.api._writes import decode_body
from kmesh.errors import FieldViolation
from kmesh.model import parse_duration
from kmesh.model._fields import name_problem

__all__ = [
    "DEFAULT_VALID_FOR",
    "ZONE_TOKEN_PATH",
    "ZONE_TOKEN_SCOPES",
    "ZoneTokenEndpoint",
    "ZoneTokenIssuer",
    "ZoneTokenRequest",
    "parse_zone_token_request",
    "refuse",
    "unknown_fields",
    "valid_for_field",
]

ZONE_TOKEN_PATH: Final = "/tokens/zone"
# Kuma's zone token scopes: the zone control plane itself, its zone ingresses and its zone egresses.
ZONE_TOKEN_SCOPES: Final = ("cp", "ingress", "egress")
DEFAULT_SCOPES: Final = ("cp",)
DEFAULT_VALID_FOR: Final = "8760h"
_MIN_VALID_FOR_S: Final = 1.0
_FIELDS: Final = ("zone", "scope", "validFor")

# (zone, scopes, valid_for_s) -> the signed token. Raises KmeshError when it cannot sign.
ZoneTokenIssuer = Callable[[str, list[str], float], Awaitable[str]]

NOT_ISSUED_HERE: Final = "zone tokens are issued by the global control plane"


@dataclass(frozen=True, slots=True)
class ZoneTokenRequest:
    """A checked request: the zone, its scopes (at least one, no duplicates) and the validity in seconds."""

    zone: str
    scopes: list[str]
    valid_for_s: float


def _zone(doc: dict[str, Any], out: list[FieldViolation]) -> str:
    zone = doc.get("zone")
    if zone is None:
        out.append(FieldViolation("zone", "required field is missing: the zone the token is for"))
        return ""
    if not isinstance(zone, str):
        out.append(FieldViolation("zone", f"expected a string, got {type(zone).__name__}"))
        return ""
    problem = name_problem(zone)
    if problem is not None:
        out.append(FieldViolation("zone", problem))
    return zone


def _scopes(doc: dict[str, Any], out: list[FieldViolation]) -> list[str]:
    raw = doc.get("scope")
    if raw is None:
        return list(DEFAULT_SCOPES)
    allowed = ", ".join(ZONE_TOKEN_SCOPES)
    if not isinstance(raw, list):
        got = type(raw).__name__
        out.append(FieldViolation("scope", f"expected a list of scopes ({allowed}), got {got}"))
        return []
    if not raw:
        out.append(FieldViolation("scope", f"must name at least one scope of {allowed}"))
        return []
    scopes: list[str] = []
    for i, item in enumerate(raw):
        if item not in ZONE_TOKEN_SCOPES:
            out.append(FieldViolation(f"scope[{i}]", f"unknown scope {item!r}; use one of {allowed}"))
        elif item not in scopes:
            scopes.append(item)
    return scopes


def valid_for_field(doc: dict[str, Any], out: list[FieldViolation]) -> float:
    """``validFor`` of ``doc`` in seconds (default :data:`DEFAULT_VALID_FOR`), or 0 with a violation added
    to ``out``; at least one second, since tokens carry whole seconds."""
    raw = doc.get("validFor")
    if raw is None:
        raw = DEFAULT_VALID_FOR
    if not isinstance(raw, str):
        out.append(FieldViolation("validFor", f"expected a duration string such as 720h, got {raw!r}"))
        return 0.0
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        out.append(FieldViolation("validFor", str(exc)))
        return 0.0
    if seconds < _MIN_VALID_FOR_S:
        out.append(FieldViolation("validFor", f"must be at least 1s, got {raw!r}"))
    return seconds


def unknown_fields(doc: dict[str, Any], allowed: tuple[str, ...]) -> list[FieldViolation]:
    """One violation per key of ``doc`` not in ``allowed``: a misspelt field is refused, never ignored."""
    return [
        FieldViolation(str(key), f"unknown field; allowed: {', '.join(allowed)}")
        for key in doc
        if key not in allowed
    ]


def refuse(title: str, violations: list[FieldViolation]) -> None:
    """Raise ApiError (400) naming every violation, when there is any."""
    if violations:
        raise ApiError(
            400, title, "; ".join(f"{v.field}: {v.reason}" for v in violations), invalid_parameters=violations
        )


def parse_zone_token_request(doc: dict[str, Any]) -> ZoneTokenRequest:
    """The checked request in ``doc``. Raises ApiError (400) naming every field at fault."""
    violations = unknown_fields(doc, _FIELDS)
    zone = _zone(doc, violations)
    scopes = _scopes(doc, violations)
    valid_for_s = valid_for_field(doc, violations)
    refuse("Invalid zone token request", violations)
    return ZoneTokenRequest(zone, scopes, valid_for_s)


class ZoneTokenEndpoint:
    """The handler of ``POST /tokens/zone`` over one issuer (None: this CP does not issue zone tokens)."""

    def __init__(self, issuer: ZoneTokenIssuer | None) -> None:
        self._issuer = issuer

    async def generate(self, request: web.Request) -> web.Response:
        if self._issuer is None:
            raise ApiError(404, "Not found", NOT_ISSUED_HERE)
        doc = decode_body(await request.read(), request.content_type)
        checked = parse_zone_token_request(doc)
        token = await self._issuer(checked.zone, checked.scopes, checked.valid_for_s)
        return web.Response(text=token, content_type="text/plain", charset="utf-8")
