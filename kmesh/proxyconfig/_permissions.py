"""MeshTrafficPermission -> who may connect to each inbound, as SPIFFE ids (enforced on mTLS peers).

Rules:
- The entries that apply to an inbound are the ``from[]`` entries of every policy whose top-level
  ``targetRef`` selects that inbound, ordered least specific first (``_targeting``: top-level kind, then
  the entry's kind Mesh < MeshSubset < MeshService < MeshServiceSubset, then reverse policy name, then list
  position). For a client, the *last* entry that matches it decides: so the most specific top-level
  targetRef wins, and within it later and more specific ``from`` entries override earlier ones.
  ``AllowWithShadowDeny`` allows. No matching entry denies (a mesh with mTLS and no permission denies
  everything, as Kuma without its default allow-all policy).
- Clients are identified by service (``spiffe://<mesh>/<service>``), but entries may select by any tag.
  Each client service is therefore evaluated for every tag set its instances are known to carry (this
  zone's inbounds, and what other zones' ingresses advertise), or for ``{kuma.io/service: S}`` when none is
  known: a service is allowed only if *every* known tag set of it is allowed. A service split by the rules
  is denied as a whole (fail closed) and a note says so.
- Services known to the zone, and services named in ``from`` entries, are listed; any other peer gets the
  decision of the entries that match every client (``kind: Mesh``), as ``default_action``.
- Without mTLS peers have no identity: nothing is enforced (``default_action: Allow``, empty lists), and a
  note says so when the mesh has traffic permissions.
- The same evaluation serves any other place that checks callers by identity: ``Permissions.decide``
  takes the test a top-level ``targetRef`` must pass (the zone egress uses it per MeshExternalService).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import final

from kmesh.model import LABEL_SERVICE, Spec
from kmesh.model.types import MeshTrafficPermissionSpec, TargetRef
from kmesh.model.types.traffic_permission import TrafficPermissionConf
from kmesh.model.types.zoneingress import ZoneIngressSpec
from kmesh.proxyconfig._config import Action
from kmesh.proxyconfig._names import spiffe_id
from kmesh.proxyconfig._snapshot import MeshSnapshot, effective_tags
from kmesh.proxyconfig._targeting import Subject, admits, ordered_entries, selects

__all__ = ["Decision", "Permissions", "known_clients"]

_ALLOWING = ("Allow", "AllowWithShadowDeny")


def known_clients(snapshot: MeshSnapshot, zone: str) -> dict[str, list[dict[str, str]]]:
    """Per client service, the distinct tag sets its instances are known to carry (sorted)."""
    seen: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for _, spec in snapshot.local_dataplanes(zone):
        for inbound in spec.networking.inbound:
            seen.setdefault(inbound.service, set()).add(tuple(effective_tags(inbound, zone).items()))
    for resource in snapshot.zone_ingresses:
        assert isinstance(resource.spec, ZoneIngressSpec)  # checked by MeshSnapshot
        for available in resource.spec.available_services:
            service = available.tags.get(LABEL_SERVICE)
            if available.mesh == snapshot.name and service:
                seen.setdefault(service, set()).add(tuple(sorted(available.tags.items())))
    for _, policy in snapshot.policies_of("MeshTrafficPermission", MeshTrafficPermissionSpec):
        for entry in policy.from_:
            named = _named_service(entry.target_ref)
            if named and named not in seen:
                seen[named] = {((LABEL_SERVICE, named),)}
    return {service: [dict(t) for t in sorted(sets)] for service, sets in sorted(seen.items())}


def _named_service(ref: TargetRef) -> str | None:
    if ref.kind in ("MeshService", "MeshServiceSubset") and ref.name:
        return ref.name
    value = (ref.tags or {}).get(LABEL_SERVICE)
    return value if ref.kind == "MeshSubset" and value and value != "*" else None


@final
@dataclass(slots=True)
class Decision:
    """The permission lists of one inbound, and notes for people."""

    allowed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    shadow_denied: list[str] = field(default_factory=list)
    default_action: Action = "Deny"
    notes: list[str] = field(default_factory=list)


@final
class Permissions:
    """Evaluates the mesh's MeshTrafficPermissions for the inbounds of one proxy."""

    def __init__(
        self, snapshot: MeshSnapshot, subject: Subject, clients: Mapping[str, Sequence[Mapping[str, str]]]
    ) -> None:
        """``clients`` is ``known_clients`` of the snapshot, computed once for every proxy of a zone."""
        self._mesh = snapshot.name
        self._mtls = snapshot.mtls
        self._subject = subject
        self._policies = snapshot.policies_of("MeshTrafficPermission", MeshTrafficPermissionSpec)
        self._clients = clients if self._mtls else {}

    def notes(self) -> list[str]:
        """Notes about the proxy as a whole."""
        if not self._mtls and self._policies and self._subject.inbounds:
            return [
                f"MeshTrafficPermission is not enforced: mesh {self._mesh} has no enabled mTLS backend, "
                "so peers have no identity to check"
            ]
        return []

    def for_inbound(self, index: int, label: str) -> Decision:
        """The decision for the inbound at ``index`` of the subject (``label`` names it in notes)."""
        return self.decide(lambda ref: selects(ref, self._subject, index), f"inbound {label}")

    def decide(self, top: Callable[[TargetRef], bool], label: str) -> Decision:
        """The decision over the ``from`` entries of the policies whose top-level ``targetRef`` passes
        ``top`` (``label`` names what they guard in notes, e.g. ``inbound 10.0.0.1:9090``)."""
        if not self._mtls:
            return Decision(default_action="Allow")
        entries = ordered_entries(self._policies, "from", top, lambda ref: True)
        # A client that matches no named service or tag gets what the kind: Mesh entries decide.
        fallback = _decide(entries, {})
        decision = Decision(default_action="Allow" if fallback in _ALLOWING else "Deny")
        for service, tag_sets in self._clients.items():
            actions = [_decide(entries, tags) for tags in tag_sets]
            identity = spiffe_id(self._mesh, service)
            if all(a in _ALLOWING for a in actions):
                decision.allowed.append(identity)
                if "AllowWithShadowDeny" in actions:
                    decision.shadow_denied.append(identity)
                continue
            decision.denied.append(identity)
            if any(a in _ALLOWING for a in actions):
                decision.notes.append(
                    f"{label}: {service} is denied: MeshTrafficPermission allows only some of its "
                    "instances (by tags), and peers are checked by service identity"
                )
        return decision


def _decide(entries: Sequence[tuple[TargetRef, Spec]], tags: Mapping[str, str]) -> str | None:
    """The action of the last entry matching a client with ``tags``, or None when none matches."""
    action: str | None = None
    for ref, default in entries:
        if isinstance(default, TrafficPermissionConf) and admits(ref, tags):
            action = default.action
    return action
