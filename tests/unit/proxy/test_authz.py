"""``kmesh.proxy._authz.authorize``: MeshTrafficPermission as the proxy applies it to one inbound.

The control plane resolved the policies into the inbound's lists; these tests pin how the proxy reads
them: no mTLS means no identities and nothing enforced; with mTLS a peer without an identity is refused,
a denied id beats an allowed one (also across the several ids one certificate may carry), shadow-denied
ids are let in but flagged, and anyone else gets ``default_action``. A MeshExternalService's route at the
zone egress carries the same four fields and is read the same way.
"""

from __future__ import annotations

import pytest

from kmesh.proxy._authz import Verdict, authorize
from kmesh.proxyconfig import Action, ExternalRoute, InboundConfig, spiffe_id

MESH = "m"
CLIENT = spiffe_id(MESH, "client")
OTHER = spiffe_id(MESH, "other")
BILLING = spiffe_id(MESH, "billing")


def inbound(
    *,
    allowed: list[str] | None = None,
    denied: list[str] | None = None,
    shadow: list[str] | None = None,
    default: Action = "Deny",
) -> InboundConfig:
    return InboundConfig(
        address="127.0.0.1",
        port=10000,
        service_address="127.0.0.1",
        service_port=8080,
        service="echo",
        tags={"kuma.io/service": "echo"},
        allowed_spiffe_ids=allowed or [],
        denied_spiffe_ids=denied or [],
        shadow_denied_spiffe_ids=shadow or [],
        default_action=default,
    )


def test_without_mtls_everyone_is_allowed_even_a_denied_id() -> None:
    verdict = authorize(inbound(denied=[CLIENT]), [], mtls=False)
    assert verdict == Verdict(True, False, verdict.reason)
    assert "mTLS is off" in verdict.reason
    assert authorize(inbound(denied=[CLIENT]), [CLIENT], mtls=False).allowed


@pytest.mark.parametrize("default", ["Allow", "Deny"])
def test_with_mtls_a_peer_without_an_identity_is_refused(default: Action) -> None:
    verdict = authorize(inbound(allowed=[CLIENT], default=default), [], mtls=True)
    assert not verdict.allowed
    assert not verdict.shadow_denied
    assert "no SPIFFE identity" in verdict.reason


def test_an_allowed_peer_is_let_in() -> None:
    verdict = authorize(inbound(allowed=[CLIENT]), [CLIENT], mtls=True)
    assert verdict.allowed
    assert not verdict.shadow_denied
    assert CLIENT in verdict.reason


def test_a_denied_peer_is_refused_even_when_also_allowed_and_the_default_is_allow() -> None:
    verdict = authorize(inbound(allowed=[CLIENT], denied=[CLIENT], default="Allow"), [CLIENT], mtls=True)
    assert not verdict.allowed
    assert CLIENT in verdict.reason
    assert "denied" in verdict.reason


def test_a_shadow_denied_peer_is_allowed_but_flagged() -> None:
    verdict = authorize(inbound(allowed=[CLIENT], shadow=[CLIENT]), [CLIENT], mtls=True)
    assert verdict.allowed
    assert verdict.shadow_denied
    # Another allowed peer is not flagged by someone else's shadow deny.
    other = authorize(inbound(allowed=[CLIENT, OTHER], shadow=[CLIENT]), [OTHER], mtls=True)
    assert other.allowed
    assert not other.shadow_denied


def test_an_unknown_peer_gets_the_default_action() -> None:
    allow = authorize(inbound(allowed=[CLIENT], default="Allow"), [OTHER], mtls=True)
    assert allow.allowed
    assert not allow.shadow_denied
    assert "mesh-wide Allow" in allow.reason
    deny = authorize(inbound(allowed=[CLIENT], default="Deny"), [OTHER], mtls=True)
    assert not deny.allowed
    assert OTHER in deny.reason


def test_empty_lists_with_default_deny_deny_everyone() -> None:
    assert not authorize(inbound(), [CLIENT], mtls=True).allowed


def test_several_ids_one_allowed_is_enough() -> None:
    verdict = authorize(inbound(allowed=[BILLING]), [OTHER, BILLING], mtls=True)
    assert verdict.allowed
    assert BILLING in verdict.reason


def test_several_ids_any_denied_refuses_even_if_another_is_allowed() -> None:
    # Adding a service to a proxy never widens what a denied service may reach.
    verdict = authorize(inbound(allowed=[CLIENT], denied=[BILLING]), [CLIENT, BILLING], mtls=True)
    assert not verdict.allowed
    assert BILLING in verdict.reason
    reordered = authorize(inbound(allowed=[CLIENT], denied=[BILLING]), [BILLING, CLIENT], mtls=True)
    assert not reordered.allowed


def test_several_ids_a_shadow_denied_one_flags_an_allowed_connection() -> None:
    verdict = authorize(inbound(allowed=[CLIENT], shadow=[BILLING]), [CLIENT, BILLING], mtls=True)
    assert verdict.allowed
    assert verdict.shadow_denied


def test_several_unknown_ids_get_the_default_action() -> None:
    ids = [OTHER, BILLING]
    assert authorize(inbound(allowed=[CLIENT], default="Allow"), ids, mtls=True).allowed
    assert not authorize(inbound(allowed=[CLIENT], default="Deny"), ids, mtls=True).allowed


# -- an external service's route at the zone egress --------------------------------------------------------


def test_an_external_route_is_read_like_an_inbound() -> None:
    route = ExternalRoute(
        mesh=MESH,
        name="httpbin",
        identity=spiffe_id(MESH, "zone-egress"),
        allowed_spiffe_ids=[CLIENT],
        denied_spiffe_ids=[BILLING],
        shadow_denied_spiffe_ids=[CLIENT],
        default_action="Deny",
    )
    allowed = authorize(route, [CLIENT], mtls=True)
    assert (allowed.allowed, allowed.shadow_denied) == (True, True)
    denied = authorize(route, [BILLING], mtls=True)
    assert not denied.allowed
    assert "denied by MeshTrafficPermission" in denied.reason
    assert not authorize(route, [OTHER], mtls=True).allowed
    assert not authorize(route, [], mtls=True).allowed


def test_an_external_route_without_permission_fields_lets_the_mesh_in() -> None:
    # What a control plane predating the fields sends: the egress keeps letting any identity of the mesh in.
    route = ExternalRoute(mesh=MESH, name="httpbin", identity=spiffe_id(MESH, "zone-egress"))
    verdict = authorize(route, [OTHER], mtls=True)
    assert verdict.allowed
    assert not verdict.shadow_denied
