"""Which policy entries apply to a proxy, in which order, and how their ``default`` blocks merge (Kuma's
targetRef matching, MADR 005 and ``SortByTargetRefV2``).

Rules:
- The top-level ``targetRef`` selects proxies: ``Mesh`` all (``proxyTypes`` narrows to Sidecar or
  Gateway); ``MeshSubset`` those with an inbound whose effective tags match ``tags``; ``MeshService`` those
  with an inbound of service ``name``; ``MeshServiceSubset`` both; ``Dataplane`` the dataplane ``name``,
  those whose labels include ``labels``, or every dataplane. A selector value ``*`` matches any value of a
  present tag. Inbound-level policies (MeshTrafficPermission) match per inbound, and a ``Dataplane``
  ``sectionName`` then picks the inbound by name or port; outbound policies ignore such a ref, which names
  an inbound. ``MeshGateway``, ``MeshHTTPRoute`` and ``MeshService`` selected by ``labels`` (MeshService
  resources kmesh does not have) select nothing here. Zone ingresses and egresses match ``kind: Mesh``
  without ``proxyTypes`` only.
- ``to[]`` entries match a destination: ``Mesh`` every one, ``MeshService`` the service ``name``,
  ``MeshExternalService`` the external service ``name``. ``from[]`` entries match a client by its tags
  exactly as a top-level ref matches an inbound.
- Order, least specific first: top-level kind (Mesh < MeshSubset < MeshGateway < MeshService <
  MeshExternalService < MeshServiceSubset < Dataplane < MeshHTTPRoute), then the entry's own kind in the
  same scale, then policy name in *reverse* lexicographic order (so of two equally specific policies the
  one whose name sorts first is applied last and wins, as Kuma 2.x), then position in the policy's list.
- Merging is JSON merge patch (RFC 7386) of each entry's ``default`` in that order: later keys override,
  nested objects merge, lists are replaced whole. Specs leave out fields equal to their defaults, so an
  explicit ``false``/``0`` that equals the default does not undo an earlier ``true``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, final

import msgspec

from kmesh.model import LABEL_SERVICE, Resource, Spec
from kmesh.model.types import PolicySpec, TargetRef
from kmesh.model.types.dataplane import DataplaneSpec
from kmesh.proxyconfig._snapshot import effective_tags

__all__ = [
    "Destination",
    "Subject",
    "admits",
    "kind_rank",
    "merge_patch",
    "merged",
    "ordered_defaults",
    "ordered_entries",
    "reaches",
    "selects",
    "tags_match",
]

ConfT = TypeVar("ConfT", bound=Spec)

_RANK: dict[str, int] = {
    "Mesh": 0,
    "MeshSubset": 1,
    "MeshGateway": 2,
    "MeshService": 3,
    "MeshExternalService": 4,
    "MeshServiceSubset": 5,
    "Dataplane": 6,
    "MeshHTTPRoute": 7,
}


def kind_rank(ref: TargetRef) -> int:
    """How specific ``ref``'s kind is (higher is more specific)."""
    return _RANK[ref.kind]


def tags_match(selector: Mapping[str, str] | None, tags: Mapping[str, str]) -> bool:
    """Whether ``tags`` has every tag of ``selector`` (``*`` matches any value of a present tag)."""
    for key, want in (selector or {}).items():
        have = tags.get(key)
        if have is None or (want != "*" and have != want):
            return False
    return True


@final
@dataclass(frozen=True, slots=True)
class Subject:
    """A proxy as top-level targetRefs see it. ``inbounds`` are ``(name, port, effective tags)``; a
    delegated gateway's tags count as one inbound. ``proxy_type`` is None for zone ingresses and egresses."""

    name: str
    labels: Mapping[str, str]
    inbounds: tuple[tuple[str | None, int, Mapping[str, str]], ...]
    proxy_type: Literal["Sidecar", "Gateway"] | None

    @classmethod
    def of_dataplane(cls, resource: Resource, zone: str) -> Subject:
        spec = resource.spec
        if not isinstance(spec, DataplaneSpec):
            raise TypeError(f"expected a Dataplane, got {resource.meta.type}")
        net = spec.networking
        inbounds = tuple((i.name, i.port, effective_tags(i, zone)) for i in net.inbound)
        if net.gateway is not None:
            inbounds += ((None, 0, dict(net.gateway.tags)),)
        return cls(
            name=resource.meta.name,
            labels=resource.meta.labels,
            inbounds=inbounds,
            proxy_type="Gateway" if net.gateway is not None else "Sidecar",
        )

    @classmethod
    def zone_proxy(cls, name: str) -> Subject:
        """A zone ingress or egress."""
        return cls(name=name, labels={}, inbounds=(), proxy_type=None)


def _inbound_selected(ref: TargetRef, name: str | None, port: int, tags: Mapping[str, str]) -> bool:
    kind = ref.kind
    if kind == "MeshSubset":
        return tags_match(ref.tags, tags)
    if kind in ("MeshService", "MeshServiceSubset"):
        if ref.name is None or tags.get(LABEL_SERVICE) != ref.name:
            return False
        return tags_match(ref.tags, tags)
    if kind == "Dataplane":
        return ref.section_name is None or ref.section_name in (name, str(port))
    return kind == "Mesh"


def selects(ref: TargetRef, subject: Subject, inbound: int | None = None) -> bool:
    """Whether the top-level ``ref`` selects ``subject`` (``inbound`` None: the proxy as a whole, for
    outbound policies; an index: that inbound, for inbound policies)."""
    if ref.proxy_types is not None and (
        subject.proxy_type is None or subject.proxy_type not in ref.proxy_types
    ):
        return False
    if subject.proxy_type is None:
        return ref.kind == "Mesh"
    if ref.kind == "Dataplane":
        if ref.name is not None and ref.name != subject.name:
            return False
        if ref.labels and not all(subject.labels.get(k) == v for k, v in ref.labels.items()):
            return False
        if inbound is None:
            return ref.section_name is None
    if ref.kind in ("MeshService", "MeshServiceSubset") and ref.labels:
        return False
    candidates = subject.inbounds if inbound is None else subject.inbounds[inbound : inbound + 1]
    if ref.kind == "Mesh":
        return True
    return any(_inbound_selected(ref, name, port, tags) for name, port, tags in candidates)


@final
@dataclass(frozen=True, slots=True)
class Destination:
    """What an outbound goes to: a mesh service or a MeshExternalService."""

    service: str
    external: bool = False


def reaches(ref: TargetRef, destination: Destination) -> bool:
    """Whether the ``to[]`` entry ``ref`` applies to ``destination``."""
    if ref.kind == "Mesh":
        return True
    if ref.kind == "MeshService":
        return not destination.external and ref.name is not None and ref.name == destination.service
    if ref.kind == "MeshExternalService":
        return destination.external and ref.name == destination.service
    return False


def admits(ref: TargetRef, client_tags: Mapping[str, str]) -> bool:
    """Whether the ``from[]`` entry ``ref`` applies to a client whose instances carry ``client_tags``."""
    if ref.kind == "Mesh":
        return True
    if ref.kind in ("MeshSubset", "MeshService", "MeshServiceSubset"):
        if ref.kind != "MeshSubset" and ref.labels:
            return False
        return _inbound_selected(ref, None, 0, client_tags)
    return False


@dataclass(frozen=True, slots=True)
class _Entry:
    top: int
    own: int
    policy: str
    index: int
    ref: TargetRef
    default: Spec


def _compare(a: _Entry, b: _Entry) -> int:
    if a.top != b.top:
        return a.top - b.top
    if a.own != b.own:
        return a.own - b.own
    if a.policy != b.policy:
        return -1 if a.policy > b.policy else 1  # reverse: the name sorting first is applied last
    return a.index - b.index


def ordered_entries(
    policies: Iterable[tuple[Resource, PolicySpec]],
    section: str,
    top: Callable[[TargetRef], bool],
    entry: Callable[[TargetRef], bool],
) -> list[tuple[TargetRef, Spec]]:
    """``(targetRef, default)`` of every ``section`` entry (``"from"`` or ``"to"``) that applies, least
    specific first: ``top`` decides on each policy's top-level ref, ``entry`` on each entry's own ref."""
    found: list[_Entry] = []
    for resource, spec in policies:
        ref = spec.effective_target_ref
        if not top(ref):
            continue
        for index, item in enumerate(spec.entries(section)):
            item_ref = getattr(item, "target_ref", None)
            default = getattr(item, "default", None)
            if isinstance(item_ref, TargetRef) and isinstance(default, Spec) and entry(item_ref):
                found.append(
                    _Entry(kind_rank(ref), kind_rank(item_ref), resource.meta.name, index, item_ref, default)
                )
    found.sort(key=functools.cmp_to_key(_compare))
    return [(e.ref, e.default) for e in found]


def ordered_defaults(
    policies: Iterable[tuple[Resource, PolicySpec]],
    section: str,
    top: Callable[[TargetRef], bool],
    entry: Callable[[TargetRef], bool],
) -> list[Spec]:
    """The defaults of ``ordered_entries``, in the same order."""
    return [default for _, default in ordered_entries(policies, section, top, entry)]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merged(defaults: Sequence[Spec], conf_type: type[ConfT]) -> ConfT | None:
    """The merge of ``defaults`` (in order) as a ``conf_type``, or None when there are none."""
    if not defaults:
        return None
    doc: Any = {}
    for default in defaults:
        doc = merge_patch(doc, msgspec.to_builtins(default))
    return msgspec.convert(doc, conf_type)
