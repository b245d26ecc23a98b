"""What every targetRef policy shares: ``targetRef``, the ``from``/``to``/``rules`` entries, registration.

Rules (Kuma's ``ValidateTargetRef``):
- ``Mesh`` takes no name, tags, labels or sectionName; ``MeshSubset`` needs tags and takes no name;
  ``MeshService``, ``MeshHTTPRoute``, ``MeshExternalService`` need a name or labels (not both);
  ``MeshServiceSubset`` needs a name and tags; ``MeshGateway`` needs a name; ``Dataplane`` takes a name or
  labels (not both) or neither (every dataplane). ``proxyTypes`` only goes with ``Mesh`` and ``MeshSubset``.
- Each policy declares which kinds its top-level ``targetRef`` and its ``from``/``to`` entries accept, and
  must have at least one entry; ``rules`` cannot be mixed with ``from``/``to``.
- Every policy is mesh-scoped, flows global-to-zones over KDS, uses the ``spec:`` form and has its REST path
  and kmeshctl names derived from its type name, as Kuma's generated descriptors do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Generic, Literal, TypeVar, final

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import NonNegInt, Port, Problems, RefName, Selector, label_problems
from kmesh.model._resource import Spec

__all__ = [
    "ALL_KINDS",
    "BackendRef",
    "From",
    "PolicySpec",
    "ProxyType",
    "Rule",
    "TargetRef",
    "TargetRefKind",
    "To",
    "register_policy",
]

TargetRefKind = Literal[
    "Mesh",
    "MeshSubset",
    "MeshService",
    "MeshServiceSubset",
    "MeshGateway",
    "MeshHTTPRoute",
    "MeshExternalService",
    "Dataplane",
]
ALL_KINDS: tuple[TargetRefKind, ...] = TargetRefKind.__args__  # type: ignore[attr-defined]
ProxyType = Literal["Sidecar", "Gateway"]

# Which optional fields each kind accepts; anything else set on it is refused (Kuma's disallowedField).
_ALLOWED: dict[str, frozenset[str]] = {
    "Mesh": frozenset({"proxyTypes"}),
    "MeshSubset": frozenset({"tags", "proxyTypes"}),
    "MeshService": frozenset({"name", "labels", "sectionName"}),
    "MeshServiceSubset": frozenset({"name", "tags"}),
    "MeshGateway": frozenset({"name", "tags"}),
    "MeshHTTPRoute": frozenset({"name", "labels"}),
    "MeshExternalService": frozenset({"name", "labels"}),
    "Dataplane": frozenset({"name", "labels", "sectionName"}),
}


class TargetRef(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reference to what a policy (or one of its entries) applies to."""

    kind: TargetRefKind
    name: RefName | None = None
    tags: Selector | None = None
    labels: dict[str, str] | None = None
    section_name: str | None = None
    proxy_types: list[ProxyType] | None = None

    def problems(self) -> Problems:
        present = {
            "name": bool(self.name),
            "tags": bool(self.tags),
            "labels": bool(self.labels),
            "sectionName": bool(self.section_name),
            "proxyTypes": self.proxy_types is not None,
        }
        for wire, is_set in present.items():
            if is_set and wire not in _ALLOWED[self.kind]:
                yield wire, f"must not be set with kind {self.kind}"
        if self.proxy_types is not None and not self.proxy_types:
            yield "proxyTypes", "must be left out or list at least one proxy type"
        if self.labels:
            yield from ((f"labels{where}", reason) for where, reason in label_problems(self.labels))
        kind = self.kind
        if kind in ("MeshSubset", "MeshServiceSubset") and not self.tags:
            yield "tags", f"required with kind {kind}"
        if kind in ("MeshServiceSubset", "MeshGateway") and not self.name:
            yield "name", f"required with kind {kind}"
        if kind in ("MeshService", "MeshHTTPRoute", "MeshExternalService") and not (self.name or self.labels):
            yield "name", f"required with kind {kind} (or select by labels)"
        if kind in ("MeshService", "MeshHTTPRoute", "MeshExternalService", "Dataplane") and (
            self.name and self.labels
        ):
            yield "labels", "either name or labels may be set, not both"


@final
class BackendRef(TargetRef, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a route sends traffic: a target plus its share (``weight``) and, for MeshService, a port."""

    weight: NonNegInt = 1
    port: Port | None = None


ConfT = TypeVar("ConfT", bound=Spec)


@final
class From(Spec, Generic[ConfT], frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration for traffic coming from the clients ``targetRef`` selects."""

    target_ref: TargetRef
    default: ConfT


@final
class To(Spec, Generic[ConfT], frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration for traffic going to the destinations ``targetRef`` selects."""

    target_ref: TargetRef
    default: ConfT


@final
class Rule(Spec, Generic[ConfT], frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration for all inbound traffic of the selected proxies (Kuma's newer ``rules`` form)."""

    default: ConfT


_TOP_DEFAULT: tuple[str, ...] = (
    "Mesh",
    "MeshSubset",
    "MeshService",
    "MeshServiceSubset",
    "MeshGateway",
    "Dataplane",
)


class PolicySpec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every targetRef policy spec. A missing ``targetRef`` means the whole mesh, as in Kuma.

    Subclasses declare the entry lists they have (``from_``, ``to``, ``rules``) and set the class variables
    naming the kinds each position accepts.
    """

    top_kinds: ClassVar[tuple[str, ...]] = _TOP_DEFAULT
    from_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshSubset", "MeshService", "MeshServiceSubset")
    to_kinds: ClassVar[tuple[str, ...]] = ("Mesh", "MeshService", "MeshExternalService")
    # The entry lists this policy has, in wire names; at least one must be non-empty.
    sections: ClassVar[tuple[str, ...]] = ("to",)

    target_ref: TargetRef | None = None

    @property
    def effective_target_ref(self) -> TargetRef:
        """``targetRef``, or ``kind: Mesh`` when it was left out."""
        return self.target_ref if self.target_ref is not None else TargetRef(kind="Mesh")

    def entries(self, section: str) -> Sequence[Spec]:
        """The items of ``section`` (``"from"``, ``"to"`` or ``"rules"``); empty when it has none."""
        items = getattr(self, "from_" if section == "from" else section, None)
        return items if isinstance(items, list) else []

    def problems(self) -> Problems:
        if self.target_ref is not None and self.target_ref.kind not in self.top_kinds:
            yield "targetRef.kind", _kind_reason(self.target_ref.kind, self.top_kinds)
        for section, kinds in (("from", self.from_kinds), ("to", self.to_kinds)):
            for i, entry in enumerate(self.entries(section)):
                ref = getattr(entry, "target_ref", None)
                if isinstance(ref, TargetRef) and ref.kind not in kinds:
                    yield f"{section}[{i}].targetRef.kind", _kind_reason(ref.kind, kinds)
        if not any(self.entries(s) for s in self.sections):
            names = " or ".join(repr(s) for s in self.sections)
            yield "", f"at least one item of {names} is required"
        if self.entries("rules") and (self.entries("from") or self.entries("to")):
            yield "rules", "must not be combined with 'from' or 'to'"


def _kind_reason(kind: str, allowed: tuple[str, ...]) -> str:
    return f"kind {kind} is not supported here; use one of {', '.join(allowed)}"


def register_policy(
    name: str, spec_type: type[Spec], *, path: str, short_names: tuple[str, ...] = (), policy: bool = True
) -> ResourceDescriptor:
    """Register a mesh-scoped, global-to-zones ``spec:`` type; ``path`` is its lower-case plural."""
    return register(
        ResourceDescriptor(
            name=name,
            spec_type=spec_type,
            scope=Scope.MESH,
            kds=KdsDirection.GLOBAL_TO_ZONES,
            path=path,
            singular=name.lower(),
            plural=path,
            short_names=short_names,
            policy=policy,
        )
    )
