"""MeshTimeout: connection, idle and HTTP request timeouts, outbound (``to[]``) and inbound (``from[]`` or
``rules[]``).

Rules (Kuma's ``meshtimeout`` validator): ``default`` sets at least one timeout; ``connectionTimeout`` is
greater than zero (a zero connect timeout would fail every connection); the others may be ``0``, which
disables them. ``from[]`` takes only ``kind: Mesh``.
"""

from __future__ import annotations

from typing import ClassVar, final

import msgspec

from kmesh.model._fields import Duration, PositiveDuration, Problems
from kmesh.model._resource import Spec
from kmesh.model.types.targetref import From, PolicySpec, Rule, To, register_policy

__all__ = ["HttpTimeouts", "MeshTimeoutSpec", "TimeoutConf"]


@final
class HttpTimeouts(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Kuma's defaults: request 15s, stream idle 30m; the rest off."""

    request_timeout: Duration | None = None
    stream_idle_timeout: Duration | None = None
    max_stream_duration: Duration | None = None
    max_connection_duration: Duration | None = None
    request_headers_timeout: Duration | None = None

    def problems(self) -> Problems:
        if self == HttpTimeouts():
            yield "", "must set at least one timeout"


@final
class TimeoutConf(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Kuma's defaults: connect 5s, idle 1h."""

    connection_timeout: PositiveDuration | None = None
    idle_timeout: Duration | None = None
    http: HttpTimeouts | None = None

    def problems(self) -> Problems:
        if self == TimeoutConf():
            yield "", "must set at least one timeout"


@final
class MeshTimeoutSpec(PolicySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top_kinds: ClassVar[tuple[str, ...]] = (
        "Mesh",
        "MeshSubset",
        "MeshService",
        "MeshServiceSubset",
        "MeshGateway",
        "MeshHTTPRoute",
        "Dataplane",
    )
    from_kinds: ClassVar[tuple[str, ...]] = ("Mesh",)
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService", "MeshExternalService", "MeshHTTPRoute")
    sections: ClassVar[tuple[str, ...]] = ("from", "to", "rules")

    from_: list[From[TimeoutConf]] = msgspec.field(default_factory=list, name="from")
    to: list[To[TimeoutConf]] = msgspec.field(default_factory=list)
    rules: list[Rule[TimeoutConf]] = msgspec.field(default_factory=list)


register_policy("MeshTimeout", MeshTimeoutSpec, path="meshtimeouts", short_names=("mt",))
