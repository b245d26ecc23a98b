"""kmeshctl's tables, YAML and JSON for fixed REST documents, checked against golden files.

Ages are computed against a fixed "now", so the goldens do not change with the clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from kmesh.cli._cmd_inspect import INSPECTIONS, overview_list
from kmesh.cli._render import render, render_json, render_table, render_yaml
from kmesh.model import all_descriptors, descriptor

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T_5S = "2024-05-01T11:59:55Z"
T_3M = "2024-05-01T11:57:00Z"
T_3H = "2024-05-01T08:59:59.5+00:00"
T_4D = "2024-04-27T12:00:00Z"


def _meta(type_: str, name: str, created: str, mesh: str | None = None, **extra: object) -> dict:
    doc: dict = {"type": type_}
    if mesh is not None:
        doc["mesh"] = mesh
    doc["name"] = name
    doc["creationTime"] = created
    doc["modificationTime"] = created
    doc.update(extra)
    return doc


MESHES = [
    _meta(
        "Mesh",
        "default",
        T_4D,
        mtls={"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
        routing={"localityAwareLoadBalancing": True, "zoneEgress": True},
    ),
    _meta("Mesh", "no-mtls", T_3M),
    _meta(
        "Mesh",
        "second-backend",
        T_5S,
        mtls={
            "enabledBackend": "vault-ca",
            "backends": [{"name": "ca-1", "type": "builtin"}, {"name": "vault-ca", "type": "provided"}],
        },
        routing={"zoneEgress": False},
    ),
]


def _dataplane(name: str, address: str, created: str, inbound: list, **extra: object) -> dict:
    return _meta(
        "Dataplane",
        name,
        created,
        mesh="default",
        networking={"address": address, "inbound": inbound},
        **extra,
    )


DATAPLANES = [
    _dataplane(
        "web-1",
        "10.0.0.1",
        T_3H,
        [
            {"port": 8080, "tags": {"kuma.io/service": "web", "version": "v1", "kuma.io/protocol": "http"}},
            {"port": 8081, "tags": {"kuma.io/service": "web-admin", "version": "v1"}},
        ],
    ),
    _dataplane("backend-1", "10.0.0.2", T_5S, [{"port": 9090, "tags": {"kuma.io/service": "backend"}}]),
]

ZONED_DATAPLANES = [
    {**DATAPLANES[0], "labels": {"kuma.io/zone": "zone-1", "kuma.io/origin": "zone"}},
    DATAPLANES[1],
]

POLICIES = [
    _meta("MeshTrafficPermission", "allow-all", T_4D, mesh="default", spec={"targetRef": {"kind": "Mesh"}}),
    _meta(
        "MeshTrafficPermission",
        "backend-from-web",
        T_3M,
        mesh="default",
        spec={"targetRef": {"kind": "MeshService", "name": "backend"}, "from": []},
    ),
    _meta("MeshTrafficPermission", "implicit-mesh", T_5S, mesh="default", spec={"from": []}),
]

ZONES = [
    _meta("Zone", "zone-1", T_4D, enabled=True),
    _meta("Zone", "zone-2", T_3H),
    _meta("Zone", "zone-3", T_3M, enabled=False),
    _meta("Zone", "zone-4", T_5S),
]


def _insight(zone: str, subscriptions: list) -> dict:
    return _meta("ZoneInsight", zone, T_4D, subscriptions=subscriptions)


def _subscription(sub_id: str, connected: str, **extra: object) -> dict:
    return {"id": sub_id, "globalInstanceId": "global-1", "connectTime": connected, **extra}


def _status(updated: str | None, sent: object, rejected: object) -> dict:
    status: dict = {"total": {"responsesSent": sent, "responsesRejected": rejected}}
    if updated is not None:
        status["lastUpdateTime"] = updated
    return status


def _version(version: str) -> dict:
    return {"kumaCp": {"version": version, "gitTag": f"v{version}"}}


ZONE_INSIGHTS = {
    # Reconnected 3h ago: counters add up over both subscriptions, times and version are the newest's.
    ("", "zone-1", ""): _insight(
        "zone-1",
        [
            _subscription(
                "a",
                T_4D,
                disconnectTime=T_3H,
                status=_status(T_3H, 40, 2),
                version=_version("0.9.0"),
            ),
            _subscription("b", T_3H, status=_status(T_5S, 7, 1), version=_version("1.0.0")),
        ],
    ),
    # Disconnected 3m ago; Kuma's REST API writes the uint64 counters as strings.
    ("", "zone-2", ""): _insight(
        "zone-2",
        [_subscription("c", T_4D, disconnectTime=T_3M, status=_status(T_3M, "22", "11"))],
    ),
    # Connected, but disabled: Offline; no update sent yet, no version reported.
    ("", "zone-3", ""): _insight("zone-3", [_subscription("d", T_3M)]),
    # zone-4 has no insight: its CP never connected.
}

ZONE_INGRESSES = [
    _meta(
        "ZoneIngress",
        "zi-1",
        T_3H,
        zone="zone-1",
        networking={
            "address": "192.168.0.1",
            "port": 10001,
            "advertisedAddress": "10.1.0.1",
            "advertisedPort": 30001,
        },
    ),
    _meta(
        "ZoneIngress",
        "zi-2",
        T_5S,
        labels={"kuma.io/zone": "zone-2"},
        networking={"address": "192.168.0.2", "port": 10001},
    ),
]

ZONE_EGRESSES = [
    _meta("ZoneEgress", "ze-1", T_3M, zone="zone-1", networking={"address": "192.168.0.3", "port": 10002}),
]

SECRETS = [
    _meta("Secret", "tls-cert", T_4D, mesh="default", data="c2VjcmV0"),
    _meta("Secret", "tls-key", T_5S, mesh="default", data="a2V5"),
]


@pytest.mark.parametrize(
    ("golden_name", "type_name", "docs", "joined"),
    [
        ("meshes", "Mesh", MESHES, None),
        ("meshes-empty", "Mesh", [], None),
        ("dataplanes", "Dataplane", DATAPLANES, None),
        ("dataplanes-zoned", "Dataplane", ZONED_DATAPLANES, None),
        ("meshtrafficpermissions", "MeshTrafficPermission", POLICIES, None),
        ("zones", "Zone", ZONES, {"ZoneInsight": ZONE_INSIGHTS}),
        ("zones-without-insights", "Zone", ZONES, None),
        ("zoneingresses", "ZoneIngress", ZONE_INGRESSES, None),
        ("zoneegresses", "ZoneEgress", ZONE_EGRESSES, None),
        ("secrets", "Secret", SECRETS, None),
    ],
)
def test_table(golden, golden_name, type_name, docs, joined) -> None:
    golden(f"table-{golden_name}", render_table(descriptor(type_name), docs, now=NOW, joined=joined))


def test_every_policy_type_gets_targetref_columns() -> None:
    policies = [d for d in all_descriptors() if d.policy]
    assert len(policies) >= 10
    for desc in policies:
        doc = _meta(
            desc.name, "p", T_5S, mesh="m", spec={"targetRef": {"kind": "MeshService", "name": "web"}}
        )
        assert render_table(desc, [doc], now=NOW).splitlines() == [
            "MESH   NAME   TARGETREF KIND   TARGETREF NAME   AGE",
            "m      p      MeshService      web              5s",
        ]


def test_types_without_a_presentation_get_the_generic_columns() -> None:
    insights = [d for d in all_descriptors() if d.name.endswith("Insight") and d.name != "ZoneInsight"]
    mesh_scoped = next(d for d in insights if d.mesh_scoped)
    assert render_table(mesh_scoped, [_meta(mesh_scoped.name, "web-1", T_3M, mesh="default")], now=NOW) == (
        "MESH      NAME    AGE\ndefault   web-1   3m\n"
    )
    global_scoped = next(d for d in insights if not d.mesh_scoped)
    assert render_table(global_scoped, [_meta(global_scoped.name, "ze-1", T_3M)], now=NOW) == (
        "NAME   AGE\nze-1   3m\n"
    )


def test_yaml_of_one_resource(golden) -> None:
    text = render_yaml(MESHES[0])
    golden("yaml-mesh", text)
    assert yaml.safe_load(text) == MESHES[0]


def test_yaml_of_a_listing_is_the_list_object(golden) -> None:
    listing = {"total": 2, "items": DATAPLANES, "next": None}
    text = render("yaml", descriptor("Dataplane"), listing, DATAPLANES, now=NOW)
    golden("yaml-dataplanes", text)
    assert yaml.safe_load(text) == listing


def test_json_keeps_server_order_and_is_indented(golden) -> None:
    listing = {"total": 1, "items": [SECRETS[0]], "next": "http://cp/meshes/default/secrets?offset=1&size=1"}
    text = render_json(listing)
    golden("json-secrets", text)
    assert json.loads(text) == listing
    assert render("json", descriptor("Secret"), listing, [SECRETS[0]], now=NOW) == text


def test_inspect_zones_overview_list(golden) -> None:
    zones = INSPECTIONS[0]
    assert zones.type_name == "Zone"
    body = overview_list(zones, ZONES, ZONE_INSIGHTS)
    text = render_json(body)
    golden("json-inspect-zones", text)
    items = {item["name"]: item for item in json.loads(text)["items"]}
    assert body["total"] == len(ZONES)
    assert items["zone-3"]["zone"] == {"enabled": False}
    assert items["zone-1"]["zoneInsight"]["subscriptions"] == ZONE_INSIGHTS["", "zone-1", ""]["subscriptions"]
    assert items["zone-4"]["zoneInsight"] == {}
    assert {item["type"] for item in items.values()} == {"ZoneOverview"}


def test_inspect_zones_table_is_the_get_zones_table() -> None:
    zone = descriptor("Zone")
    joined = {"ZoneInsight": ZONE_INSIGHTS}
    assert render_table(zone, ZONES, now=NOW, joined=joined, presentation=INSPECTIONS[0].presentation) == (
        render_table(zone, ZONES, now=NOW, joined=joined)
    )
