"""What ``kmeshctl get`` prints: a table with per-type columns (as kumactl's), YAML or JSON.

Rules:
- The input is always the server's JSON, decoded; nothing is re-derived from the model, so what is printed
  is what is stored. ``yaml`` and ``json`` keep the server's key order (``type``, ``mesh``, ``name`` first);
  a listing prints the list object (``total``, ``items``, ``next``), as kumactl does.
- Table columns: one presentation per descriptor name in ``_PRESENTATIONS``; a type without one gets the
  policy columns if its descriptor is a ``policy``, else the generic ``[MESH] NAME AGE``. Adding a type
  never requires this module, and giving a type richer columns is one entry here.
- Cells read documents defensively: a field that is missing or has an unexpected type shows as empty (or
  ``off``), never as an error — ``get`` must still list what it can.
- A presentation may ``join`` other types (a Zone's status comes from its ZoneInsight); the caller fetches
  those and passes them in by ``(mesh, name, zone)`` (:func:`join_key`): on a global, ``web-1`` of zone
  east meets the insight of zone east's ``web-1``, not west's. Ages are computed against the ``now``
  passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from kmesh.cli._table import age, format_table
from kmesh.cli._types import spec_of
from kmesh.model import LABEL_ZONE, ResourceDescriptor, descriptor

__all__ = [
    "OUTPUT_FORMATS",
    "ZONE_PRESENTATION",
    "Column",
    "Doc",
    "JoinKey",
    "Joined",
    "Presentation",
    "RenderContext",
    "join_key",
    "joined_doc",
    "presentation_for",
    "render",
    "render_json",
    "render_table",
    "render_yaml",
]

OUTPUT_FORMATS = ("table", "yaml", "json")

Doc = Mapping[str, Any]
# (mesh, name, zone of origin): on a global, two zones may each have sent a ``web-1`` and its insight.
JoinKey = tuple[str, str, str]
# descriptor name of a joined type -> JoinKey -> its document
Joined = Mapping[str, Mapping[JoinKey, Doc]]


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a cell may need besides its own document."""

    desc: ResourceDescriptor
    now: datetime
    joined: Joined = field(default_factory=dict)

    def spec(self, doc: Doc) -> Doc:
        return spec_of(self.desc, doc)


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    cell: Callable[[Doc, RenderContext], str]


@dataclass(frozen=True, slots=True)
class Presentation:
    """``columns`` picks the columns for the documents about to be shown (some appear only when needed)."""

    columns: Callable[[ResourceDescriptor, Sequence[Doc]], list[Column]]
    joins: tuple[str, ...] = ()


def _dig(obj: object, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _on_off(value: object) -> str:
    return "on" if value is True else "off"


def _host_port(address: object, port: object) -> str:
    if not address:
        return ""
    return f"{address}:{port}" if port else str(address)


def _labels(doc: Doc) -> Mapping[str, Any]:
    labels = doc.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def join_key(doc: Doc) -> JoinKey:
    """How a document meets the documents joined to it: its mesh, name and ``kuma.io/zone`` label."""
    return (_text(doc.get("mesh")), _text(doc.get("name")), _text(_labels(doc).get(LABEL_ZONE)))


def joined_doc(ctx: RenderContext, type_name: str, doc: Doc) -> Doc | None:
    """The ``type_name`` document joined to ``doc`` (its insight), or None."""
    return ctx.joined.get(type_name, {}).get(join_key(doc))


MESH = Column("MESH", lambda doc, ctx: _text(doc.get("mesh")))
NAME = Column("NAME", lambda doc, ctx: _text(doc.get("name")))
# Age is time since creation: an update does not make a resource younger (kubectl's reading of AGE).
AGE = Column("AGE", lambda doc, ctx: age(doc.get("creationTime"), ctx.now))


def _fixed(*columns: Column) -> Callable[[ResourceDescriptor, Sequence[Doc]], list[Column]]:
    return lambda desc, docs: list(columns)


def _generic(desc: ResourceDescriptor, docs: Sequence[Doc]) -> list[Column]:
    return [MESH, NAME, AGE] if desc.mesh_scoped else [NAME, AGE]


# --- Mesh ----------------------------------------------------------------------------------------------


def _mtls(doc: Doc, ctx: RenderContext) -> str:
    mtls = ctx.spec(doc).get("mtls")
    enabled = _dig(mtls, "enabledBackend")
    if not enabled:
        return "off"
    backends = _dig(mtls, "backends")
    for backend in backends if isinstance(backends, list) else []:
        if _dig(backend, "name") == enabled:
            return f"{_text(_dig(backend, 'type'))}/{enabled}"
    return str(enabled)


_MESH = _fixed(
    NAME,
    Column("mTLS", _mtls),
    Column("LOCALITY", lambda d, c: _on_off(_dig(c.spec(d), "routing", "localityAwareLoadBalancing"))),
    Column("ZONEEGRESS", lambda d, c: _on_off(_dig(c.spec(d), "routing", "zoneEgress"))),
    AGE,
)


# --- Dataplane -----------------------------------------------------------------------------------------


def _dataplane_tags(doc: Doc, ctx: RenderContext) -> str:
    """Every tag of every inbound (and of a gateway), ``k=v`` sorted; a key with several values ``k=a,b``."""
    networking = ctx.spec(doc).get("networking")
    tag_sets: list[object] = []
    inbound = _dig(networking, "inbound")
    if isinstance(inbound, list):
        tag_sets.extend(_dig(item, "tags") for item in inbound)
    tag_sets.append(_dig(networking, "gateway", "tags"))
    values: dict[str, set[str]] = {}
    for tags in tag_sets:
        if isinstance(tags, Mapping):
            for key, value in tags.items():
                values.setdefault(str(key), set()).add(str(value))
    return " ".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(values.items()))


_ZONE_LABEL = Column("ZONE", lambda doc, ctx: _text(_labels(doc).get(LABEL_ZONE)))


def _dataplane(desc: ResourceDescriptor, docs: Sequence[Doc]) -> list[Column]:
    columns = [MESH, NAME]
    # The ZONE column only says something on a global CP, where dataplanes of many zones meet.
    if any(LABEL_ZONE in _labels(doc) for doc in docs):
        columns.append(_ZONE_LABEL)
    columns += [
        Column("TAGS", _dataplane_tags),
        Column("ADDRESS", lambda d, c: _text(_dig(c.spec(d), "networking", "address"))),
        AGE,
    ]
    return columns


# --- Zone ----------------------------------------------------------------------------------------------
# The columns of kumactl's ``inspect zones`` (kumahq/kuma ``app/kumactl/cmd/inspect/inspect_zones.go``),
# from the Zone and its ZoneInsight, whose subscriptions are the zone CP's KDS connections, oldest first:
# - STATUS: Online when the zone is enabled and its newest subscription has no ``disconnectTime``. (Kuma's
#   ``IsOnline`` takes any live subscription; kmesh finalizes older ones on reconnect, so the newest says
#   it, and an ungracefully dropped old one cannot keep a zone Online.)
# - LAST CONNECTED AGO / LAST UPDATED AGO: the newest subscription's ``connectTime`` and
#   ``status.lastUpdateTime``, as kumactl's ``GetLastSubscription``; ``never`` when no update was sent yet
#   (kumactl's word for a missing time).
# - TOTAL UPDATES / TOTAL ERRORS: ``status.total.responsesSent`` and ``status.total.responsesRejected``
#   summed over every subscription, as kumactl's ``zoneInsight.Sum``: resources sent to the zone over
#   the zone's whole history, and those it rejected (NACKed). Acknowledged counts are not shown: sent
#   minus rejected minus in flight, they add little to a one-line summary.
# - ZONE-CP VERSION: the newest subscription's ``version.kumaCp.version``.
# A zone without an insight (its CP never connected) shows Offline and ``-`` in every other column.

_NONE = "-"


def _zone_subscriptions(doc: Doc, ctx: RenderContext) -> list[Doc] | None:
    """The subscriptions of the zone's insight, oldest first; None when the zone has no insight."""
    insight = joined_doc(ctx, "ZoneInsight", doc)
    if insight is None:
        return None
    subscriptions = spec_of(descriptor("ZoneInsight"), insight).get("subscriptions")
    if not isinstance(subscriptions, list):
        return []
    return [s for s in subscriptions if isinstance(s, Mapping)]


def _newest(doc: Doc, ctx: RenderContext) -> Doc | None:
    subscriptions = _zone_subscriptions(doc, ctx)
    return subscriptions[-1] if subscriptions else None


def _zone_status(doc: Doc, ctx: RenderContext) -> str:
    if ctx.spec(doc).get("enabled", True) is False:
        return "Offline"
    last = _newest(doc, ctx)
    connected = last is not None and bool(last.get("connectTime")) and not last.get("disconnectTime")
    return "Online" if connected else "Offline"


def _ago(doc: Doc, ctx: RenderContext, *keys: str) -> str:
    last = _newest(doc, ctx)
    if last is None:
        return _NONE
    value = _dig(last, *keys)
    return age(value, ctx.now) if value else "never"


def _count(value: object) -> int:
    # Kuma's REST API writes these uint64 counters as JSON strings ("22"); kmesh writes numbers.
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return 0


def _total(doc: Doc, ctx: RenderContext, counter: str) -> str:
    subscriptions = _zone_subscriptions(doc, ctx)
    if subscriptions is None:
        return _NONE
    return str(sum(_count(_dig(s, "status", "total", counter)) for s in subscriptions))


def _zone_cp_version(doc: Doc, ctx: RenderContext) -> str:
    version = _dig(_newest(doc, ctx), "version", "kumaCp", "version")
    return version if isinstance(version, str) and version else _NONE


ZONE_COLUMNS = (
    NAME,
    Column("STATUS", _zone_status),
    Column("LAST CONNECTED AGO", lambda d, c: _ago(d, c, "connectTime")),
    Column("LAST UPDATED AGO", lambda d, c: _ago(d, c, "status", "lastUpdateTime")),
    Column("TOTAL UPDATES", lambda d, c: _total(d, c, "responsesSent")),
    Column("TOTAL ERRORS", lambda d, c: _total(d, c, "responsesRejected")),
    Column("ZONE-CP VERSION", _zone_cp_version),
)
ZONE_PRESENTATION = Presentation(_fixed(*ZONE_COLUMNS), joins=("ZoneInsight",))


# --- Zone ingress and egress ---------------------------------------------------------------------------


def _zone_of(doc: Doc, ctx: RenderContext) -> str:
    return _text(ctx.spec(doc).get("zone") or _labels(doc).get(LABEL_ZONE))


def _address(doc: Doc, ctx: RenderContext) -> str:
    networking = ctx.spec(doc).get("networking")
    return _host_port(_dig(networking, "address"), _dig(networking, "port"))


def _advertised(doc: Doc, ctx: RenderContext) -> str:
    networking = ctx.spec(doc).get("networking")
    return _host_port(_dig(networking, "advertisedAddress"), _dig(networking, "advertisedPort"))


_ZONE_INGRESS = _fixed(
    NAME, Column("ZONE", _zone_of), Column("ADDRESS", _address), Column("ADVERTISED", _advertised), AGE
)
_ZONE_EGRESS = _fixed(NAME, Column("ZONE", _zone_of), Column("ADDRESS", _address), AGE)


# --- targetRef policies --------------------------------------------------------------------------------


def _target_ref(doc: Doc, ctx: RenderContext, key: str) -> str:
    ref = ctx.spec(doc).get("targetRef")
    if not isinstance(ref, Mapping):
        # A policy without a top-level targetRef applies to the whole mesh (Kuma's default).
        return "Mesh" if key == "kind" else ""
    return _text(ref.get(key))


_POLICY = _fixed(
    MESH,
    NAME,
    Column("TARGETREF KIND", lambda d, c: _target_ref(d, c, "kind")),
    Column("TARGETREF NAME", lambda d, c: _target_ref(d, c, "name")),
    AGE,
)


_PRESENTATIONS: dict[str, Presentation] = {
    "Mesh": Presentation(_MESH),
    "Dataplane": Presentation(_dataplane),
    "Zone": ZONE_PRESENTATION,
    "ZoneIngress": Presentation(_ZONE_INGRESS),
    "ZoneEgress": Presentation(_ZONE_EGRESS),
}


def presentation_for(desc: ResourceDescriptor) -> Presentation:
    """The columns for ``desc``: its own entry, else the policy columns, else the generic ones."""
    found = _PRESENTATIONS.get(desc.name)
    if found is not None:
        return found
    return Presentation(_POLICY if desc.policy else _generic)


# --- rendering -----------------------------------------------------------------------------------------


def render_table(
    desc: ResourceDescriptor,
    docs: Sequence[Doc],
    *,
    now: datetime,
    joined: Joined | None = None,
    presentation: Presentation | None = None,
) -> str:
    """``docs`` of type ``desc`` as a table with a header line (only the header when there are none).

    The columns are ``presentation``'s, else those ``get`` shows for ``desc``.
    """
    ctx = RenderContext(desc=desc, now=now, joined=joined or {})
    columns = (presentation or presentation_for(desc)).columns(desc, docs)
    rows = [[column.cell(doc, ctx) for column in columns] for doc in docs]
    return format_table([column.header for column in columns], rows)


def render_yaml(obj: Any) -> str:
    """``obj`` as a block-style YAML document."""
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


def render_json(obj: Any) -> str:
    """``obj`` as indented JSON ending with a newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def render(
    fmt: str,
    desc: ResourceDescriptor,
    body: Any,
    docs: Sequence[Doc],
    *,
    now: datetime,
    joined: Joined | None = None,
) -> str:
    """``body`` (a document or a list object) in format ``fmt``; ``docs`` are the rows a table shows."""
    if fmt == "yaml":
        return render_yaml(body)
    if fmt == "json":
        return render_json(body)
    return render_table(desc, docs, now=now, joined=joined)
