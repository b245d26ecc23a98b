"""How the API answers: JSON bodies by orjson, the error shape, and the one mapping from exceptions to it.

Rules:
- Every body the API sends, success or error, goes through :func:`json_response`, so the content type and
  the encoding are the same everywhere. orjson writes datetimes as RFC 3339 and refuses anything that is
  not plain data, so a stray object never leaks into a response as its ``repr``.
- Every error leaves as ``{"title", "details", "invalid_parameters"?}`` (Kuma's error body), with the
  status that says who must act: 400 the request is wrong, 404 the thing is not there, 405 the method is
  not allowed here, 409 somebody else changed or created it, 503 try again later, 500 our fault.
- Handlers raise :class:`ApiError` for what they detect themselves and let ``kmesh.errors`` propagate;
  :func:`map_exception` is the only place those become HTTP statuses. Nothing unexpected is ever described
  to the client: a 500 carries a generic message and the exception goes to the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, final

import orjson
from aiohttp import web

from kmesh.errors import (
    AlreadyExists,
    Conflict,
    FieldViolation,
    InvalidReference,
    InvalidResource,
    NotFound,
    StoreUnavailable,
)

__all__ = ["CONTENT_TYPE", "ApiError", "dumps", "json_response", "map_exception"]

CONTENT_TYPE = "application/json"


def dumps(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON. Raises TypeError for values orjson cannot encode."""
    return orjson.dumps(data)


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A response whose body is ``data`` as JSON, with ``Content-Type: application/json``."""
    return web.Response(
        body=dumps(data), status=status, content_type=CONTENT_TYPE, charset="utf-8", headers=headers
    )


@final
class ApiError(Exception):
    """An error answer: ``status``, a short ``title``, the ``details`` a user acts on, and for a 400 the
    fields at fault. ``headers`` go on the response (``Allow`` for a 405)."""

    def __init__(
        self,
        status: int,
        title: str,
        details: str,
        *,
        invalid_parameters: Sequence[FieldViolation] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {details}")
        self.status = status
        self.title = title
        self.details = details
        self.invalid_parameters = list(invalid_parameters)
        self.headers = dict(headers or {})

    @classmethod
    def bad_parameter(cls, field: str, reason: str, *, title: str = "Bad Request") -> ApiError:
        """A 400 about one field of the body or one query parameter."""
        return cls(400, title, f"{field}: {reason}", invalid_parameters=[FieldViolation(field, reason)])

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        body: dict[str, Any] = {"title": self.title, "details": self.details}
        if self.status == 400 or self.invalid_parameters:
            body["invalid_parameters"] = [
                {"field": v.field, "reason": v.reason} for v in self.invalid_parameters
            ]
        return body


def map_exception(exc: BaseException, *, path: str = "") -> ApiError:
    """The answer for ``exc`` (raised while serving ``path``); anything not recognised is a generic 500."""
    match exc:
        case ApiError():
            return exc
        case InvalidResource():
            where = f"{exc.resource}: " if exc.resource else ""
            return ApiError(
                400,
                "Resource is not valid",
                where + "; ".join(f"{v.field}: {v.reason}" if v.field else v.reason for v in exc.violations),
                invalid_parameters=exc.violations,
            )
        case InvalidReference():
            # The API creates resources without owners, so the one reference it can miss is the mesh.
            return ApiError(
                400,
                "Resource is not valid",
                str(exc),
                invalid_parameters=[FieldViolation("mesh", str(exc))],
            )
        case NotFound():
            return ApiError(404, "Not found", str(exc) or "the resource does not exist")
        case AlreadyExists():
            return ApiError(409, "Already exists", str(exc) or "the resource already exists")
        case Conflict():
            return ApiError(
                409,
                "Conflict",
                (str(exc) or "the resource was changed concurrently") + "; read it again and retry",
            )
        case StoreUnavailable():
            return ApiError(503, "Store unavailable", "the resource store is unavailable; retry later")
        case web.HTTPMethodNotAllowed():
            allowed = ", ".join(sorted(exc.allowed_methods))
            return ApiError(
                405,
                "Method not allowed",
                f"{exc.method} is not allowed here; allowed: {allowed}",
                headers={"Allow": ",".join(sorted(exc.allowed_methods))},
            )
        case web.HTTPNotFound():
            return ApiError(404, "Not found", f"no such path: {path}" if path else "no such path")
        case web.HTTPException():
            # Raised by aiohttp itself: a too-large body (413), a malformed request (400).
            return ApiError(exc.status, exc.reason, exc.text or exc.reason)
        case _:
            return ApiError(500, "Internal server error", "an unexpected error occurred; see the CP log")
