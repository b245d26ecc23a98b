"""A small synchronous client of the control plane's REST API, on the standard library's urllib.

A CLI makes a handful of requests and exits, so blocking calls are the simplest correct thing here.

Rules:
- This module is kmeshctl's one I/O edge to the network: every foreign exception (``URLError``,
  ``OSError``, ``ssl.SSLError``, ``http.client.HTTPException``) becomes :class:`CpUnreachable` naming the
  address, and every non-2xx answer becomes :class:`ApiError` carrying the server's ``title``, ``details``
  and ``invalid_parameters`` (Kuma's error body), so callers never see a traceback's worth of detail.
- ``skip_verify`` turns certificate checks off for https addresses only when the user asked for it.
- Loopback addresses never go through an ``http_proxy`` from the environment (Go's ``ProxyFromEnvironment``
  does the same, so kmeshctl behaves as kumactl does on a machine with a proxy set).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from kmesh.errors import FieldViolation, KmeshError

__all__ = ["ApiClient", "ApiError", "BadResponse", "CpUnreachable", "Response"]

DEFAULT_TIMEOUT_S: Final = 30.0


class CpUnreachable(KmeshError):
    """The control plane did not answer: refused, timed out, TLS failed, or it is not speaking HTTP."""


class BadResponse(KmeshError):
    """The control plane answered 2xx with a body that is not the JSON the API promises."""


class ApiError(KmeshError):
    """The control plane refused a request; ``str()`` is what kmeshctl prints after ``Error:``."""

    def __init__(
        self,
        status: int,
        title: str,
        details: str,
        invalid_parameters: list[FieldViolation] | None = None,
        *,
        context: str | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.details = details
        self.invalid_parameters = invalid_parameters or []
        self.context = context
        super().__init__(self.describe())

    def describe(self) -> str:
        head = f"{self.title}: {self.details}" if self.details else self.title
        if self.context:
            head = f"{self.context}: {head}"
        lines = [head, *(f"  * {p.field}: {p.reason}" for p in self.invalid_parameters)]
        return "\n".join(lines)

    def with_context(self, context: str) -> ApiError:
        """The same refusal, prefixed with what was being done (``applying Mesh "default"``)."""
        return ApiError(self.status, self.title, self.details, self.invalid_parameters, context=context)

    @classmethod
    def from_body(cls, status: int, reason: str, raw: bytes) -> ApiError:
        """Read Kuma's error body; anything else (a proxy's HTML page) is summarised by its status."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("title"), str):
            params = [
                FieldViolation(str(p.get("field", "")), str(p.get("reason", "")))
                for p in body.get("invalid_parameters") or []
                if isinstance(p, dict)
            ]
            return cls(status, body["title"], str(body.get("details") or ""), params)
        text = raw.decode("utf-8", "replace").strip()
        return cls(status, f"HTTP {status} {reason}".strip(), text[:200])


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: Any


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiClient:
    """Requests to one control plane at ``address`` (``http(s)://host:port``, optionally with a prefix)."""

    def __init__(
        self, address: str, *, skip_verify: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.address = address.rstrip("/")
        self.timeout_s = timeout_s
        parts = urlsplit(self.address)
        handlers: list[urllib.request.BaseHandler] = []
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        if _is_loopback(parts.hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        """The decoded JSON at ``path``. Raises ApiError, CpUnreachable, BadResponse."""
        return self.request("GET", path, query=query).body

    def put(self, path: str, body: Any) -> Response:
        """PUT ``body`` as JSON; 201 means created, 200 updated. Raises ApiError, CpUnreachable."""
        return self.request("PUT", path, body=body)

    def delete(self, path: str, query: dict[str, str] | None = None) -> Response:
        """DELETE ``path``. Raises ApiError (404 when it does not exist), CpUnreachable."""
        return self.request("DELETE", path, query=query)

    def post_text(self, path: str, body: Any) -> str:
        """POST ``body`` as JSON to an endpoint that answers ``text/plain`` (a token); returns that text.

        Raises ApiError, CpUnreachable, BadResponse (a 2xx that is not text).
        """
        _, content_type, raw = self._send("POST", path, query=None, body=body, accept="text/plain")
        if content_type != "text/plain":
            raise BadResponse(
                f"the control plane at {self.address} answered POST {path} with {content_type or 'no'} "
                "content instead of text; is this the address of a kmesh control plane API?"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadResponse(
                f"the control plane at {self.address} answered POST {path} with non-UTF-8 text"
            ) from None

    def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None
    ) -> Response:
        status, _, raw = self._send(method, path, query=query, body=body, accept="application/json")
        return Response(status, self._decode(method, path, raw))

    def _send(
        self, method: str, path: str, *, query: dict[str, str] | None, body: Any, accept: str
    ) -> tuple[int, str, bytes]:
        """One request: the status, the media type (without parameters) and the body of a 2xx answer."""
        url = self.address + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                status, raw = resp.status, resp.read()
                content_type = resp.headers.get_content_type() if resp.headers.get("Content-Type") else ""
        except urllib.error.HTTPError as exc:
            raise ApiError.from_body(exc.code, exc.reason, exc.read()) from None
        except (OSError, http.client.HTTPException) as exc:
            raise CpUnreachable(self._unreachable(exc)) from None
        return status, content_type, raw

    def _decode(self, method: str, path: str, raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise BadResponse(
                f"the control plane at {self.address} answered {method} {path} with something that is not "
                "JSON; is this the address of a kmesh control plane API?"
            ) from None

    def _unreachable(self, exc: BaseException) -> str:
        reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            text = f"no answer within {self.timeout_s:g}s"
        elif isinstance(reason, ssl.SSLCertVerificationError):
            text = f"{reason.verify_message or reason}; use --skip-verify to accept its certificate"
        elif isinstance(reason, OSError) and reason.strerror:
            text = reason.strerror
        elif isinstance(reason, http.client.HTTPException):
            text = f"it does not speak HTTP ({type(reason).__name__})"
        else:
            text = str(reason) or type(reason).__name__
        return f"could not reach the control plane at {self.address}: {text}"
