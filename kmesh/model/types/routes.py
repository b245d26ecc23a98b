"""MeshTCPRoute and MeshHTTPRoute: where a client's traffic to a destination goes (traffic splits, header
and path rewrites, redirects, mirrors).

Rules (Kuma's route validators):
- A MeshTCPRoute ``to[]`` entry has exactly one rule, whose ``default.backendRefs`` is non-empty.
- A MeshHTTPRoute rule has at least one match; ``Exact`` and ``PathPrefix`` paths are absolute.
- A filter carries exactly the settings of its ``type``; path rewrites carry the value of their type.
"""

from __future__ import annotations

from typing import ClassVar, Literal, final

import msgspec

from kmesh.model._fields import Percentage, Port, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.common import HeaderMatch, HeaderModifier
from kmesh.model.types.targetref import BackendRef, PolicySpec, TargetRef, register_policy

__all__ = [
    "HttpFilter",
    "HttpMatch",
    "HttpRouteConf",
    "HttpRouteRule",
    "HttpRouteTo",
    "MeshHTTPRouteSpec",
    "MeshTCPRouteSpec",
    "PathMatch",
    "PathRewrite",
    "QueryParamsMatch",
    "RequestMirror",
    "RequestRedirect",
    "TcpRouteConf",
    "TcpRouteRule",
    "TcpRouteTo",
    "UrlRewrite",
]

_ROUTE_TOP_KINDS = ("Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "MeshGateway", "Dataplane")
_ROUTE_TO_KINDS = ("Mesh", "MeshService", "MeshExternalService")


@final
class TcpRouteConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    backend_refs: list[BackendRef] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        if not self.backend_refs:
            yield "backendRefs", "must list at least one backend"


@final
class TcpRouteRule(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default: TcpRouteConf


@final
class TcpRouteTo(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    target_ref: TargetRef
    rules: list[TcpRouteRule]

    def problems(self) -> Problems:
        # Without matches more than one TCP rule would be meaningless (Kuma: maxItems=1).
        if len(self.rules) != 1:
            yield "rules", f"must have exactly one rule, got {len(self.rules)}"


@final
class MeshTCPRouteSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = _ROUTE_TOP_KINDS
    to_kinds: ClassVar[tuple[str, ...]] = _ROUTE_TO_KINDS

    to: list[TcpRouteTo] = msgspec.field(default_factory=list)


@final
class PathMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Exact", "PathPrefix", "RegularExpression"]
    value: str

    def problems(self) -> Problems:
        if self.type != "RegularExpression" and not self.value.startswith("/"):
            yield "value", f"must be an absolute path starting with '/', got {self.value!r}"


@final
class QueryParamsMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Exact", "RegularExpression"]
    name: str
    value: str

    def problems(self) -> Problems:
        if not self.name:
            yield "name", "must not be empty"


HttpMethod = Literal["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]


@final
class HttpMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    path: PathMatch | None = None
    method: HttpMethod | None = None
    query_params: list[QueryParamsMatch] = msgspec.field(default_factory=list)
    headers: list[HeaderMatch] = msgspec.field(default_factory=list)


@final
class PathRewrite(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None

    def problems(self) -> Problems:
        if self.type == "ReplaceFullPath" and self.replace_full_path is None:
            yield "replaceFullPath", "required with type ReplaceFullPath"
        if self.type == "ReplacePrefixMatch" and self.replace_prefix_match is None:
            yield "replacePrefixMatch", "required with type ReplacePrefixMatch"


@final
class RequestRedirect(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    path: PathRewrite | None = None
    port: Port | None = None
    status_code: Literal[301, 302, 303, 307, 308] = 302


@final
class UrlRewrite(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hostname: str | None = None
    path: PathRewrite | None = None
    host_to_backend_hostname: bool = False


@final
class RequestMirror(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    percentage: Percentage | None = None
    backend_ref: BackendRef


FilterType = Literal[
    "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror"
]


@final
class HttpFilter(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: FilterType
    request_header_modifier: HeaderModifier | None = None
    response_header_modifier: HeaderModifier | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: UrlRewrite | None = None
    request_mirror: RequestMirror | None = None

    def problems(self) -> Problems:
        settings = {
            "RequestHeaderModifier": ("requestHeaderModifier", self.request_header_modifier),
            "ResponseHeaderModifier": ("responseHeaderModifier", self.response_header_modifier),
            "RequestRedirect": ("requestRedirect", self.request_redirect),
            "URLRewrite": ("urlRewrite", self.url_rewrite),
            "RequestMirror": ("requestMirror", self.request_mirror),
        }
        for kind, (wire, value) in settings.items():
            if kind == self.type and value is None:
                yield wire, f"required with type {self.type}"
            elif kind != self.type and value is not None:
                yield wire, f"must not be set with type {self.type}"


@final
class HttpRouteConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    filters: list[HttpFilter] = msgspec.field(default_factory=list)
    backend_refs: list[BackendRef] = msgspec.field(default_factory=list)


@final
class HttpRouteRule(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    matches: list[HttpMatch]
    default: HttpRouteConf

    def problems(self) -> Problems:
        if not self.matches:
            yield "matches", "must have at least one match"


@final
class HttpRouteTo(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    target_ref: TargetRef
    # Only for routes attached to a gateway: limits the rules to requests for these host names.
    hostnames: list[str] = msgspec.field(default_factory=list)
    rules: list[HttpRouteRule]


@final
class MeshHTTPRouteSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = _ROUTE_TOP_KINDS
    to_kinds: ClassVar[tuple[str, ...]] = _ROUTE_TO_KINDS

    to: list[HttpRouteTo] = msgspec.field(default_factory=list)


register_policy("MeshTCPRoute", MeshTCPRouteSpec, path="meshtcproutes", short_names=("mtcpr",))
register_policy("MeshHTTPRoute", MeshHTTPRouteSpec, path="meshhttproutes", short_names=("mhttpr",))
