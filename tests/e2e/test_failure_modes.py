"""DESIGN.md's failure modes 1-4, on real processes with real traffic: the e2e ``Cluster`` (a global, zone-a
dialling it directly, zone-b through the fault proxy ``link_b``), ``kmesh-proxy`` ingresses and sidecars,
and echo apps (``examples/apps/echo.py``). The only test code on the data path is the client that opens
connections to the caller's sidecar outbound (``traffic_support.call``).

The module's mesh ``failover`` (its own, so it shares nothing with ``test_traffic``) has builtin mTLS and
locality awareness off; a MeshTrafficPermission lets ``client`` in. Each zone runs an ingress.

    zone-a: echo-a-1 (echo)                 client -> echo
    zone-b: echo-b-1, echo-b-2 (echo)

1. Global offline (SIGTERM): calls are answered from both zones; a new echo instance still joins zone-b;
   once the global is back, both zones are Online again.
2. Zone-b's control plane offline (SIGKILL): calls are answered from both zones on the last config; a new
   proxy cannot join zone-b (``/ready`` 503 naming the control plane) until the control plane is back.
3. Global-zone link down (``link_b`` cut and blocked): traffic flows; a MeshLoadBalancingStrategy made on
   the global reaches zone-a (zone-a answers every call) while zone-b, cut off, has not got it; once the
   link opens zone-b gets it too.
4. Zone-zone link down (zone-b's ingress killed), locality awareness off: calls that went to zone-b move
   to zone-a (the refused connect ejects the ingress endpoint and the same call is tried on the next
   endpoint) until every call is answered by zone-a, and stay there when the ejection runs out and the
   ingress is tried, and ejected, again; a MeshHealthCheck then marks the ingress endpoint unhealthy in
   the client's ``/config_dump`` ``upstreams``. The calls left unanswered and the switch time are printed,
   not asserted; with the ingress back zone-b answers again.

Every test puts back what it stopped and leaves the cluster healthy (``Cluster.ensure_healthy``). Waits are
bounded polls; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest

from kmesh.testing import ProxyProcess, free_port

from .support import ZONE_A, ZONE_B, Cluster, eventually, eventually_async
from .traffic_support import (
    CallStream,
    ProxyFactory,
    Traffic,
    calls,
    cluster_of,
    echo_app,
    echo_mesh,
    endpoint_summary,
    locality_doc,
    tally,
    until_all_from,
)

pytestmark = pytest.mark.slow

MESH: Final = "failover"
ROUND: Final = 60  # calls per check that both zones answer (zone-b weighs 2 instances against 1)
# How long a proxy that cannot reach its control plane is watched to stay unready (an observation window,
# not a timing assertion).
UNREADY_WATCH_S: Final = 3.0
LOCALITY_POLICY: Final = "echo-local-first"
HEALTH_CHECK: Final = "echo-check"
SWITCH_BOUND_S: Final = 60.0  # only turns a hang into a failure; the switch time is printed
ALL_FROM_A_IN_A_ROW: Final = 40


# -- resources ----------------------------------------------------------------------------------------------


def health_check_doc() -> dict[str, Any]:
    return {
        "type": "MeshHealthCheck",
        "mesh": MESH,
        "name": HEALTH_CHECK,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "to": [
                {
                    "targetRef": {"kind": "MeshService", "name": "echo"},
                    "default": {
                        "interval": "1s",
                        "timeout": "1s",
                        "unhealthyThreshold": 2,
                        "healthyThreshold": 1,
                        "tcp": {},
                    },
                }
            ],
        },
    }


LOCALITY_PATH: Final = f"/meshes/{MESH}/meshloadbalancingstrategies/{LOCALITY_POLICY}"
HEALTH_CHECK_PATH: Final = f"/meshes/{MESH}/meshhealthchecks/{HEALTH_CHECK}"


# -- the module's mesh --------------------------------------------------------------------------------------


def _client_cluster(t: Traffic) -> dict[str, Any]:
    return cluster_of(t.sidecars["client"], t.outbound_ports["client"])


def _wait_for_routes(t: Traffic) -> None:
    """The client's echo cluster holds echo-a-1 directly and zone-b's ingress weighing two instances, all at
    one priority."""

    def ready() -> None:
        cluster = _client_cluster(t)
        local = sum(1 for e in cluster["endpoints"] if e["via"] == "local")
        remote = sum(e["weight"] for e in cluster["endpoints"] if e["zone"] == ZONE_B)
        remote //= cluster["weight_scale"]
        assert (local, remote) == (1, 2), f"(local, zone-b instances) = {(local, remote)}"
        priorities = {p for *_, p in endpoint_summary(cluster)}
        assert priorities == {0}, f"priorities {priorities}"

    eventually(ready, "the client's echo cluster to list every instance")


@pytest.fixture(scope="module")
def mesh(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    root = tmp_path_factory.mktemp("failure-modes")
    callers = [(ZONE_A, "client", "client", "echo")]
    with echo_mesh(cluster, root, MESH, allowed=["client"], callers=callers, ready=_wait_for_routes) as t:
        yield t


@pytest.fixture
def fm(mesh: Traffic) -> Iterator[Traffic]:
    """The module's mesh, with the cluster healthy and every proxy of the module running, before and after
    the test (a test that failed half-way does not decide the next one's outcome)."""
    mesh.cluster.ensure_healthy()
    _wait_for_routes(mesh)
    try:
        yield mesh
    finally:
        mesh.cluster.ensure_healthy()
        for proxy in mesh.proxies():
            if not proxy.running:
                proxy.start()
        for app in mesh.apps.values():
            if not app.running:
                app.start()


# -- helpers ------------------------------------------------------------------------------------------------


async def both_zones_answer(t: Traffic, when: str) -> None:
    """A round of calls through the client is answered in full, by both zones."""
    zones, instances, unanswered = tally(await calls(t.outbound_ports["client"], ROUND, parallel=10))
    print(f"{when}: per zone {dict(zones)}, per instance {dict(instances)}, unanswered {unanswered}")
    assert unanswered == 0, f"{when}: {unanswered} of {ROUND} calls unanswered ({dict(zones)})"
    assert zones[ZONE_A] > 0, f"{when}: zone-a did not answer: {dict(zones)}"
    assert zones[ZONE_B] > 0, f"{when}: zone-b did not answer: {dict(zones)}"


def new_echo_instance(t: Traffic, name: str, zone: str) -> ProxyProcess:
    """One more echo instance (its app started, its sidecar made, not started), registered in ``t`` so the
    module's teardown stops it whatever happens."""
    app = t.apps[name] = echo_app(name, zone, free_port(), t.root).start()
    return ProxyFactory(t).service(zone, name, "echo", app.port)


def remove_instance(t: Traffic, name: str) -> None:
    """Stop an instance ``new_echo_instance`` made (SIGTERM: its sidecar leaves the mesh) and forget it."""
    proxy = t.sidecars.pop(name)
    try:
        if proxy.running:
            proxy.stop()
    finally:
        proxy.close()
        t.apps.pop(name).stop()


def zone_b_priority(t: Traffic, want: int) -> None:
    cluster = _client_cluster(t)
    summary = endpoint_summary(cluster)
    assert {p for _, zone, _, p in summary if zone == ZONE_B} == {want}, summary
    assert cluster["lb"]["locality_aware"] is bool(want), cluster["lb"]


# -- 1. global offline --------------------------------------------------------------------------------------


async def test_global_offline_traffic_flows_and_proxies_still_join(fm: Traffic) -> None:
    cluster = fm.cluster
    stopped = time.monotonic()
    status = cluster.glob.stop()
    print(f"\nglobal stopped (SIGTERM) with status {status} in {time.monotonic() - stopped:.2f}s")
    await both_zones_answer(fm, "global offline")

    newcomer = new_echo_instance(fm, "echo-b-3", ZONE_B)
    try:
        joined = time.monotonic()
        newcomer.start()
        print(f"echo-b-3 joined zone-b in {time.monotonic() - joined:.2f}s with the global offline")
        ready, said = newcomer.ready()
        assert ready, said
        names = {d["name"] for d in cluster.api(ZONE_B).items(f"/meshes/{MESH}/dataplanes")}
        assert "echo-b-3" in names, f"zone-b does not list echo-b-3: {names}"
        await both_zones_answer(fm, "global offline, echo-b-3 joined")

        restarted = time.monotonic()
        cluster.glob.start()
        for zone in (ZONE_A, ZONE_B):
            cluster.wait_online(zone)
        print(f"global restarted; both zones Online after {time.monotonic() - restarted:.2f}s")
        assert cluster.zone_statuses() == {ZONE_A: "Online", ZONE_B: "Online"}

        def synced() -> None:
            names = {d["name"] for d in cluster.g.items(f"/meshes/{MESH}/dataplanes", zone=ZONE_B)}
            assert "echo-b-3" in names, f"the global lists of zone-b only {names}"

        eventually(synced, "the global to learn echo-b-3 from zone-b")
        await both_zones_answer(fm, "global back")
    finally:
        remove_instance(fm, "echo-b-3")


# -- 2. zone control plane offline --------------------------------------------------------------------------


async def test_zone_cp_offline_traffic_flows_and_new_proxies_wait(fm: Traffic) -> None:
    cluster = fm.cluster
    zone_b = cluster.zones[ZONE_B]
    status = zone_b.kill()
    print(f"\nzone-b control plane killed (status {status})")
    await both_zones_answer(fm, "zone-b CP offline")
    cluster.wait_offline(ZONE_B)
    await both_zones_answer(fm, "zone-b CP offline, zone-b Offline on the global")
    for name in ("echo-b-1", "echo-b-2"):
        ready, said = fm.sidecars[name].ready()
        assert ready, f"{name} without its control plane: {said}"

    newcomer = new_echo_instance(fm, "echo-b-4", ZONE_B)
    try:
        newcomer.launch()
        watch_until = time.monotonic() + UNREADY_WATCH_S
        said = ""
        while time.monotonic() < watch_until:
            ready, said = newcomer.ready()
            assert not ready, "echo-b-4 became ready with zone-b's control plane down"
            if not said.startswith("no answer"):  # its admin endpoint may not listen yet
                assert said.startswith("503"), said
                assert "control plane" in said, said
            await asyncio.sleep(0.2)
        print(f"echo-b-4 /ready while zone-b's control plane is down: {said}")
        assert "control plane" in said, said
        await both_zones_answer(fm, "zone-b CP offline, echo-b-4 waiting")

        restarted = time.monotonic()
        zone_b.start()
        newcomer.wait_ready(timeout_s=45)
        print(f"zone-b control plane restarted; echo-b-4 ready after {time.monotonic() - restarted:.2f}s")
        cluster.wait_online(ZONE_B)
        names = {d["name"] for d in cluster.api(ZONE_B).items(f"/meshes/{MESH}/dataplanes")}
        assert {"echo-b-1", "echo-b-2", "echo-b-4"} <= names, f"zone-b lists {names}"
        await both_zones_answer(fm, "zone-b CP back")
    finally:
        remove_instance(fm, "echo-b-4")


# -- 3. global-zone link down -------------------------------------------------------------------------------


async def test_link_down_zone_a_gets_a_policy_and_zone_b_catches_up(fm: Traffic) -> None:
    cluster = fm.cluster
    assert cluster.link_b is not None
    port = fm.outbound_ports["client"]
    cut = cluster.link_b.cut()
    cluster.link_b.block()
    print(f"\nlink_b cut ({cut} connections) and blocked")
    try:
        cluster.wait_offline(ZONE_B)
        await both_zones_answer(fm, "link down, zone-b Offline on the global")

        changed = time.monotonic()
        cluster.g.put_ok(LOCALITY_PATH, locality_doc(MESH, LOCALITY_POLICY))
        eventually(lambda: zone_b_priority(fm, 1), "the client's echo cluster to prefer zone-a")
        await until_all_from(port, ZONE_A)
        print(
            f"locality policy made on the global: zone-a answers all after {time.monotonic() - changed:.2f}s"
        )
        status, body = cluster.api(ZONE_B).get(LOCALITY_PATH)
        assert status == 404, f"zone-b got the policy through a blocked link: {status} {body}"
    finally:
        cluster.link_b.unblock()
    try:
        opened = time.monotonic()

        def zone_b_has_it() -> None:
            status, body = cluster.api(ZONE_B).get(LOCALITY_PATH)
            assert status == 200, f"zone-b: {status} {body}"

        eventually(zone_b_has_it, "zone-b to get the policy once the link is open")
        cluster.wait_online(ZONE_B)
        print(f"link open: zone-b holds the policy after {time.monotonic() - opened:.2f}s")
        cluster.converge()
        await until_all_from(port, ZONE_A)
    finally:
        status, body = cluster.g.delete(LOCALITY_PATH)
        assert status == 200, f"DELETE {LOCALITY_PATH}: {status} {body}"
        eventually(lambda: zone_b_priority(fm, 0), "the client's echo cluster to spread over zones again")
    await both_zones_answer(fm, "policy removed")


# -- 4. zone-zone link down ---------------------------------------------------------------------------------


def _ingress_endpoint(t: Traffic) -> dict[str, Any]:
    """The client's balancer state of zone-b's ingress endpoint (``/config_dump`` ``upstreams``)."""
    dump = t.sidecars["client"].config_dump()
    name = _client_cluster(t)["name"]
    found = [e for e in dump["upstreams"][name] if e["zone"] == ZONE_B]
    assert len(found) == 1, f"zone-b endpoints of {name}: {found}"
    endpoint: dict[str, Any] = found[0]
    return endpoint


def _connect_failures(t: Traffic) -> int:
    """Failed connects (refused, timed out, TLS) the client counted for echo."""
    name = _client_cluster(t)["name"]
    return int(t.sidecars["client"].stats()["clusters"][name]["connect_failures"])


def _has_health_check(t: Traffic, want: bool) -> None:
    has = _client_cluster(t).get("health_check") is not None
    assert has is want, f"health check on the client's echo cluster: {has}"


async def test_zone_b_ingress_down_traffic_moves_to_zone_a(fm: Traffic) -> None:
    cluster = fm.cluster
    port = fm.outbound_ports["client"]
    ingress = fm.ingresses[ZONE_B]
    failures_before = _connect_failures(fm)
    try:
        async with CallStream(port) as stream:
            killed = time.monotonic()
            ingress.kill()

            def all_from_a() -> None:
                tail = stream.since(killed)[-ALL_FROM_A_IN_A_ROW:]
                assert len(tail) == ALL_FROM_A_IN_A_ROW, f"{len(tail)} calls since the kill"
                zones = [o.zone for o in tail]
                assert zones == [ZONE_A] * ALL_FROM_A_IN_A_ROW, f"last calls answered by {zones}"

            await eventually_async(
                all_from_a, "every call to be answered by zone-a", timeout_s=SWITCH_BOUND_S
            )
            switched = stream.since(killed)

            # Passive health alone: once the first ejection runs out the dead ingress is picked again, fails,
            # and is ejected for longer; the call that picked it goes on to zone-a.
            def ejected_again() -> None:
                failures = _connect_failures(fm) - failures_before
                assert failures >= 2, f"{failures} connect failures since the kill"

            await eventually_async(
                ejected_again, "the client to try zone-b's ingress again after an ejection"
            )
            await eventually_async(
                all_from_a, "every call to be answered by zone-a after the second ejection"
            )
            passive = stream.since(killed)
            reejected = time.monotonic() - killed
            endpoint = _ingress_endpoint(fm)

            # An active health check on echo marks the dead ingress unhealthy, so no call has to pick it.
            cluster.g.put_ok(HEALTH_CHECK_PATH, health_check_doc())
            await eventually_async(lambda: _has_health_check(fm, True), "the client to health-check echo")

            def unhealthy() -> dict[str, Any]:
                endpoint = _ingress_endpoint(fm)
                assert endpoint["healthy"] is False, endpoint
                return endpoint

            checked = await eventually_async(unhealthy, "the health check to mark zone-b's ingress unhealthy")
            await eventually_async(all_from_a, "every call to be answered by zone-a with the health check")
        after = stream.since(killed)

        def summary(outcomes: list[Any]) -> str:
            zones, _, unanswered = tally([o.answer for o in outcomes])
            return f"{len(outcomes)} calls, per zone {dict(zones)}, {unanswered} unanswered"

        not_a = [o for o in switched if o.zone != ZONE_A]
        switch_s = (not_a[-1].started - killed) if not_a else 0.0
        print(
            f"\nzone-b ingress killed: until all answered by zone-a {summary(switched)}; the last call not "
            f"answered by zone-a started {switch_s:.2f}s after the kill"
            f"\nthrough the second ejection ({reejected:.2f}s after the kill): {summary(passive)}; "
            f"ingress endpoint {endpoint}"
            f"\nwith the health check: {summary(after)}; ingress endpoint {checked}"
            f"\nconnect failures since the kill: {_connect_failures(fm) - failures_before}; client stats "
            f"{fm.sidecars['client'].stats()['clusters']}"
        )

        restarted = time.monotonic()
        ingress.start()

        def zone_b_back() -> None:
            assert _ingress_endpoint(fm)["healthy"] is True, _ingress_endpoint(fm)

        eventually(zone_b_back, "the health check to mark zone-b's ingress healthy again")

        async def answered_by_b() -> None:
            zones, _, unanswered = tally(await calls(port, ROUND, parallel=10))
            assert unanswered == 0, f"{dict(zones)}, {unanswered} unanswered"
            assert zones[ZONE_B] > 0, f"{dict(zones)}, {unanswered} unanswered"

        deadline = time.monotonic() + SWITCH_BOUND_S
        while True:
            try:
                await answered_by_b()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        print(f"zone-b ingress restarted: zone-b answers again after {time.monotonic() - restarted:.2f}s")
        await both_zones_answer(fm, "ingress back")
    finally:
        status, body = cluster.g.delete(HEALTH_CHECK_PATH)
        assert status in (200, 404), f"DELETE {HEALTH_CHECK_PATH}: {status} {body}"
        eventually(lambda: _has_health_check(fm, False), "the client's echo cluster without a health check")
