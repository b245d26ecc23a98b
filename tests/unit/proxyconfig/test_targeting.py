"""targetRef matching, the order entries merge in, JSON merge patch, and the failover priorities."""

from __future__ import annotations

import msgspec
import pytest

from kmesh.model.types import TargetRef
from kmesh.model.types.load_balancing import Failover
from kmesh.model.types.timeout import TimeoutConf
from kmesh.proxyconfig import MeshSnapshot
from kmesh.proxyconfig._endpoints import Locality, zone_priorities
from kmesh.proxyconfig._resolve import resolve
from kmesh.proxyconfig._targeting import Destination, Subject, merge_patch, merged, reaches, selects

from .world import dataplane, inbound, mesh, policy


def ref(**fields: object) -> TargetRef:
    return msgspec.convert(fields, TargetRef)


WEB = dataplane(
    "web-1",
    "10.0.0.1",
    [{**inbound("web", 8080, version="v1"), "name": "http"}, inbound("web-admin", 9000)],
    labels={"team": "a"},
)
SUBJECT = Subject.of_dataplane(WEB, "zone-1")


@pytest.mark.parametrize(
    ("target", "whole", "per_inbound"),
    [
        ({"kind": "Mesh"}, True, [True, True]),
        ({"kind": "Mesh", "proxyTypes": ["Gateway"]}, False, [False, False]),
        ({"kind": "MeshSubset", "tags": {"version": "v1"}}, True, [True, False]),
        ({"kind": "MeshSubset", "tags": {"version": "*"}}, True, [True, False]),
        ({"kind": "MeshSubset", "tags": {"kuma.io/zone": "zone-1"}}, True, [True, True]),
        ({"kind": "MeshSubset", "tags": {"kuma.io/zone": "zone-2"}}, False, [False, False]),
        ({"kind": "MeshService", "name": "web-admin"}, True, [False, True]),
        ({"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "v2"}}, False, [False, False]),
        ({"kind": "Dataplane"}, True, [True, True]),
        ({"kind": "Dataplane", "name": "web-2"}, False, [False, False]),
        ({"kind": "Dataplane", "labels": {"team": "a"}}, True, [True, True]),
        ({"kind": "Dataplane", "labels": {"team": "b"}}, False, [False, False]),
        # A sectionName names an inbound (by name or port): inbound policies only.
        ({"kind": "Dataplane", "name": "web-1", "sectionName": "http"}, False, [True, False]),
        ({"kind": "Dataplane", "sectionName": "9000"}, False, [False, True]),
        ({"kind": "MeshGateway", "name": "gw"}, False, [False, False]),
    ],
)
def test_top_level_selection(target: dict[str, object], whole: bool, per_inbound: list[bool]) -> None:
    top = ref(**target)
    assert selects(top, SUBJECT) is whole
    assert [selects(top, SUBJECT, i) for i in range(2)] == per_inbound


def test_zone_proxies_take_only_mesh_wide_policies() -> None:
    egress = Subject.zone_proxy("ze-1")
    assert selects(ref(kind="Mesh"), egress)
    assert not selects(ref(kind="Mesh", proxyTypes=["Sidecar"]), egress)
    assert not selects(ref(kind="MeshSubset", tags={"kuma.io/zone": "zone-1"}), egress)


def test_to_entries_reach_destinations() -> None:
    backend, external = Destination("backend"), Destination("backend", external=True)
    assert reaches(ref(kind="Mesh"), backend)
    assert reaches(ref(kind="Mesh"), external)
    assert reaches(ref(kind="MeshService", name="backend"), backend)
    assert not reaches(ref(kind="MeshService", name="backend"), external)
    assert reaches(ref(kind="MeshExternalService", name="backend"), external)
    assert not reaches(ref(kind="MeshService", name="other"), backend)


def test_merge_patch_follows_rfc_7386() -> None:
    base = {"conf": 1, "sub": {"array": [1, 2, 3], "other": 50, "other-array": [3, 4, 5]}}
    patch = {"sub": {"array": [], "other": None, "other-array": [5, 6], "extra": 2}}
    assert merge_patch(base, patch) == {"conf": 1, "sub": {"array": [], "other-array": [5, 6], "extra": 2}}
    assert base["sub"] == {"array": [1, 2, 3], "other": 50, "other-array": [3, 4, 5]}  # not modified


def test_merged_confs_keep_earlier_fields() -> None:
    first = TimeoutConf(connection_timeout="1s", idle_timeout="1m")
    second = TimeoutConf(idle_timeout="2m")
    assert merged([first, second], TimeoutConf) == TimeoutConf(connection_timeout="1s", idle_timeout="2m")
    assert merged([], TimeoutConf) is None


MESH = {"kind": "Mesh"}
TO_BACKEND = {"kind": "MeshService", "name": "backend"}
Spec = tuple[str, dict[str, object], dict[str, object], str]  # name, top-level ref, to ref, connect timeout


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        # A more specific top-level targetRef wins whatever the names and to-entries.
        ([("a", {"kind": "MeshService", "name": "web"}, MESH, "1s"), ("b", MESH, TO_BACKEND, "2s")], 1.0),
        # Same top level: the more specific to-entry wins.
        ([("a", MESH, MESH, "1s"), ("b", MESH, TO_BACKEND, "2s")], 2.0),
        # Equal in every level: the policy whose name sorts first wins.
        ([("zz", MESH, MESH, "1s"), ("aa", MESH, MESH, "2s")], 2.0),
        ([("aa", MESH, MESH, "1s"), ("zz", MESH, MESH, "2s")], 1.0),
        # The Dataplane kind is the most specific top level.
        (
            [
                ("a", {"kind": "Dataplane", "name": "web-1"}, MESH, "3s"),
                ("b", {"kind": "MeshServiceSubset", "name": "web", "tags": {"version": "v1"}}, MESH, "4s"),
            ],
            3.0,
        ),
    ],
)
def test_policy_precedence(policies: list[Spec], expected: float) -> None:
    resources = tuple(
        policy(
            "MeshTimeout",
            name,
            {"targetRef": top, "to": [{"targetRef": to, "default": {"connectionTimeout": connect}}]},
        )
        for name, top, to, connect in policies
    )
    snapshot = MeshSnapshot(mesh=mesh(), dataplanes=(WEB,), policies=resources)
    assert resolve(snapshot, SUBJECT, Destination("backend")).timeout.connect_timeout_s == expected


def failover(*steps: dict[str, object]) -> Locality:
    return Locality(aware=True, failover=tuple(msgspec.convert(s, Failover) for s in steps))


ZONES = ["zone-2", "zone-3", "zone-4", "zone-1"]


@pytest.mark.parametrize(
    ("locality", "expected"),
    [
        (Locality(), {"zone-2": 0, "zone-3": 0, "zone-4": 0}),
        (Locality(aware=True), {"zone-2": 1, "zone-3": 1, "zone-4": 1}),
        (failover({"to": {"type": "Any"}}), {"zone-2": 1, "zone-3": 1, "zone-4": 1}),
        (failover({"to": {"type": "Only", "zones": ["zone-3"]}}), {"zone-3": 1}),
        (
            failover({"to": {"type": "Only", "zones": ["zone-3"]}}, {"to": {"type": "Any"}}),
            {"zone-3": 1, "zone-2": 2, "zone-4": 2},
        ),
        (
            failover(
                {"to": {"type": "AnyExcept", "zones": ["zone-2"]}},
                {"to": {"type": "None"}},
                {"to": {"type": "Any"}},
            ),
            {"zone-3": 1, "zone-4": 1},
        ),
        # Steps for clients of other zones are skipped; a step adding nothing takes no level.
        (
            failover(
                {"from": {"zones": ["zone-2"]}, "to": {"type": "Only", "zones": ["zone-4"]}},
                {"to": {"type": "Only", "zones": ["zone-9"]}},
                {"from": {"zones": ["zone-1"]}, "to": {"type": "Only", "zones": ["zone-2", "zone-1"]}},
                {"to": {"type": "Any"}},
            ),
            {"zone-2": 1, "zone-3": 2, "zone-4": 2},
        ),
    ],
)
def test_zone_priorities(locality: Locality, expected: dict[str, int]) -> None:
    assert zone_priorities(locality, "zone-1", ZONES) == expected
