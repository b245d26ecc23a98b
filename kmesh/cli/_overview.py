"""The tables of ``kmeshctl inspect dataplanes`` and ``inspect zone-ingresses``, and ``--config``'s output.

Rules:
- Cells read the server's JSON defensively, as ``_render`` does: a missing or odd field shows as ``-``.
- Dataplanes: the columns of kumactl's ``inspect dataplanes`` (kumahq/kuma
  ``app/kumactl/cmd/inspect/inspect_dataplanes.go``), from the Dataplane and its DataplaneInsight, whose
  subscriptions are the proxy's connections to its zone CP, oldest first.
  - STATUS: Online when the newest subscription has no ``disconnectTime``; an online proxy some of whose
    inbounds are not ready is ``Partially degraded``, and one with none ready ``Offline`` (Kuma's
    ``GetStatus``: traffic reaches none of its services). No insight: Offline.
  - LAST CONNECTED AGO / LAST UPDATED AGO, TOTAL UPDATES / TOTAL ERRORS: as ``inspect zones`` (newest
    subscription's times, counters summed over every subscription).
  - CERT REGENERATED AGO / CERT EXPIRATION / CERT REGENERATIONS: the insight's ``mTLS``; the expiration is
    an absolute UTC time (``2006-01-02 15:04:05``, kumactl's), since "in 20h" would change between runs.
  - KMESH-DP VERSION: the newest subscription's ``version.kumaDp.version``.
  - ZONE (after NAME) only when a dataplane carries ``kuma.io/zone``, i.e. on a global, as ``get``.
- Zone ingresses: ``NAME ZONE ADDRESS ADVERTISED AVAILABLE SERVICES STATUS``. Other zones dial only the
  advertised address, and ignore an ingress without one, so ADVERTISED says so in the table rather than
  leaving the cell blank. AVAILABLE SERVICES counts ``availableServices`` entries and their instances.
- ``--config`` prints ``config`` as YAML without its ``notes``, then the notes as a ``# notes:`` comment
  block, so the output stays one valid YAML document whose reader still sees why things are missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from kmesh.cli._render import (
    MESH,
    NAME,
    Column,
    Doc,
    Presentation,
    RenderContext,
    _count,
    _dig,
    _labels,
    _text,
    joined_doc,
    render_yaml,
)
from kmesh.cli._render import _address as _ingress_address
from kmesh.cli._render import _dataplane_tags as _tags
from kmesh.cli._render import _zone_of as _ingress_zone
from kmesh.cli._table import age, parse_time
from kmesh.cli._types import spec_of
from kmesh.model import LABEL_ZONE, ResourceDescriptor, descriptor

__all__ = [
    "DATAPLANE_COLUMNS",
    "DATAPLANE_PRESENTATION",
    "NOT_ADVERTISED",
    "ZONE_INGRESS_COLUMNS",
    "ZONE_INGRESS_PRESENTATION",
    "render_proxy_config",
]

_NONE = "-"
NOT_ADVERTISED = "- (not reachable from other zones)"


def _subscriptions(doc: Doc, ctx: RenderContext, insight_type: str) -> list[Doc] | None:
    """The subscriptions of ``doc``'s insight, oldest first; None when it has no insight."""
    insight = joined_doc(ctx, insight_type, doc)
    if insight is None:
        return None
    subscriptions = spec_of(descriptor(insight_type), insight).get("subscriptions")
    if not isinstance(subscriptions, list):
        return []
    return [s for s in subscriptions if isinstance(s, Mapping)]


def _online(subscriptions: Sequence[Doc] | None) -> bool:
    if not subscriptions:
        return False
    newest = subscriptions[-1]
    return bool(newest.get("connectTime")) and not newest.get("disconnectTime")


def _newest_ago(subscriptions: Sequence[Doc] | None, ctx: RenderContext, *keys: str) -> str:
    if subscriptions is None:
        return _NONE
    if not subscriptions:
        return "never"
    value = _dig(subscriptions[-1], *keys)
    return age(value, ctx.now) if value else "never"


def _summed(subscriptions: Sequence[Doc] | None, counter: str) -> str:
    if subscriptions is None:
        return _NONE
    return str(sum(_count(_dig(s, "status", "total", counter)) for s in subscriptions))


# --- Dataplane -----------------------------------------------------------------------------------------

_DP_INSIGHT = "DataplaneInsight"


def _inbound_ready(inbound: object) -> bool | None:
    """Whether an inbound takes traffic (``kmesh.proxyconfig.inbound_healthy``); None when ``Ignored``."""
    state = _dig(inbound, "state")
    if isinstance(state, str) and state:
        return None if state == "Ignored" else state == "Ready"
    health = _dig(inbound, "health")
    return not isinstance(health, Mapping) or health.get("ready") is True


def _dataplane_status(doc: Doc, ctx: RenderContext) -> str:
    if not _online(_subscriptions(doc, ctx, _DP_INSIGHT)):
        return "Offline"
    inbound = _dig(ctx.spec(doc), "networking", "inbound")
    ready = (
        [r for r in (_inbound_ready(i) for i in inbound) if r is not None]
        if isinstance(inbound, list)
        else []
    )
    if ready and not any(ready):
        return "Offline"
    return "Partially degraded" if ready and not all(ready) else "Online"


def _mtls(doc: Doc, ctx: RenderContext) -> Mapping[str, Any] | None:
    insight = joined_doc(ctx, _DP_INSIGHT, doc)
    if insight is None:
        return None
    found = spec_of(descriptor(_DP_INSIGHT), insight).get("mTLS")
    return found if isinstance(found, Mapping) else {}


def _cert_regenerated(doc: Doc, ctx: RenderContext) -> str:
    mtls = _mtls(doc, ctx)
    if mtls is None:
        return _NONE
    value = mtls.get("lastCertificateRegeneration")
    return age(value, ctx.now) if value else "never"


def _cert_expiration(doc: Doc, ctx: RenderContext) -> str:
    mtls = _mtls(doc, ctx)
    when = parse_time(mtls.get("certificateExpirationTime")) if mtls is not None else None
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when is not None else _NONE


def _cert_regenerations(doc: Doc, ctx: RenderContext) -> str:
    mtls = _mtls(doc, ctx)
    return _NONE if mtls is None else str(_count(mtls.get("certificateRegenerations")))


def _dp_version(doc: Doc, ctx: RenderContext) -> str:
    subscriptions = _subscriptions(doc, ctx, _DP_INSIGHT)
    version = _dig(subscriptions[-1], "version", "kumaDp", "version") if subscriptions else None
    return version if isinstance(version, str) and version else _NONE


_DP_ZONE = Column("ZONE", lambda doc, ctx: _text(_labels(doc).get(LABEL_ZONE)))
DATAPLANE_COLUMNS = (
    Column("TAGS", _tags),
    Column("STATUS", _dataplane_status),
    Column(
        "LAST CONNECTED AGO", lambda d, c: _newest_ago(_subscriptions(d, c, _DP_INSIGHT), c, "connectTime")
    ),
    Column(
        "LAST UPDATED AGO",
        lambda d, c: _newest_ago(_subscriptions(d, c, _DP_INSIGHT), c, "status", "lastUpdateTime"),
    ),
    Column("TOTAL UPDATES", lambda d, c: _summed(_subscriptions(d, c, _DP_INSIGHT), "responsesSent")),
    Column("TOTAL ERRORS", lambda d, c: _summed(_subscriptions(d, c, _DP_INSIGHT), "responsesRejected")),
    Column("CERT REGENERATED AGO", _cert_regenerated),
    Column("CERT EXPIRATION", _cert_expiration),
    Column("CERT REGENERATIONS", _cert_regenerations),
    Column("KMESH-DP VERSION", _dp_version),
)


def _dataplane_columns(desc: ResourceDescriptor, docs: Sequence[Doc]) -> list[Column]:
    zoned = any(LABEL_ZONE in _labels(doc) for doc in docs)
    return [MESH, NAME, *([_DP_ZONE] if zoned else []), *DATAPLANE_COLUMNS]


DATAPLANE_PRESENTATION = Presentation(_dataplane_columns, joins=(_DP_INSIGHT,))


# --- ZoneIngress ---------------------------------------------------------------------------------------

_ZI_INSIGHT = "ZoneIngressInsight"


def _advertised(doc: Doc, ctx: RenderContext) -> str:
    networking = ctx.spec(doc).get("networking")
    address, port = _dig(networking, "advertisedAddress"), _dig(networking, "advertisedPort")
    if not address or not port:
        return NOT_ADVERTISED
    return f"{address}:{port}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _available_services(doc: Doc, ctx: RenderContext) -> str:
    found = ctx.spec(doc).get("availableServices")
    entries = [e for e in found if isinstance(e, Mapping)] if isinstance(found, list) else []
    instances = sum(_count(e.get("instances")) for e in entries)
    return f"{_plural(len(entries), 'service')}, {_plural(instances, 'instance')}"


def _ingress_status(doc: Doc, ctx: RenderContext) -> str:
    return "Online" if _online(_subscriptions(doc, ctx, _ZI_INSIGHT)) else "Offline"


ZONE_INGRESS_COLUMNS = (
    NAME,
    # A zone CP fills the zone in when the ingress connects; until then say so rather than leave a gap.
    Column("ZONE", lambda d, c: _ingress_zone(d, c) or _NONE),
    Column("ADDRESS", _ingress_address),
    Column("ADVERTISED", _advertised),
    Column("AVAILABLE SERVICES", _available_services),
    Column("STATUS", _ingress_status),
)
ZONE_INGRESS_PRESENTATION = Presentation(lambda desc, docs: list(ZONE_INGRESS_COLUMNS), joins=(_ZI_INSIGHT,))


# --- --config ------------------------------------------------------------------------------------------


def render_proxy_config(body: Mapping[str, Any]) -> str:
    """The answer of ``/_config`` as YAML (the config without its notes) and a ``# notes:`` block."""
    config = body.get("config")
    shown = {k: v for k, v in config.items() if k != "notes"} if isinstance(config, Mapping) else {}
    notes = body.get("notes")
    # One line per note whatever it holds: a newline inside a note would end the comment.
    lines = [" ".join(str(n).split()) for n in notes] if isinstance(notes, list) else []
    text = render_yaml(shown) + "# notes:\n"
    if not lines:
        return text + "#   (none)\n"
    return text + "".join(f"#   - {line}\n" for line in lines)
