"""Request middleware: the access log line, the request counters, and the edge where errors become JSON.

Rules:
- Every request is counted by status class and logged once, at debug level, as a structured line
  (``method``, ``path``, ``status``, ``duration_ms``); errors are counted and logged like any answer.
- Every exception a handler raises, kmesh's or aiohttp's, is turned into the JSON error body here and
  nowhere else (:func:`kmesh.api._errors.map_exception`). A 500 is logged with its traceback; the client
  gets only a generic message.
"""

from __future__ import annotations

import logging
import time
from typing import Final, final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kmesh.api._responses import json_response, map_exception

__all__ = ["RequestStats", "access_middleware", "error_middleware"]

log = logging.getLogger("kmesh.api")

_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")


@final
class RequestStats:
    """Requests served, by status class; read through :meth:`snapshot` (the Prometheus work exports it)."""

    def __init__(self) -> None:
        self._by_class = dict.fromkeys(_CLASSES, 0)

    def record(self, status: int) -> None:
        key = f"{status // 100}xx"
        if key in self._by_class:
            self._by_class[key] += 1

    def snapshot(self) -> dict[str, int]:
        """``{"total": n, "1xx": n, ..., "5xx": n}``, a copy."""
        return {"total": sum(self._by_class.values()), **self._by_class}


def access_middleware(stats: RequestStats) -> Middleware:
    """Outermost middleware: counts and logs every answer, including error answers."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status: int | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            # A handler cancelled at shutdown sent no answer: it is logged but has no status to count.
            if status is not None:
                stats.record(status)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "api request",
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": status if status is not None else "cancelled",
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    },
                )

    return access


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns whatever a handler raises into the API's JSON error body and status."""
    try:
        return await handler(request)
    except Exception as exc:  # the one edge where every exception is answered
        error = map_exception(exc, path=request.path)
        if error.status >= 500 and error.status != 503:
            log.exception("api request failed", extra={"method": request.method, "path": request.path})
        elif error.status == 503:
            log.warning("api request failed: %s", exc, extra={"method": request.method, "path": request.path})
        return json_response(error.body(), status=error.status, headers=error.headers)
