"""Properties of the load balancer over random endpoint sets: ``pick`` never returns an excluded endpoint or
one of weight 0, never an unavailable one while any endpoint is available, follows the priority rule of
the module docstring (checked against a small model of it), and round robin gives exact shares."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from kmesh.proxy._lb import Balancer, EndpointKey, Pick
from kmesh.proxyconfig import Endpoint, LbConfig

KINDS = ("RoundRobin", "LeastRequest", "RingHash", "Random", "Maglev")


@dataclass(frozen=True)
class Spec:
    weight: int
    priority: int
    healthy: bool
    ejected: bool
    excluded: bool


specs = st.builds(
    Spec,
    weight=st.integers(0, 5),
    priority=st.integers(0, 2),
    healthy=st.booleans(),
    ejected=st.booleans(),
    excluded=st.booleans(),
)


def endpoint(i: int, spec: Spec) -> Endpoint:
    return Endpoint(address=f"10.0.{i // 256}.{i % 256}", port=80, weight=spec.weight, priority=spec.priority)


def key_of(i: int) -> EndpointKey:
    return (f"10.0.{i // 256}.{i % 256}", 80, None)


def allowed(specs: list[Spec], threshold: float) -> set[int]:
    """The model: the indexes ``pick`` may return (see the module docstring of ``kmesh.proxy._lb``)."""
    levels: dict[int, list[int]] = {}
    for i, s in enumerate(specs):
        if s.weight > 0:
            levels.setdefault(s.priority, []).append(i)
    ordered = [levels[p] for p in sorted(levels)]

    def up(i: int) -> bool:
        return specs[i].healthy and not specs[i].ejected

    avail = [[i for i in level if up(i)] for level in ordered]
    chosen = next(
        (n for n, level in enumerate(ordered) if avail[n] and len(avail[n]) * 100 >= threshold * len(level)),
        next((n for n, a in enumerate(avail) if a), None),
    )
    if chosen is not None:
        for n in [chosen, *(m for m in range(len(ordered)) if m != chosen)]:
            usable = {i for i in avail[n] if not specs[i].excluded}
            if usable:
                return usable
    for level in ordered:
        usable = {i for i in level if not specs[i].excluded}
        if usable:
            return usable
    return set()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(specs, min_size=0, max_size=8),
    st.sampled_from(KINDS),
    st.sampled_from([0.0, 50.0, 70.0, 100.0, 150.0]),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    st.integers(0, 2**32),
    st.integers(1, 4),
)
def test_pick_follows_the_rules(
    endpoints: list[Spec], kind: str, threshold: float, hash_key: bytes | None, seed: int, repeats: int
) -> None:
    lb = LbConfig(type=kind, locality_aware=True, failover_threshold_percent=threshold)  # type: ignore[arg-type]
    balancer = Balancer([endpoint(i, s) for i, s in enumerate(endpoints)], lb, rng=random.Random(seed))
    for i, s in enumerate(endpoints):
        if s.ejected:
            balancer.failed(Pick(endpoint(i, s), key_of(i), ""), 0.0)  # the first failure ejects for 5 s
        balancer.set_health(key_of(i), s.healthy)
    exclude = [key_of(i) for i, s in enumerate(endpoints) if s.excluded]
    expected = allowed(endpoints, threshold)
    index = {key_of(i): i for i in range(len(endpoints))}
    for _ in range(repeats):
        chosen = balancer.pick(1.0, hash_key=hash_key, exclude=exclude)
        if not expected:
            assert chosen is None
            continue
        assert chosen is not None
        i = index[chosen.key]
        assert chosen.key not in exclude
        assert endpoints[i].weight > 0
        if any(s.weight > 0 and s.healthy and not s.ejected and not s.excluded for s in endpoints):
            assert endpoints[i].healthy
            assert not endpoints[i].ejected
        assert i in expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6), st.integers(1, 4))
def test_round_robin_shares_are_exact(weights: list[int], rounds: int) -> None:
    endpoints = [Endpoint(address=f"10.0.0.{i}", port=80, weight=w) for i, w in enumerate(weights)]
    balancer = Balancer(endpoints, LbConfig())
    total = sum(weights)
    for _ in range(rounds):
        seen = Counter(p.key for p in (balancer.pick(0.0) for _ in range(total)) if p is not None)
        assert seen == dict(zip([(e.address, 80, None) for e in endpoints], weights, strict=True))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=6),
    st.lists(st.integers(0, 5), max_size=30),
)
def test_round_robin_never_starves_after_changes(weights: list[int], flips: list[int]) -> None:
    """Whatever sequence of ejections happened, once all are back every endpoint gets picked within two
    rounds of the total weight."""
    eps = [Endpoint(address=f"10.0.0.{i}", port=80, weight=w) for i, w in enumerate(weights)]
    balancer = Balancer(eps, LbConfig())
    now = 0.0
    for flip in flips:
        if flip < len(eps):
            balancer.failed(Pick(eps[flip], (eps[flip].address, 80, None), ""), now)
        balancer.pick(now)
        now += 1.0
    now += 1000.0  # every ejection over
    total = sum(weights)
    seen = {p.key for p in (balancer.pick(now) for _ in range(2 * total)) if p is not None}
    assert seen == {(e.address, 80, None) for e in eps}
