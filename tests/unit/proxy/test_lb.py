"""The proxy's load balancer (``kmesh.proxy._lb``): round-robin shares, locality failover and panic,
exclusion, passive ejection, least request, random, ring hash and ``describe``. Time is passed in; the
randomness is a seeded ``random.Random``."""

from __future__ import annotations

import ast
import random
from collections import Counter
from pathlib import Path

import pytest

from kmesh.proxy import _lb
from kmesh.proxy._lb import Balancer, EndpointKey, Pick, endpoint_key
from kmesh.proxyconfig import Endpoint, LbConfig, OutlierDetectionConfig, Via

RR = LbConfig()


def ep(
    n: int, *, weight: int = 1, priority: int = 0, zone: str = "zone-1", sni: str | None = None
) -> Endpoint:
    via: Via = "local" if priority == 0 else "ingress"
    return Endpoint(
        address=f"10.0.0.{n}", port=8080, weight=weight, priority=priority, zone=zone, via=via, sni=sni
    )


def key(n: int, sni: str | None = None) -> EndpointKey:
    return (f"10.0.0.{n}", 8080, sni)


def picks(balancer: Balancer, count: int, now: float = 0.0, **kwargs: object) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(count):
        chosen = balancer.pick(now, **kwargs)  # type: ignore[arg-type]
        assert chosen is not None
        seen[chosen.label] += 1
    return seen


def pick_of(n: int) -> Pick:
    """What ``pick`` returns for endpoint n; the balancer goes by ``key`` only."""
    return Pick(ep(n), key(n), f"10.0.0.{n}:8080")


def eject(balancer: Balancer, n: int, now: float = 0.0) -> None:
    """Without an outlier config the first connect failure ejects (for 5 s the first time)."""
    balancer.failed(pick_of(n), now)


# --- the module ---


def test_the_module_is_sans_io() -> None:
    tree = ast.parse(Path(_lb.__file__).read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"asyncio", "socket"}


def test_pick_carries_key_and_label() -> None:
    balancer = Balancer([ep(1, sni="a.svc.mesh.kmesh")], RR)
    chosen = balancer.pick(0.0)
    assert chosen == Pick(ep(1, sni="a.svc.mesh.kmesh"), key(1, "a.svc.mesh.kmesh"), "10.0.0.1:8080")
    assert endpoint_key(chosen.endpoint) == chosen.key


def test_nothing_to_pick() -> None:
    assert Balancer([], RR).pick(0.0) is None
    assert Balancer([], RR).size == 0
    only_zero = Balancer([ep(1, weight=0), ep(2, weight=0)], RR)
    assert only_zero.size == 2
    assert only_zero.pick(0.0) is None


def test_same_key_twice_keeps_the_first() -> None:
    balancer = Balancer([ep(1, weight=3), ep(1, weight=1), ep(2)], RR)
    assert balancer.size == 2
    assert picks(balancer, 400) == {"10.0.0.1:8080": 300, "10.0.0.2:8080": 100}


def test_the_same_address_under_another_sni_is_another_endpoint() -> None:
    balancer = Balancer([ep(1, sni="a"), ep(1, sni="b")], RR)
    assert balancer.size == 2
    got = {balancer.pick(0.0).key for _ in range(2)}  # type: ignore[union-attr]
    assert got == {key(1, "a"), key(1, "b")}


# --- round robin ---


def test_round_robin_exact_shares_local_instance_and_zone_ingress() -> None:
    # 1 local instance + the ingress of a zone with 2 instances: a third and two thirds, exactly.
    balancer = Balancer([ep(1, weight=1), ep(2, weight=2, zone="zone-2")], RR)
    assert picks(balancer, 3000) == {"10.0.0.1:8080": 1000, "10.0.0.2:8080": 2000}


def test_round_robin_every_window_of_total_weight_is_exact() -> None:
    balancer = Balancer([ep(1, weight=3), ep(2, weight=2), ep(3, weight=1)], RR)
    sequence = [balancer.pick(0.0).label for _ in range(60)]  # type: ignore[union-attr]
    for start in range(0, 60, 6):
        assert Counter(sequence[start : start + 6]) == {
            "10.0.0.1:8080": 3,
            "10.0.0.2:8080": 2,
            "10.0.0.3:8080": 1,
        }


def test_round_robin_is_smooth_as_nginx() -> None:
    # nginx's documented example: weights a=5, b=1, c=1 give a a b a c a a.
    balancer = Balancer([ep(1, weight=5), ep(2), ep(3)], RR)
    order = [balancer.pick(0.0).key[0][-1] for _ in range(7)]  # type: ignore[union-attr]
    assert order == list("1121311")


def test_weight_zero_is_never_picked() -> None:
    balancer = Balancer([ep(1, weight=0), ep(2), ep(3, weight=0, priority=1)], RR)
    assert picks(balancer, 50) == {"10.0.0.2:8080": 50}
    eject(balancer, 2)
    assert picks(balancer, 10, now=1.0) == {"10.0.0.2:8080": 10}  # panic over the pickable one only


def test_round_robin_survives_a_changing_candidate_set() -> None:
    balancer = Balancer([ep(1, weight=1), ep(2, weight=2), ep(3, weight=3)], RR)
    picks(balancer, 4)
    eject(balancer, 3, now=0.0)
    assert set(picks(balancer, 30, now=1.0)) == {"10.0.0.1:8080", "10.0.0.2:8080"}
    # Back after expiry: nobody starves, and the shares settle back to 1:2:3 within one pick.
    seen = picks(balancer, 600, now=5.0)
    assert abs(seen["10.0.0.1:8080"] - 100) <= 2
    assert abs(seen["10.0.0.2:8080"] - 200) <= 2
    assert abs(seen["10.0.0.3:8080"] - 300) <= 2


def test_round_robin_restarts_when_the_endpoints_change() -> None:
    balancer = Balancer([ep(1), ep(2, weight=2)], RR)
    picks(balancer, 1)
    balancer.update([ep(1), ep(2, weight=2), ep(3)], RR)
    assert picks(balancer, 400) == {"10.0.0.1:8080": 100, "10.0.0.2:8080": 200, "10.0.0.3:8080": 100}


# --- priorities, failover and panic ---

LOCALITY = LbConfig(locality_aware=True)


def test_local_first_then_failover_and_back_on_expiry() -> None:
    balancer = Balancer([ep(1), ep(2, weight=2, priority=1, zone="zone-2")], LOCALITY)
    assert picks(balancer, 20) == {"10.0.0.1:8080": 20}
    eject(balancer, 1, now=10.0)
    assert picks(balancer, 20, now=10.0) == {"10.0.0.2:8080": 20}
    assert picks(balancer, 5, now=14.999) == {"10.0.0.2:8080": 5}
    assert picks(balancer, 5, now=15.0) == {"10.0.0.1:8080": 5}  # the 5 s ejection ran out


def test_unhealthy_fails_over_like_ejected() -> None:
    balancer = Balancer([ep(1), ep(2, priority=1), ep(3, priority=2)], LOCALITY)
    balancer.set_health(key(1), False)
    assert picks(balancer, 5) == {"10.0.0.2:8080": 5}
    balancer.set_health(key(2), False)
    assert picks(balancer, 5) == {"10.0.0.3:8080": 5}
    balancer.set_health(key(1), True)
    assert picks(balancer, 5) == {"10.0.0.1:8080": 5}
    balancer.set_health(("10.9.9.9", 1, None), False)  # unknown: ignored


def test_threshold_with_several_endpoints_per_level() -> None:
    local = [ep(n) for n in range(1, 5)]
    remote = [ep(n, priority=1, zone="zone-2") for n in range(5, 7)]
    balancer = Balancer(local + remote, LOCALITY)
    eject(balancer, 1)
    eject(balancer, 2)
    # 2 of 4 available = 50% >= 50: the local level keeps the traffic, on the two left.
    assert picks(balancer, 20, now=1.0) == {"10.0.0.3:8080": 10, "10.0.0.4:8080": 10}
    eject(balancer, 3)
    # 25% < 50: the remote zone takes it all.
    assert picks(balancer, 20, now=1.0) == {"10.0.0.5:8080": 10, "10.0.0.6:8080": 10}


def test_threshold_is_configurable() -> None:
    endpoints = [ep(n) for n in range(1, 5)] + [ep(5, priority=1)]
    balancer = Balancer(endpoints, LbConfig(locality_aware=True, failover_threshold_percent=75.0))
    eject(balancer, 1)
    assert set(picks(balancer, 9, now=1.0)) == {"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"}
    eject(balancer, 2)
    assert picks(balancer, 9, now=1.0) == {"10.0.0.5:8080": 9}


def test_no_level_reaches_the_threshold_lowest_with_any_available() -> None:
    endpoints = [ep(1), ep(2), ep(3), ep(4, priority=1), ep(5, priority=1), ep(6, priority=1)]
    balancer = Balancer(endpoints, LOCALITY)
    for n in (1, 2, 4, 5):
        eject(balancer, n)
    assert picks(balancer, 6, now=1.0) == {"10.0.0.3:8080": 6}
    eject(balancer, 3)
    assert picks(balancer, 6, now=1.0) == {"10.0.0.6:8080": 6}


def test_panic_when_nothing_is_available() -> None:
    balancer = Balancer([ep(1), ep(2), ep(3, priority=1)], LOCALITY)
    for n in (1, 2, 3):
        eject(balancer, n)
    # Every endpoint is ejected: the lowest level is tried anyway, by the algorithm, ignoring health.
    assert picks(balancer, 10, now=1.0) == {"10.0.0.1:8080": 5, "10.0.0.2:8080": 5}
    for n in (1, 2, 3):
        balancer.set_health(key(n), False)
    assert picks(balancer, 10, now=100.0) == {"10.0.0.1:8080": 5, "10.0.0.2:8080": 5}


def test_without_locality_all_zones_share_by_weight() -> None:
    balancer = Balancer([ep(1), ep(2, weight=2, zone="zone-2"), ep(3, weight=3, zone="zone-3")], RR)
    eject(balancer, 1)
    assert picks(balancer, 50, now=1.0) == {"10.0.0.2:8080": 20, "10.0.0.3:8080": 30}


# --- exclude ---


def test_exclude_is_honoured() -> None:
    balancer = Balancer([ep(1), ep(2), ep(3)], RR)
    for _ in range(20):
        chosen = balancer.pick(0.0, exclude=[key(1)])
        assert chosen is not None
        assert chosen.key != key(1)
    assert balancer.pick(0.0, exclude={key(1), key(2), key(3)}) is None


def test_exclude_moves_a_retry_to_the_next_level() -> None:
    balancer = Balancer([ep(1), ep(2, priority=1), ep(3, priority=2)], LOCALITY)
    # Endpoint 1 was tried but not ejected (a config needing several failures): the retry goes remote.
    assert balancer.pick(0.0, exclude=[key(1)]).key == key(2)  # type: ignore[union-attr]
    assert balancer.pick(0.0, exclude=[key(1), key(2)]).key == key(3)  # type: ignore[union-attr]


def test_exclude_prefers_available_elsewhere_over_panic() -> None:
    balancer = Balancer([ep(1), ep(2), ep(3, priority=1)], LOCALITY)
    eject(balancer, 2)
    # Level 0 is at 50% and gets the traffic, but its only available endpoint was already tried.
    assert balancer.pick(1.0, exclude=[key(1)]).key == key(3)  # type: ignore[union-attr]


def test_exclude_is_honoured_in_panic() -> None:
    balancer = Balancer([ep(1), ep(2), ep(3, priority=1)], LOCALITY)
    for n in (1, 2, 3):
        eject(balancer, n)
    assert picks(balancer, 4, now=1.0, exclude=[key(1)]) == {"10.0.0.2:8080": 4}
    assert picks(balancer, 4, now=1.0, exclude=[key(1), key(2)]) == {"10.0.0.3:8080": 4}
    assert balancer.pick(1.0, exclude=[key(1), key(2), key(3)]) is None


# --- passive health ---


def test_ejection_time_grows_and_is_capped() -> None:
    balancer = Balancer([ep(1), ep(2)], RR)
    target = pick_of(1)
    now = 0.0
    expected = [5.0, 10.0, 15.0]
    for duration in expected:
        balancer.failed(target, now)
        assert balancer.describe(now)[0]["ejected_until"] == now + duration
        now += duration  # fails again the moment it comes back
    for _ in range(100):
        balancer.failed(target, now)
        until = balancer.describe(now)[0]["ejected_until"]
        assert isinstance(until, float)
        assert until - now <= _lb.MAX_EJECTION_TIME_S
        last, now = until - now, until
    assert last == _lb.MAX_EJECTION_TIME_S


def test_the_multiplier_decays_while_the_endpoint_stays_healthy() -> None:
    balancer = Balancer([ep(1), ep(2)], RR)
    target = pick_of(1)
    balancer.failed(target, 0.0)  # 5 s, until 5
    balancer.failed(target, 5.0)  # 10 s, until 15
    balancer.failed(target, 15.0 + 10.0)  # one interval (10 s) calm: multiplier 2 -> 1 -> 2 again
    assert balancer.describe(25.0)[0]["ejected_until"] == 25.0 + 10.0
    balancer.failed(target, 35.0 + 100.0)  # long calm: back to the base time
    assert balancer.describe(135.0)[0]["ejected_until"] == 135.0 + 5.0


def test_an_ejected_endpoint_is_not_ejected_again() -> None:
    balancer = Balancer([ep(1)], RR)
    target = pick_of(1)
    balancer.failed(target, 0.0)
    balancer.failed(target, 1.0)  # tried in panic and failed: the ejection is not extended
    assert balancer.describe(1.0)[0]["ejected_until"] == 5.0


def test_outlier_config_consecutive_failures_and_reset() -> None:
    outlier = OutlierDetectionConfig(consecutive_gateway_failures=3, consecutive_total_failures=5)
    balancer = Balancer([ep(1), ep(2)], RR, outlier=outlier)
    target = pick_of(1)
    balancer.failed(target, 0.0)
    balancer.failed(target, 0.0)
    balancer.connected(target)  # a success forgives
    balancer.failed(target, 0.0)
    balancer.failed(target, 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] is None
    balancer.failed(target, 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] == 30.0  # base_ejection_time_s defaults to 30


def test_outlier_config_split_uses_local_origin_failures() -> None:
    outlier = OutlierDetectionConfig(
        split_external_and_local_errors=True,
        consecutive_gateway_failures=1,
        consecutive_local_origin_failures=2,
        base_ejection_time_s=7.0,
    )
    balancer = Balancer([ep(1), ep(2)], RR, outlier=outlier)
    target = pick_of(1)
    balancer.failed(target, 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] is None
    balancer.failed(target, 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] == 7.0


def test_outlier_config_without_detectors_ejects_on_first_failure() -> None:
    balancer = Balancer([ep(1), ep(2)], RR, outlier=OutlierDetectionConfig(base_ejection_time_s=1.0))
    balancer.failed(pick_of(1), 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] == 1.0


def test_outlier_disabled_never_ejects() -> None:
    balancer = Balancer([ep(1), ep(2)], RR, outlier=OutlierDetectionConfig(disabled=True))
    for _ in range(10):
        balancer.failed(pick_of(1), 0.0)
    assert balancer.describe(0.0)[0]["ejected_until"] is None


def test_max_ejection_percent() -> None:
    endpoints = [ep(n) for n in range(1, 11)]
    balancer = Balancer(endpoints, RR, outlier=OutlierDetectionConfig(max_ejection_percent=20.0))
    for n in range(1, 11):
        eject(balancer, n)
    assert sum(d["ejected_until"] is not None for d in balancer.describe(0.0)) == 2
    # Always at least one, whatever the percentage (Envoy).
    small = Balancer([ep(1), ep(2)], RR, outlier=OutlierDetectionConfig(max_ejection_percent=0.0))
    eject(small, 1)
    eject(small, 2)
    assert [d["ejected_until"] is not None for d in small.describe(0.0)] == [True, False]
    # A refused ejection is tried again on the next failure, once there is room.
    eject(small, 2, now=30.0)  # base_ejection_time_s defaults to 30 with a config
    assert [d["ejected_until"] is not None for d in small.describe(30.0)] == [False, True]


def test_without_outlier_config_everything_may_be_ejected() -> None:
    balancer = Balancer([ep(n) for n in range(1, 6)], RR)
    for n in range(1, 6):
        eject(balancer, n)
    assert all(d["ejected_until"] == 5.0 for d in balancer.describe(0.0))


def test_unknown_picks_are_ignored() -> None:
    balancer = Balancer([ep(1)], RR)
    stranger = Pick(ep(9), key(9), "10.0.0.9:8080")
    balancer.connected(stranger)
    balancer.failed(stranger, 0.0)
    balancer.released(stranger)
    assert balancer.describe(0.0) == [
        {
            "address": "10.0.0.1",
            "port": 8080,
            "sni": None,
            "zone": "zone-1",
            "priority": 0,
            "weight": 1,
            "via": "local",
            "healthy": True,
            "ejected_until": None,
            "active": 0,
        }
    ]


# --- update ---


def test_update_keeps_the_state_of_surviving_endpoints() -> None:
    balancer = Balancer([ep(1), ep(2), ep(3), ep(4)], LOCALITY)
    eject(balancer, 1, now=0.0)
    balancer.set_health(key(2), False)
    three = pick_of(3)
    balancer.connected(three)
    balancer.connected(three)
    balancer.update([ep(1, weight=2), ep(2), ep(3), ep(5, priority=1)], LOCALITY)
    state = {(d["address"], d["port"]): d for d in balancer.describe(1.0)}
    assert state[("10.0.0.1", 8080)]["ejected_until"] == 5.0
    assert state[("10.0.0.1", 8080)]["weight"] == 2
    assert state[("10.0.0.2", 8080)]["healthy"] is False
    assert state[("10.0.0.3", 8080)]["active"] == 2
    assert state[("10.0.0.5", 8080)] == {
        "address": "10.0.0.5",
        "port": 8080,
        "sni": None,
        "zone": "zone-1",
        "priority": 1,
        "weight": 1,
        "via": "ingress",
        "healthy": True,
        "ejected_until": None,
        "active": 0,
    }
    assert balancer.size == 4
    # 1 of 3 local available (33% < 50%): the new remote endpoint takes the traffic.
    assert picks(balancer, 3, now=1.0) == {"10.0.0.5:8080": 3}


def test_a_removed_endpoint_with_open_connections_is_remembered() -> None:
    balancer = Balancer([ep(1), ep(2)], RR)
    one = pick_of(1)
    balancer.connected(one)
    balancer.connected(one)
    balancer.update([ep(2)], RR)
    assert balancer.size == 1
    balancer.released(one)
    balancer.update([ep(1), ep(2)], RR)  # back while one connection is still open
    assert balancer.describe(0.0)[0]["active"] == 1
    balancer.released(one)
    balancer.released(one)  # one too many: never negative
    assert balancer.describe(0.0)[0]["active"] == 0


def test_update_switches_the_algorithm() -> None:
    balancer = Balancer([ep(1), ep(2)], RR)
    balancer.update([ep(1), ep(2)], LbConfig(type="RingHash"))
    first = balancer.pick(0.0, hash_key=b"\x0a\x00\x00\x01")
    assert all(balancer.pick(0.0, hash_key=b"\x0a\x00\x00\x01") == first for _ in range(10))


# --- least request and random ---


def test_least_request_prefers_idle_endpoints() -> None:
    balancer = Balancer([ep(1), ep(2)], LbConfig(type="LeastRequest"), rng=random.Random(7))
    busy = pick_of(1)
    for _ in range(10):
        balancer.connected(busy)
    seen = picks(balancer, 1000)
    # Two draws with replacement: the busy one wins only when drawn twice (1/4).
    assert 700 <= seen["10.0.0.2:8080"] <= 800


def test_least_request_picks_the_least_loaded_of_many_draws() -> None:
    balancer = Balancer(
        [ep(n) for n in range(1, 4)], LbConfig(type="LeastRequest", choice_count=50), rng=random.Random(1)
    )
    for n in (1, 3):
        chosen = pick_of(n)
        balancer.connected(chosen)
    assert picks(balancer, 20) == {"10.0.0.2:8080": 20}


def test_least_request_with_one_endpoint_and_one_choice() -> None:
    assert picks(Balancer([ep(1)], LbConfig(type="LeastRequest")), 5) == {"10.0.0.1:8080": 5}
    one_choice = Balancer(
        [ep(1), ep(2, weight=3)], LbConfig(type="LeastRequest", choice_count=1), rng=random.Random(3)
    )
    seen = picks(one_choice, 4000)
    assert 0.70 <= seen["10.0.0.2:8080"] / 4000 <= 0.80


def test_random_honours_weights() -> None:
    balancer = Balancer([ep(1), ep(2, weight=3)], LbConfig(type="Random"), rng=random.Random(42))
    seen = picks(balancer, 4000)
    assert 0.70 <= seen["10.0.0.2:8080"] / 4000 <= 0.80


def test_random_is_reproducible_with_a_seed() -> None:
    endpoints = [ep(n, weight=n) for n in range(1, 6)]
    first = Balancer(endpoints, LbConfig(type="Random"), rng=random.Random(5))
    again = Balancer(endpoints, LbConfig(type="Random"), rng=random.Random(5))
    assert [first.pick(0.0) for _ in range(50)] == [again.pick(0.0) for _ in range(50)]


# --- ring hash ---

RING = LbConfig(type="RingHash")


def addr(i: int) -> bytes:
    return bytes([192, 168, i // 256, i % 256])


def owners(balancer: Balancer, keys: range, now: float = 0.0) -> list[EndpointKey]:
    result = []
    for i in keys:
        chosen = balancer.pick(now, hash_key=addr(i))
        assert chosen is not None
        result.append(chosen.key)
    return result


@pytest.mark.parametrize("kind", ["RingHash", "Maglev"])
def test_ring_same_key_same_endpoint(kind: str) -> None:
    endpoints = [ep(n) for n in range(1, 5)]
    balancer = Balancer(endpoints, LbConfig(type=kind), rng=random.Random(1))  # type: ignore[arg-type]
    other = Balancer(endpoints, LbConfig(type=kind), rng=random.Random(2))  # type: ignore[arg-type]
    mapping = owners(balancer, range(200))
    assert owners(balancer, range(200)) == mapping
    assert owners(other, range(200)) == mapping  # no randomness, no per-process state
    assert len(set(mapping)) == 4


def test_ring_adding_one_of_five_moves_about_a_fifth() -> None:
    before = owners(Balancer([ep(n) for n in range(1, 5)], RING), range(1000))
    after = owners(Balancer([ep(n) for n in range(1, 6)], RING), range(1000))
    moved = sum(b != a for b, a in zip(before, after, strict=True))
    assert 100 <= moved < 350
    # Keys move only to the new endpoint: the others keep their nodes.
    assert all(a == key(5) for b, a in zip(before, after, strict=True) if b != a)


def test_ring_follows_weights() -> None:
    mapping = owners(Balancer([ep(1), ep(2, weight=3)], RING), range(2000))
    assert 0.65 <= mapping.count(key(2)) / 2000 <= 0.85


def test_ring_skips_an_unavailable_endpoint_and_returns_after_expiry() -> None:
    balancer = Balancer([ep(n) for n in range(1, 5)], RING)
    mapping = owners(balancer, range(300))
    eject(balancer, 1, now=0.0)
    during = owners(balancer, range(300), now=1.0)
    assert key(1) not in during
    # Only the ejected endpoint's keys move.
    assert all(d == m for m, d in zip(mapping, during, strict=True) if m != key(1))
    assert owners(balancer, range(300), now=5.0) == mapping


def test_ring_honours_exclude() -> None:
    balancer = Balancer([ep(n) for n in range(1, 4)], RING)
    first = balancer.pick(0.0, hash_key=b"client")
    assert first is not None
    retry = balancer.pick(0.0, hash_key=b"client", exclude=[first.key])
    assert retry is not None
    assert retry.key != first.key


def test_ring_is_built_once_per_endpoint_set(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    real = _lb._Ring

    def counting(*args: object) -> object:
        built.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_lb, "_Ring", counting)
    balancer = Balancer([ep(1), ep(2), ep(3, priority=1)], RING)
    owners(balancer, range(50))
    assert len(built) == 1
    balancer.update([ep(1), ep(2), ep(3, priority=1)], RING)  # same endpoints: the ring is kept
    owners(balancer, range(50))
    assert len(built) == 1
    balancer.update([ep(1), ep(2, weight=2), ep(3, priority=1)], RING)
    owners(balancer, range(50))
    assert len(built) == 2


def test_ring_sizes() -> None:
    one = _lb._Ring([_lb._State(Pick(ep(1, weight=3), key(1), ""))], 1024, 8 * 1024 * 1024)
    assert len(one.positions) == 3 * 512  # 1024 / 3 rounded up to a power of two per unit of weight
    states = [_lb._State(Pick(ep(n, weight=1000), key(n), "")) for n in range(1, 4)]
    capped = _lb._Ring(states, 1024, 600)
    assert len(capped.positions) == 600
    assert Counter(capped.owners) == {key(1): 200, key(2): 200, key(3): 200}


def test_ring_without_a_hash_key_is_weighted_random() -> None:
    balancer = Balancer([ep(1), ep(2, weight=3)], RING, rng=random.Random(9))
    seen = picks(balancer, 4000)
    assert 0.70 <= seen["10.0.0.2:8080"] / 4000 <= 0.80


def test_ring_per_level() -> None:
    balancer = Balancer(
        [ep(1), ep(2), ep(3, priority=1), ep(4, priority=1)], LbConfig(type="RingHash", locality_aware=True)
    )
    assert set(owners(balancer, range(100))) == {key(1), key(2)}
    eject(balancer, 1)
    eject(balancer, 2)
    assert set(owners(balancer, range(100), now=1.0)) == {key(3), key(4)}
