"""kmeshctl on a global: ``get zones`` and ``inspect zones`` from Zones and their ZoneInsights, the delete
refusal for a connected zone, and dataplanes of two zones that share a name.

The API is a real ApiServer in global mode over a real MemoryStore (``background_api``); Zones are applied
with kmeshctl, and what zone CPs would have synced (insights, dataplanes) is written through the store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import yaml

from kmesh.errors import FieldViolation
from kmesh.model import ResourceKey, new_resource, parse_resource, to_document
from kmesh.model.types.insight import ServiceStats, SubscriptionStatus
from kmesh.model.types.zone import KDSSubscription, KumaCpVersion, ZoneInsightSpec, ZoneVersion

STILL_CONNECTED = "unable to delete Zone, Zone CP is still connected, please shut it down first"
ZONES = """\
type: Mesh
name: default
---
type: Zone
name: east
---
type: Zone
name: west
enabled: false
---
type: Zone
name: north
"""
HEADER = [
    "NAME",
    "STATUS",
    "LAST CONNECTED AGO",
    "LAST UPDATED AGO",
    "TOTAL UPDATES",
    "TOTAL ERRORS",
    "ZONE-CP VERSION",
]


class Guard:
    """The global's delete guard, over a set of connected zones the test controls."""

    def __init__(self) -> None:
        self.connected: set[str] = set()

    async def __call__(self, key: ResourceKey) -> FieldViolation | None:
        if key.type == "Zone" and key.name in self.connected:
            return FieldViolation("zone", STILL_CONNECTED)
        return None


def _subscription(sub_id: str, connected: datetime, **fields) -> KDSSubscription:
    return KDSSubscription(id=sub_id, global_instance_id="global-1", connect_time=connected, **fields)


def _status(updated: datetime | None, sent: int, rejected: int) -> SubscriptionStatus:
    total = ServiceStats(responses_sent=sent, responses_rejected=rejected)
    return SubscriptionStatus(last_update_time=updated, total=total)


def _owned(resource, zone: str):
    """``resource`` as the global keeps what zone ``zone`` sent: pinned to it and owned by its Zone."""
    labels = dict(resource.meta.labels) | {"kuma.io/zone": zone, "kuma.io/origin": "zone"}
    meta = msgspec.structs.replace(resource.meta, zone=zone, labels=labels, owner=ResourceKey("Zone", zone))
    return msgspec.structs.replace(resource, meta=meta)


def _insight(name: str, subscriptions: list[KDSSubscription]):
    insight = new_resource("ZoneInsight", name, ZoneInsightSpec(subscriptions=subscriptions))
    meta = msgspec.structs.replace(insight.meta, owner=ResourceKey("Zone", name))
    return msgspec.structs.replace(insight, meta=meta)


def _dataplane(zone: str, address: str):
    doc = {
        "type": "Dataplane",
        "name": "web-1",
        "mesh": "default",
        "networking": {"address": address, "inbound": [{"port": 80, "tags": {"kuma.io/service": "web"}}]},
    }
    return _owned(parse_resource(doc), zone)


@pytest.fixture
def guard() -> Guard:
    return Guard()


@pytest.fixture
def mesh_global(background_api, kmeshctl, guard):
    """A global with zones east (online, reconnected), west (disabled) and north (never connected)."""
    api = background_api(mode="global", delete_guard=guard)
    added = kmeshctl("config", "control-planes", "add", "--name", "global", "--address", api.url)
    assert added.returncode == 0, added.stderr
    applied = kmeshctl("apply", "-f", "-", stdin=ZONES)
    assert applied.returncode == 0, applied.stderr
    now = datetime.now(UTC)
    # Ages chosen inside one unit of kubectl's HumanDuration, so seconds of test time do not change them.
    east = [
        _subscription(
            "e1",
            now - timedelta(days=4, minutes=10),
            disconnect_time=now - timedelta(hours=3),
            status=_status(now - timedelta(hours=3), 40, 2),
            version=ZoneVersion(kuma_cp=KumaCpVersion(version="0.9.0")),
        ),
        _subscription(
            "e2",
            now - timedelta(minutes=150),
            status=_status(now - timedelta(minutes=20), 7, 1),
            version=ZoneVersion(kuma_cp=KumaCpVersion(version="1.0.0")),
        ),
    ]
    west = [_subscription("w1", now - timedelta(days=4, minutes=10))]
    api.run(api.store.upsert(_insight("east", east)))
    api.run(api.store.upsert(_insight("west", west)))
    return api


def _rows(stdout: str) -> list[list[str]]:
    header, *rows = stdout.splitlines()
    # Columns are three or more blanks apart; headers have single blanks inside.
    assert re.split(r" {3,}", header) == HEADER
    return [row.split() for row in rows]


EXPECTED_ROWS = [
    # Sorted by name, as the store lists them.
    ["east", "Online", "150m", "20m", "47", "3", "1.0.0"],
    ["north", "Offline", "-", "-", "-", "-", "-"],
    ["west", "Offline", "4d", "never", "0", "0", "-"],
]


def test_get_zones_and_inspect_zones_show_status_from_insights(mesh_global, kmeshctl) -> None:
    listed = kmeshctl("get", "zones")
    assert listed.returncode == 0, listed.stderr
    assert _rows(listed.stdout) == EXPECTED_ROWS
    inspected = kmeshctl("inspect", "zones")
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout == listed.stdout

    one = kmeshctl("get", "zone", "east")
    assert one.returncode == 0, one.stderr
    assert _rows(one.stdout) == [EXPECTED_ROWS[0]]


def test_inspect_zones_yaml_and_json_give_zone_and_insight(mesh_global, kmeshctl) -> None:
    as_json = kmeshctl("inspect", "zones", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["total"] == 3
    assert body["next"] is None
    items = {item["name"]: item for item in body["items"]}
    assert sorted(items) == ["east", "north", "west"]
    assert all(item["type"] == "ZoneOverview" for item in items.values())
    assert items["west"]["zone"] == {"enabled": False}
    assert items["east"]["zone"] == {}
    assert items["north"]["zoneInsight"] == {}
    stored = mesh_global.run(mesh_global.store.get(ResourceKey("ZoneInsight", "east")))
    insight_doc = to_document(stored)
    assert items["east"]["zoneInsight"] == {"subscriptions": insight_doc["subscriptions"]}
    assert items["east"]["creationTime"]

    as_yaml = kmeshctl("inspect", "zones", "-o", "yaml")
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == body

    # ``get`` keeps printing the Zones themselves, which re-apply.
    zones = json.loads(kmeshctl("get", "zones", "-o", "json").stdout)
    assert [item["type"] for item in zones["items"]] == ["Zone", "Zone", "Zone"]


def test_connected_zone_refusal_is_the_servers_exact_message(mesh_global, kmeshctl, guard) -> None:
    mesh_global.run(mesh_global.store.upsert(_dataplane("east", "10.0.1.1")))
    guard.connected.add("east")
    refused = kmeshctl("delete", "zone", "east")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == f"Error: zone: {STILL_CONNECTED}\n"
    assert kmeshctl("get", "zone", "east").returncode == 0

    guard.connected.discard("east")
    deleted = kmeshctl("delete", "zone", "east")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == 'deleted Zone "east"\n'
    # The cascade took what east had sent.
    left = json.loads(kmeshctl("get", "dataplanes", "-o", "json").stdout)
    assert left["total"] == 0
    assert _rows(kmeshctl("inspect", "zones").stdout) == EXPECTED_ROWS[1:]


def test_disabling_a_zone_through_apply(mesh_global, kmeshctl, guard) -> None:
    guard.connected.add("east")
    applied = kmeshctl("apply", "-f", "-", stdin="type: Zone\nname: east\nenabled: false\n")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == 'Zone "east" updated\n'
    rows = _rows(kmeshctl("get", "zones").stdout)
    assert rows[0] == ["east", "Offline", *EXPECTED_ROWS[0][2:]]


def test_dataplanes_of_two_zones_with_one_name(mesh_global, kmeshctl) -> None:
    mesh_global.run(mesh_global.store.upsert(_dataplane("east", "10.0.1.1")))
    mesh_global.run(mesh_global.store.upsert(_dataplane("west", "10.0.2.1")))

    table = kmeshctl("get", "dataplanes")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["MESH", "NAME", "ZONE"]
    assert sorted((row.split()[1], row.split()[2], row.split()[-2]) for row in rows) == [
        ("web-1", "east", "10.0.1.1"),
        ("web-1", "west", "10.0.2.1"),
    ]

    only_west = kmeshctl("get", "dataplanes", "--zone", "west")
    assert only_west.returncode == 0, only_west.stderr
    assert [row.split()[2] for row in only_west.stdout.splitlines()[1:]] == ["west"]
    east_json = json.loads(kmeshctl("get", "dataplanes", "-z", "east", "-o", "json").stdout)
    assert [item["networking"]["address"] for item in east_json["items"]] == ["10.0.1.1"]

    ambiguous = kmeshctl("get", "dataplane", "web-1")
    assert ambiguous.returncode == 1
    assert "exists in zones east, west" in ambiguous.stderr
    one = kmeshctl("get", "dataplane", "web-1", "--zone", "west", "-o", "json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["networking"]["address"] == "10.0.2.1"


def test_paging_within_a_zone_keeps_the_zone(mesh_global, kmeshctl) -> None:
    second = msgspec.structs.replace(
        _dataplane("east", "10.0.1.2"),
        meta=msgspec.structs.replace(_dataplane("east", "10.0.1.2").meta, name="web-2"),
    )
    for dataplane in (_dataplane("east", "10.0.1.1"), second, _dataplane("west", "10.0.2.1")):
        mesh_global.run(mesh_global.store.upsert(dataplane))
    first = kmeshctl("get", "dataplanes", "--zone", "east", "--size", "1")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[-1] == "Rest of the resources: kmeshctl get dataplanes --offset 1 --size 1 --zone east"
    rest = kmeshctl("get", "dataplanes", "--offset", "1", "--size", "1", "--zone", "east")
    assert rest.returncode == 0, rest.stderr
    shown = [line.split()[1:3] for line in (lines[1], rest.stdout.splitlines()[1])]
    assert sorted(shown) == [["web-1", "east"], ["web-2", "east"]]
