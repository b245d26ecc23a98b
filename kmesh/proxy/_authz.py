"""MeshTrafficPermission where a proxy accepts mesh traffic: may this peer, identified by its SPIFFE ids,
connect?

The zone control plane already resolved the policies per client (``kmesh.proxyconfig._permissions``) into
four fields: an ``InboundConfig``'s for a sidecar's inbound, an ``ExternalRoute``'s for a
MeshExternalService at the zone egress. The proxy only looks the peer up. Sans-IO.

Rules:
- Without mTLS peers have no identity and nothing is enforced (the config then says ``Allow``).
- With mTLS, a peer with no SPIFFE id is refused. A peer whose certificate names several services (one
  proxy serving several) is refused when any of them is denied, allowed when any is allowed, and
  otherwise gets ``default_action``; denial wins, so adding a service to a proxy never widens what a
  denied service may reach.
- ``shadow_denied`` ids are let in but reported, so operators can see what a Deny would break
  (Kuma's ``AllowWithShadowDeny``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, final

from kmesh.proxyconfig import Action

__all__ = ["Permitted", "Verdict", "authorize"]


class Permitted(Protocol):
    """What ``authorize`` reads: the resolved lists (``InboundConfig`` and ``ExternalRoute`` have them)."""

    @property
    def allowed_spiffe_ids(self) -> Sequence[str]: ...
    @property
    def denied_spiffe_ids(self) -> Sequence[str]: ...
    @property
    def shadow_denied_spiffe_ids(self) -> Sequence[str]: ...
    @property
    def default_action(self) -> Action: ...


@final
@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    shadow_denied: bool
    reason: str


def authorize(inbound: Permitted, peer_ids: Sequence[str], *, mtls: bool) -> Verdict:
    """Whether a peer presenting ``peer_ids`` may use ``inbound`` (an inbound, or an external service's
    route at the egress)."""
    if not mtls:
        return Verdict(True, False, "mTLS is off: no identities to check")
    if not peer_ids:
        return Verdict(False, False, "the peer's certificate names no SPIFFE identity")
    denied = [p for p in peer_ids if p in inbound.denied_spiffe_ids]
    if denied:
        return Verdict(False, False, f"{denied[0]} is denied by MeshTrafficPermission")
    allowed = [p for p in peer_ids if p in inbound.allowed_spiffe_ids]
    if allowed:
        shadow = any(p in inbound.shadow_denied_spiffe_ids for p in peer_ids)
        return Verdict(True, shadow, f"{allowed[0]} is allowed by MeshTrafficPermission")
    if inbound.default_action == "Allow":
        return Verdict(True, False, f"{peer_ids[0]} gets the mesh-wide Allow")
    return Verdict(False, False, f"no MeshTrafficPermission allows {peer_ids[0]}")
