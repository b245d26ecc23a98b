"""Multi-zone on real processes: a global ``kmesh-cp`` and two zone control planes with their own SQLite
stores, zone tokens from the global's API, and ``zone-b``'s link to the global running through a
``FaultProxy`` (DESIGN.md, "Roles" and "Failure modes").

What is checked, scenario by scenario:
- policies go down to every zone labelled ``kuma.io/origin: global``, dataplanes go up to the global pinned
  to their zone, two zones may each have a ``web-1``;
- the global killed and restarted, a zone killed and restarted, the link cut or silently partitioned: each
  side keeps serving what it has, changes made meanwhile flow once the link is back, nothing is lost or
  duplicated, and what did not change keeps its version and modification time on every side; a zone that
  died while the global was down is not shown Online by the global's next run;
- the zone lifecycle on the global: auto-creation, Online/Offline, the delete guard and the cascade of a
  deleted zone, ``enabled: false``;
- refusals: policies written on a zone, a zone with a bad token, a proxy dialling the global.

Every test starts from a healthy cluster (the ``mz`` fixture) and names its own resources, so tests do not
depend on each other's order or outcome. Waits are bounded polls; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kmesh.kds import Hello, KdsMessage, Reject
from kmesh.testing import CpProcess
from kmesh.wire import MessageCodec, client_context

from .support import (
    ZONE_A,
    ZONE_B,
    ZONE_DELETE_REFUSED,
    Api,
    Cluster,
    RowKey,
    comparable,
    eventually,
    keyed,
    stored_rows,
    table,
)

T = TypeVar("T")
MESH = "default"
ZONES = (ZONE_A, ZONE_B)


# -- resources ----------------------------------------------------------------------------------------------


def permission(name: str, action: str = "Allow") -> dict[str, Any]:
    return {
        "type": "MeshTrafficPermission",
        "mesh": MESH,
        "name": name,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": action}}],
        },
    }


def retry(name: str, attempts: int = 3) -> dict[str, Any]:
    return {
        "type": "MeshRetry",
        "mesh": MESH,
        "name": name,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "to": [{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {"maxConnectAttempt": attempts}}}],
        },
    }


def dataplane(name: str, address: str, service: str = "web") -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": MESH,
        "name": name,
        "networking": {"address": address, "inbound": [{"port": 8080, "tags": {"kuma.io/service": service}}]},
    }


def ingress(name: str, address: str) -> dict[str, Any]:
    return {
        "type": "ZoneIngress",
        "name": name,
        "networking": {
            "address": address,
            "port": 10001,
            "advertisedAddress": "203.0.113.7",
            "advertisedPort": 443,
        },
    }


def mtp_path(name: str) -> str:
    return f"/meshes/{MESH}/meshtrafficpermissions/{name}"


def retry_path(name: str) -> str:
    return f"/meshes/{MESH}/meshretries/{name}"


def dp_path(name: str) -> str:
    return f"/meshes/{MESH}/dataplanes/{name}"


def mtp_key(name: str) -> RowKey:
    return ("MeshTrafficPermission", MESH, name, "")


def dp_key(name: str, zone: str = "") -> RowKey:
    return ("Dataplane", MESH, name, zone)


def logged(cp: CpProcess, msg: str, **fields: Any) -> list[dict[str, object]]:
    """The current run's log records with message ``msg`` and these field values."""
    return [
        r for r in cp.log_records() if r.get("msg") == msg and all(r.get(k) == v for k, v in fields.items())
    ]


def member(mapping: Mapping[str, T], key: str) -> T:
    """``mapping[key]``, failing with what is there instead when it is missing."""
    assert key in mapping, f"{key} not among {sorted(mapping)}"
    return mapping[key]


def assert_logged(cp: CpProcess, msg: str, **fields: Any) -> dict[str, object]:
    """The last log record of the current run with message ``msg`` and these fields; fails if none."""
    records = logged(cp, msg, **fields)
    assert records, f"no log record {msg!r} {fields} in:\n{cp.tail()}"
    return records[-1]


def synced_from_global(cluster: Cluster, zone: str, path: str) -> dict[str, Any]:
    """The zone's copy of the global's resource at ``path``: present, labelled as the global's, equal."""
    return synced_copy(cluster.g, cluster.api(zone), path)


def synced_copy(glob: Api, zone: Api, path: str) -> dict[str, Any]:
    copy = zone.ok(path)
    assert copy.get("labels", {}).get("kuma.io/origin") == "global", copy
    original = glob.ok(path)
    assert comparable(copy) == comparable(original), (copy, original)
    synced: dict[str, Any] = copy
    return synced


def action(doc: dict[str, Any]) -> str:
    """The action of a permission made by ``permission()``."""
    value: str = doc["spec"]["from"][0]["default"]["action"]
    return value


def absent(cluster: Cluster, zone: str, path: str) -> None:
    status, body = cluster.api(zone).get(path)
    assert status == 404, f"{zone} still has {path}: {status} {body}"


def zone_dataplanes(cluster: Cluster, zone: str) -> dict[str, dict[str, Any]]:
    """The dataplanes the global holds from ``zone``, by name."""
    return {d["name"]: d for d in cluster.g.items(f"/meshes/{MESH}/dataplanes", zone=zone)}


# -- 1. policies down, dataplanes up ------------------------------------------------------------------------


def test_policies_reach_every_zone_and_dataplanes_reach_the_global(mz: Cluster, tmp_path: Path) -> None:
    policy_file = tmp_path / "permission.yaml"
    policy_file.write_text(yaml.safe_dump(permission("s1-allow")))
    applied = mz.ctl(mz.glob, "apply", "-f", str(policy_file))
    assert applied.returncode == 0, applied.stderr
    assert "s1-allow" in applied.stdout
    assert "created" in applied.stdout
    mz.g.put_ok(retry_path("s1-retry"), retry("s1-retry"))

    for zone in ZONES:
        for path in (mtp_path("s1-allow"), retry_path("s1-retry")):
            eventually(partial(synced_from_global, mz, zone, path), f"{path} in {zone}")

    # Both zones make a web-1: no name rewriting, the global keeps them apart by zone.
    mz.api(ZONE_A).put_ok(dp_path("web-1"), dataplane("web-1", "10.1.0.1"))
    mz.api(ZONE_B).put_ok(dp_path("web-1"), dataplane("web-1", "10.2.0.1"))
    for zone, address in ((ZONE_A, "10.1.0.1"), (ZONE_B, "10.2.0.1")):

        def arrived(zone: str = zone, address: str = address) -> None:
            docs = zone_dataplanes(mz, zone)
            assert "web-1" in docs, f"global has from {zone}: {sorted(docs)}"
            web = docs["web-1"]
            assert web["networking"]["address"] == address
            assert web["labels"] == {"kuma.io/origin": "zone", "kuma.io/zone": zone}
            one = mz.g.ok(dp_path("web-1"), zone=zone)
            assert one["networking"]["address"] == address

        eventually(arrived, f"web-1 of {zone} on the global")

    # Without ?zone= the name alone is ambiguous on the global, and the answer says why.
    status, body = mz.g.get(dp_path("web-1"))
    assert status == 400
    assert "zone-a, zone-b" in body["details"]

    # Dataplanes go up only: a zone never holds another zone's dataplanes.
    for zone, address in ((ZONE_A, "10.1.0.1"), (ZONE_B, "10.2.0.1")):
        webs = [d for d in mz.api(zone).items(f"/meshes/{MESH}/dataplanes") if d["name"] == "web-1"]
        assert [d["networking"]["address"] for d in webs] == [address]

    listed = mz.ctl(mz.glob, "get", "dataplanes")
    assert listed.returncode == 0, listed.stderr
    rows = [row for row in table(listed.stdout) if row["NAME"] == "web-1"]
    assert sorted(row["ZONE"] for row in rows) == [ZONE_A, ZONE_B], listed.stdout
    mz.converge()


# -- 2. the global killed and restarted ---------------------------------------------------------------------


def test_global_killed_and_restarted(mz: Cluster) -> None:
    mz.g.put_ok(mtp_path("s2-keep"), permission("s2-keep"))
    mz.api(ZONE_A).put_ok(dp_path("s2-dp-a"), dataplane("s2-dp-a", "10.1.2.1"))
    mz.api(ZONE_B).put_ok(dp_path("s2-dp-b"), dataplane("s2-dp-b", "10.2.2.1"))
    mz.converge()
    before = mz.snapshot()
    docs_before = {zone: mz.api(zone).ok(mtp_path("s2-keep")) for zone in ZONES}
    old_instance = {zone: mz.newest_subscription(zone)["globalInstanceId"] for zone in ZONES}

    assert mz.glob.kill() == -signal.SIGKILL
    for zone in ZONES:
        eventually(
            partial(assert_logged, mz.zones[zone], "disconnected from the global control plane"),
            f"{zone} to notice the global is gone",
        )
        # The zone keeps serving what it has.
        assert mz.api(zone).ok(mtp_path("s2-keep")) == docs_before[zone]
    # Proxies still join a zone while the global is down.
    mz.api(ZONE_A).put_ok(dp_path("s2-during-outage"), dataplane("s2-during-outage", "10.1.2.2"))

    mz.glob.start()
    for zone in ZONES:
        newest = mz.wait_online(zone)
        assert newest["globalInstanceId"] != old_instance[zone]
    mz.g.put_ok(mtp_path("s2-after"), permission("s2-after", "Deny"))
    for zone in ZONES:
        eventually(partial(synced_from_global, mz, zone, mtp_path("s2-after")), f"s2-after in {zone}")
    eventually(
        lambda: member(zone_dataplanes(mz, ZONE_A), "s2-during-outage"),
        "the outage's dataplane on the global",
    )
    mz.converge()

    for zone in ZONES:
        assert mz.api(zone).ok(mtp_path("s2-keep")) == docs_before[zone]
    # Nothing rewritten by the restart or the resync, on any side.
    mz.assert_untouched_since(before, {})


def test_a_zone_that_died_while_the_global_was_down_is_offline_once_the_global_is_back(mz: Cluster) -> None:
    # Both down at once: the global's store still says zone-a's last connection is open, since the killed
    # global could not write its end. The global's new run must not take that for a live zone.
    assert mz.glob.kill() == -signal.SIGKILL
    assert mz.zones[ZONE_A].kill() == -signal.SIGKILL
    mz.glob.start()
    mz.wait_online(ZONE_B)
    mz.wait_offline(ZONE_A)
    statuses = mz.zone_statuses()
    assert statuses[ZONE_A] == "Offline"
    assert statuses[ZONE_B] == "Online"


# -- 3. a zone killed and restarted -------------------------------------------------------------------------


def test_zone_killed_and_restarted(mz: Cluster) -> None:
    g, zone_a = mz.g, mz.zones[ZONE_A]
    for name in ("s3-keep", "s3-change", "s3-delete"):
        g.put_ok(mtp_path(name), permission(name))
    mz.api(ZONE_A).put_ok(dp_path("s3-dp"), dataplane("s3-dp", "10.1.3.1"))
    mz.converge()
    before = mz.snapshot()
    keep_before = mz.api(ZONE_A).ok(mtp_path("s3-keep"))

    assert zone_a.kill() == -signal.SIGKILL
    mz.wait_offline(ZONE_A)
    statuses = mz.zone_statuses()
    assert statuses[ZONE_A] == "Offline"
    assert statuses[ZONE_B] == "Online"
    # The global keeps the inventory of an offline zone.
    assert "s3-dp" in zone_dataplanes(mz, ZONE_A)

    g.put_ok(mtp_path("s3-change"), permission("s3-change", "Deny"), expect=200)
    status, _ = g.delete(mtp_path("s3-delete"))
    assert status == 200
    eventually(lambda: absent(mz, ZONE_B, mtp_path("s3-delete")), "s3-delete gone from zone-b")

    def changed_in(zone: str) -> None:
        copy = synced_from_global(mz, zone, mtp_path("s3-change"))
        assert action(copy) == "Deny", copy

    eventually(lambda: changed_in(ZONE_B), "s3-change changed in zone-b")

    # While zone-a is down, its store still holds everything it had.
    down = stored_rows(zone_a.db_path)
    for name in ("s3-keep", "s3-change", "s3-delete"):
        assert down[mtp_key(name)] == before[ZONE_A][mtp_key(name)]

    zone_a.start()
    mz.wait_online(ZONE_A)
    assert mz.zone_statuses()[ZONE_A] == "Online"
    eventually(lambda: absent(mz, ZONE_A, mtp_path("s3-delete")), "s3-delete gone from zone-a")
    eventually(lambda: changed_in(ZONE_A), "s3-change changed in zone-a")
    mz.converge()
    # s3-keep came from zone-a's own store, not re-sent: same document, same version and times.
    assert mz.api(ZONE_A).ok(mtp_path("s3-keep")) == keep_before
    changes = {mtp_key("s3-change"), mtp_key("s3-delete")}
    mz.assert_untouched_since(before, {"global": changes, ZONE_A: changes, ZONE_B: changes})


# -- 4. the global-zone link cut or partitioned -------------------------------------------------------------


def _changes_during_partition(mz: Cluster, tag: str) -> dict[str, set[RowKey]]:
    """Change both sides while zone-b is cut off; check each side still serves what it has and that
    nothing crossed; return the rows each side will see change."""
    g, b = mz.g, mz.api(ZONE_B)
    # Each side keeps working on what it has.
    synced_from_global(mz, ZONE_B, mtp_path(f"{tag}-update"))
    assert f"{tag}-dp-old" in zone_dataplanes(mz, ZONE_B)

    g.put_ok(mtp_path(f"{tag}-new"), permission(f"{tag}-new"))
    g.put_ok(mtp_path(f"{tag}-update"), permission(f"{tag}-update", "Deny"), expect=200)
    b.put_ok(dp_path(f"{tag}-dp-new"), dataplane(f"{tag}-dp-new", "10.2.4.2"))
    status, _ = b.delete(dp_path(f"{tag}-dp-old"))
    assert status == 200
    # Zone-a, still connected, gets the global's changes; zone-b, cut off, does not (yet).
    eventually(lambda: synced_from_global(mz, ZONE_A, mtp_path(f"{tag}-new")), f"{tag}-new in zone-a")
    absent(mz, ZONE_B, mtp_path(f"{tag}-new"))
    assert action(b.ok(mtp_path(f"{tag}-update"))) == "Allow"
    on_global = zone_dataplanes(mz, ZONE_B)
    assert f"{tag}-dp-old" in on_global
    assert f"{tag}-dp-new" not in on_global
    policy_changes = {mtp_key(f"{tag}-update")}
    return {
        "global": policy_changes | {dp_key(f"{tag}-dp-old", ZONE_B)},
        ZONE_A: policy_changes,
        ZONE_B: policy_changes | {dp_key(f"{tag}-dp-old")},
    }


def _healed(mz: Cluster, tag: str) -> None:
    def flowed() -> None:
        copy = synced_from_global(mz, ZONE_B, mtp_path(f"{tag}-new"))
        assert copy["labels"]["kuma.io/origin"] == "global"
        updated = synced_from_global(mz, ZONE_B, mtp_path(f"{tag}-update"))
        assert action(updated) == "Deny"
        on_global = zone_dataplanes(mz, ZONE_B)
        assert f"{tag}-dp-new" in on_global, sorted(on_global)
        assert f"{tag}-dp-old" not in on_global, sorted(on_global)

    eventually(flowed, "the partition's changes to flow both ways")
    mz.converge()


def _prepare_partition(mz: Cluster, tag: str) -> None:
    mz.g.put_ok(mtp_path(f"{tag}-keep"), permission(f"{tag}-keep"))
    mz.g.put_ok(mtp_path(f"{tag}-update"), permission(f"{tag}-update"))
    mz.api(ZONE_B).put_ok(dp_path(f"{tag}-dp-old"), dataplane(f"{tag}-dp-old", "10.2.4.1"))
    mz.api(ZONE_B).put_ok(dp_path(f"{tag}-dp-keep"), dataplane(f"{tag}-dp-keep", "10.2.4.3"))
    mz.converge()


def test_link_cut_and_refused(mz: Cluster) -> None:
    assert mz.link_b is not None
    _prepare_partition(mz, "s4cut")
    before = mz.snapshot()
    old = mz.newest_subscription(ZONE_B)["id"]

    # New connections are refused and the live one is reset both ways: a hard link failure.
    mz.link_b.block("refuse")
    assert mz.link_b.cut() >= 1
    mz.wait_offline(ZONE_B)
    assert mz.online(ZONE_A)
    changed = _changes_during_partition(mz, "s4cut")

    mz.link_b.unblock()
    assert mz.wait_online(ZONE_B)["id"] != old
    _healed(mz, "s4cut")
    mz.assert_untouched_since(before, changed)


def test_silent_partition_then_heal(mz: Cluster) -> None:
    assert mz.link_b is not None
    _prepare_partition(mz, "s4part")
    before = mz.snapshot()

    # Bytes stop both ways but every socket stays open: only the missing heartbeats reveal it.
    mz.link_b.block("hold")
    offline = mz.wait_offline(ZONE_B)
    eventually(
        partial(
            assert_logged, mz.glob, "zone control plane disconnected", zone=ZONE_B, code="heartbeat_timeout"
        ),
        "the global to log zone-b's heartbeat timeout",
    )
    assert mz.online(ZONE_A)
    changed = _changes_during_partition(mz, "s4part")

    mz.link_b.unblock()
    assert mz.wait_online(ZONE_B)["id"] != offline["id"]
    _healed(mz, "s4part")
    mz.assert_untouched_since(before, changed)


# -- 5. zone lifecycle on the global ------------------------------------------------------------------------


def test_zone_is_created_on_first_connect_and_shows_online_then_offline(mz: Cluster) -> None:
    zone = "zone-c"
    assert mz.g.get(f"/zones/{zone}")[0] == 404
    token = mz.zone_token(zone)
    assert mz.g.get(f"/zones/{zone}")[0] == 404  # a token alone creates nothing

    with mz.extra_zone(zone, token) as zone_c:
        created = eventually(lambda: mz.g.ok(f"/zones/{zone}"), "Zone zone-c created on the global")
        assert created.get("enabled", True) is True
        newest = mz.wait_online(zone)
        assert newest["zoneInstanceId"]
        assert mz.zone_statuses()[zone] == "Online"
        # A new zone gets the global's meshes and policies like any other.
        eventually(
            lambda: synced_copy(mz.g, Api(zone_c.api_url), f"/meshes/{MESH}"), "Mesh default in zone-c"
        )
        assert zone_c.stop() == 0
        offline = mz.wait_offline(zone)
        assert offline["id"] == newest["id"]
        assert mz.zone_statuses()[zone] == "Offline"

    # The zone CP is gone, so its Zone may go too (and the next module run starts clean).
    deleted = mz.ctl(mz.glob, "delete", "zone", zone)
    assert deleted.returncode == 0, deleted.stderr
    assert mz.g.get(f"/zones/{zone}")[0] == 404


def test_deleting_a_connected_zone_is_refused_and_a_stopped_one_takes_its_resources(mz: Cluster) -> None:
    a = mz.api(ZONE_A)
    for name, address in (("s5-dp-1", "10.1.5.1"), ("s5-dp-2", "10.1.5.2")):
        a.put_ok(dp_path(name), dataplane(name, address))
    a.put_ok("/zoneingresses/s5-ingress-a", ingress("s5-ingress-a", "10.1.5.10"))
    mz.converge()
    assert {"s5-dp-1", "s5-dp-2"} <= set(zone_dataplanes(mz, ZONE_A))
    assert "s5-ingress-a" in keyed_names(mz.api(ZONE_B).items("/zoneingresses"))
    b_dataplanes = zone_dataplanes(mz, ZONE_B)

    refused = mz.ctl(mz.glob, "delete", "zone", ZONE_A)
    assert refused.returncode != 0
    assert refused.stderr.strip() == f"Error: {ZONE_DELETE_REFUSED}"
    assert mz.g.ok(f"/zones/{ZONE_A}")["name"] == ZONE_A
    assert {"s5-dp-1", "s5-dp-2"} <= set(zone_dataplanes(mz, ZONE_A))

    zone_a = mz.zones[ZONE_A]
    assert zone_a.stop() == 0
    mz.wait_offline(ZONE_A)
    deleted = mz.ctl(mz.glob, "delete", "zone", ZONE_A)
    assert deleted.returncode == 0, deleted.stderr
    assert ZONE_A in deleted.stdout
    # Everything zone-a had sent went with its Zone, and nothing of zone-b did.
    assert mz.g.get(f"/zones/{ZONE_A}")[0] == 404
    assert mz.g.get(f"/zone-insights/{ZONE_A}")[0] == 404
    assert mz.g.items(f"/meshes/{MESH}/dataplanes", zone=ZONE_A) == []
    assert mz.g.items("/zoneingresses", zone=ZONE_A) == []
    assert zone_dataplanes(mz, ZONE_B) == b_dataplanes
    # ... and zone-b no longer routes to zone-a's ingress.
    eventually(
        lambda: _assert_not_in("s5-ingress-a", keyed_names(mz.api(ZONE_B).items("/zoneingresses"))),
        "zone-a's ingress gone from zone-b",
    )

    # Zone-a comes back: the Zone is created again and zone-a sends what it still holds.
    zone_a.start()
    mz.wait_online(ZONE_A)
    eventually(lambda: mz.g.ok(f"/zones/{ZONE_A}"), "Zone zone-a created again")
    mz.converge()
    assert {"s5-dp-1", "s5-dp-2"} <= set(zone_dataplanes(mz, ZONE_A))
    assert "s5-ingress-a" in keyed_names(mz.api(ZONE_B).items("/zoneingresses"))


def test_a_disabled_zone_is_offline_and_its_ingress_leaves_the_other_zones(mz: Cluster) -> None:
    a, b = mz.api(ZONE_A), mz.api(ZONE_B)
    a.put_ok("/zoneingresses/s5-ingress-en", ingress("s5-ingress-en", "10.1.5.20"))
    mz.g.put_ok(mtp_path("s5-en-policy"), permission("s5-en-policy"))
    mz.converge()
    zone_before = mz.g.ok(f"/zones/{ZONE_A}")
    connected = mz.newest_subscription(ZONE_A)

    disabled = mz.g.put_ok(f"/zones/{ZONE_A}", {"type": "Zone", "name": ZONE_A, "enabled": False}, expect=200)
    assert disabled["enabled"] is False
    closed = mz.wait_offline(ZONE_A)
    assert closed["id"] == connected["id"]
    assert not mz.online(ZONE_A)
    assert mz.zone_statuses()[ZONE_A] == "Offline"
    # The zone is told why, when its connection is closed and each time it tries again.
    reason = f"zone {ZONE_A} is disabled on the global control plane"
    disconnected = eventually(
        partial(
            assert_logged,
            mz.zones[ZONE_A],
            "disconnected from the global control plane",
            code="zone_disabled",
        ),
        "zone-a to log why the global closed its connection",
    )
    assert reason in str(disconnected["reason"])
    eventually(
        partial(
            assert_logged,
            mz.zones[ZONE_A],
            "cannot connect to the global",
            code="zone_disabled",
            reason=reason,
        ),
        "zone-a to log why the global refuses it",
    )
    eventually(
        lambda: _assert_not_in("s5-ingress-en", keyed_names(b.items("/zoneingresses"))),
        "zone-a's ingress gone from zone-b",
    )
    # The global keeps zone-a's inventory, and zone-a keeps serving what it has.
    assert "s5-ingress-en" in keyed_names(mz.g.items("/zoneingresses", zone=ZONE_A))
    synced_from_global(mz, ZONE_A, mtp_path("s5-en-policy"))

    mz.g.put_ok(f"/zones/{ZONE_A}", {"type": "Zone", "name": ZONE_A, "enabled": True}, expect=200)
    assert mz.wait_online(ZONE_A)["id"] != connected["id"]
    assert mz.zone_statuses()[ZONE_A] == "Online"
    eventually(
        lambda: member(keyed_names(b.items("/zoneingresses")), "s5-ingress-en"),
        "zone-a's ingress back in zone-b",
    )
    mz.converge()
    assert mz.g.ok(f"/zones/{ZONE_A}")["creationTime"] == zone_before["creationTime"]


def keyed_names(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: doc for (_, name), doc in keyed(docs).items()}


def _assert_not_in(name: str, docs: dict[str, Any]) -> None:
    assert name not in docs, f"{name} still in {sorted(docs)}"


# -- 6. refusals --------------------------------------------------------------------------------------------


def test_a_zone_refuses_policies_and_accepts_dataplanes(mz: Cluster, tmp_path: Path) -> None:
    a, zone_a = mz.api(ZONE_A), mz.zones[ZONE_A]
    status, body = a.put(mtp_path("s6-local"), permission("s6-local"))
    assert 400 <= status < 500
    assert "managed by the global control plane" in body["details"]
    policy_file = tmp_path / "permission.yaml"
    policy_file.write_text(yaml.safe_dump(permission("s6-local")))
    applied = mz.ctl(zone_a, "apply", "-f", str(policy_file))
    assert applied.returncode != 0
    assert "managed by the global control plane" in applied.stderr
    absent(mz, ZONE_A, mtp_path("s6-local"))
    assert mz.g.get(mtp_path("s6-local"))[0] == 404

    dp_file = tmp_path / "dataplane.yaml"
    dp_file.write_text(yaml.safe_dump(dataplane("s6-dp", "10.1.6.1")))
    applied = mz.ctl(zone_a, "apply", "-f", str(dp_file))
    assert applied.returncode == 0, applied.stderr
    assert "s6-dp" in applied.stdout
    assert "created" in applied.stdout
    eventually(lambda: member(zone_dataplanes(mz, ZONE_A), "s6-dp"), "s6-dp on the global")


def test_a_zone_with_a_bad_token_is_refused_with_the_reason(mz: Cluster) -> None:
    zones_before = keyed_names(mz.g.items("/zones"))
    garbage = mz.root / "garbage.token"
    garbage.write_text("not-a-token")
    # (zone, its token, what the reason must name)
    cases = (
        ("zone-d", mz.zone_token(ZONE_A), ("zone-a", "zone-d")),  # a valid token, for another zone
        ("zone-e", garbage, ("not a signed token",)),
    )
    for zone, token, named in cases:
        with mz.extra_zone(zone, token) as cp:

            def refused(cp: CpProcess = cp, zone: str = zone) -> dict[str, object]:
                records = logged(cp, "cannot connect to the global", zone=zone, code="unauthenticated")
                assert records, f"no refusal logged by {zone} yet:\n{cp.tail()}"
                return records[-1]

            record = eventually(refused, f"{zone} to be refused")
            reason = str(record["reason"])
            for words in named:
                assert words in reason, reason
            refusal = eventually(
                partial(
                    assert_logged, mz.glob, "refused a zone control plane", zone=zone, code="unauthenticated"
                ),
                f"the global to log refusing {zone}",
            )
            assert refusal["reason"] == reason
            # A token is a credential: neither side writes it in its log.
            secret = token.read_text()
            assert secret not in cp.logs()
            assert secret not in mz.glob.logs()
    # A refused zone gets no Zone, no insight, nothing.
    assert keyed_names(mz.g.items("/zones")).keys() == zones_before.keys()
    assert mz.g.get("/zone-insights/zone-d")[0] == 404


async def test_a_proxy_dialling_the_global_is_refused(mz: Cluster) -> None:
    zones_before = mz.g.items("/zones")
    context = client_context(ca_file=str(mz.ca_file))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", mz.kds_port, ssl=context, server_hostname="127.0.0.1"
    )
    codec = MessageCodec[KdsMessage](KdsMessage)
    try:
        # What a sidecar says to its zone control plane, sent to the global's KDS port by mistake.
        writer.write(codec.encode(Hello(protocol="dp/1", token="a-dataplane-token", instance_id="web-1")))
        received: list[KdsMessage] = []
        while not received:
            data = await asyncio.wait_for(reader.read(65536), 30)
            assert data, "the global hung up without saying why"
            received.extend(codec.feed(data))
        assert await asyncio.wait_for(reader.read(65536), 30) == b""  # then it hangs up
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    assert len(received) == 1
    reject = received[0]
    assert isinstance(reject, Reject)
    assert reject.code == "unsupported_protocol"
    assert "accepts only zone control planes" in reject.reason
    assert "dp/1" in reject.reason
    assert "proxies must connect to their zone control plane" in reject.reason
    assert mz.g.items("/zones") == zones_before

    def logged_refusal() -> None:
        records = logged(mz.glob, "KDS connection ended before a zone introduced itself", code=reject.code)
        assert [r["reason"] for r in records] == [reject.reason], mz.glob.tail()

    eventually(logged_refusal, "the global to log the refusal")
