"""The sans-IO part of the active health checks (``kmesh.proxy._healthcheck.HealthPlan``): thresholds,
schedule and jitter, in-flight probes, config changes. Time is passed in; randomness is a seeded Random."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from kmesh.proxy._healthcheck import HealthPlan
from kmesh.proxy._lb import EndpointKey
from kmesh.proxyconfig import HealthCheckConfig

A: EndpointKey = ("10.0.0.1", 8080, None)
B: EndpointKey = ("10.0.0.2", 8080, None)


def config(**changes: object) -> HealthCheckConfig:
    base: dict[str, object] = {"interval_s": 10.0, "timeout_s": 1.0, "unhealthy_threshold": 3}
    return HealthCheckConfig(**{**base, **changes})  # type: ignore[arg-type]


def probe(plan: HealthPlan, key: EndpointKey, ok: bool | None, now: float) -> bool | None:
    """Run one probe of ``key`` at ``now`` (it must be due) and return ``handle_result``'s answer."""
    assert key in plan.due(now)
    return plan.handle_result(key, ok, now)


def test_new_endpoints_start_healthy_and_are_due_at_once() -> None:
    plan = HealthPlan(config())
    assert plan.update(plan.config, [A, B], now=100.0) == [A, B]
    assert plan.healthy(A)
    assert plan.healthy(B)
    assert plan.get_timer() == 100.0
    assert plan.due(100.0) == [A, B]
    assert plan.get_timer() is None  # both in flight
    assert plan.due(200.0) == []


def test_unhealthy_after_exactly_the_threshold_of_consecutive_failures() -> None:
    plan = HealthPlan(config(unhealthy_threshold=3))
    plan.update(plan.config, [A], 0.0)
    assert probe(plan, A, False, 0.0) is None
    assert probe(plan, A, False, 10.0) is None
    assert plan.healthy(A)
    assert probe(plan, A, False, 20.0) is False
    assert not plan.healthy(A)
    assert probe(plan, A, False, 30.0) is None  # already unhealthy: no new verdict


def test_a_success_resets_the_failure_streak() -> None:
    plan = HealthPlan(config(unhealthy_threshold=2))
    plan.update(plan.config, [A], 0.0)
    for now, ok in enumerate([False, True, False, True, False]):
        assert probe(plan, A, ok, now * 10.0) is None
    assert plan.healthy(A)
    assert probe(plan, A, False, 50.0) is False


def test_healthy_again_after_the_healthy_threshold_of_consecutive_passes() -> None:
    plan = HealthPlan(config(unhealthy_threshold=1, healthy_threshold=3))
    plan.update(plan.config, [A], 0.0)
    assert probe(plan, A, False, 0.0) is False
    assert probe(plan, A, True, 10.0) is None
    assert probe(plan, A, False, 20.0) is None  # resets the passes
    assert probe(plan, A, True, 30.0) is None
    assert probe(plan, A, True, 40.0) is None
    assert not plan.healthy(A)
    assert probe(plan, A, True, 50.0) is True
    assert plan.healthy(A)


def test_no_verdict_changes_nothing_but_reschedules() -> None:
    plan = HealthPlan(config(unhealthy_threshold=2))
    plan.update(plan.config, [A], 0.0)
    assert probe(plan, A, False, 0.0) is None
    assert probe(plan, A, None, 10.0) is None
    assert plan.get_timer() == 20.0
    assert probe(plan, A, False, 20.0) is False  # the streak went on across the no-verdict probe


def test_the_next_probe_is_due_an_interval_after_the_last_one_ended() -> None:
    plan = HealthPlan(config(interval_s=10.0))
    plan.update(plan.config, [A, B], 0.0)
    assert plan.due(0.0) == [A, B]
    plan.handle_result(A, True, 0.5)
    assert plan.get_timer() == 10.5  # B still in flight
    plan.handle_result(B, True, 3.0)
    assert plan.due(10.5) == [A]
    assert plan.get_timer() == 13.0


def test_results_for_removed_or_idle_endpoints_are_ignored() -> None:
    plan = HealthPlan(config(unhealthy_threshold=1))
    plan.update(plan.config, [A, B], 0.0)
    assert plan.due(0.0) == [A, B]
    plan.update(plan.config, [A], 1.0)
    assert plan.handle_result(B, False, 2.0) is None
    assert plan.keys == [A]
    plan.handle_result(A, True, 2.0)
    assert plan.handle_result(A, False, 3.0) is None  # A is not in flight: a stray result
    assert plan.healthy(A)


def test_a_config_change_keeps_the_state_of_endpoints_that_stay() -> None:
    plan = HealthPlan(config(unhealthy_threshold=1, healthy_threshold=2))
    plan.update(plan.config, [A], 0.0)
    assert probe(plan, A, False, 0.0) is False
    assert probe(plan, A, True, 10.0) is None
    assert plan.update(config(unhealthy_threshold=1, healthy_threshold=2, interval_s=5.0), [A, B], 12.0) == [
        B
    ]
    assert not plan.healthy(A)
    assert plan.get_timer() == 12.0  # B, new, is due at once
    assert plan.due(12.0) == [B]
    assert plan.get_timer() == 17.0  # A was due at 20 under the old interval; the new one is shorter
    assert probe(plan, A, True, 17.0) is True  # its pass streak carried over


def test_a_removed_endpoint_that_comes_back_starts_fresh() -> None:
    plan = HealthPlan(config(unhealthy_threshold=1))
    plan.update(plan.config, [A], 0.0)
    assert probe(plan, A, False, 0.0) is False
    plan.update(plan.config, [], 1.0)
    assert plan.update(plan.config, [A], 2.0) == [A]
    assert plan.healthy(A)


def test_initial_jitter_delays_the_first_probe_within_its_bound() -> None:
    plan = HealthPlan(config(initial_jitter_s=2.0), rng=random.Random(7))
    plan.update(plan.config, [A, B], 100.0)
    timer = plan.get_timer()
    assert timer is not None
    assert 100.0 <= timer <= 102.0
    assert plan.due(102.0) == [A, B]


@given(
    seed=st.integers(0, 2**32),
    interval=st.floats(0.1, 100.0),
    jitter=st.floats(0.0, 10.0),
    percent=st.floats(0.0, 100.0),
)
def test_interval_jitter_stays_within_its_bounds(
    seed: int, interval: float, jitter: float, percent: float
) -> None:
    plan = HealthPlan(
        config(interval_s=interval, interval_jitter_s=jitter, interval_jitter_percent=percent),
        rng=random.Random(seed),
    )
    plan.update(plan.config, [A], 0.0)
    plan.due(0.0)
    plan.handle_result(A, True, 0.0)
    timer = plan.get_timer()
    assert timer is not None
    assert interval <= timer <= interval + jitter + interval * percent / 100.0 + 1e-9


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_the_verdict_follows_the_last_streak(results: list[bool], unhealthy: int, healthy: int) -> None:
    """A model: the verdict flips exactly when the current streak of the other kind reaches its threshold."""
    plan = HealthPlan(config(unhealthy_threshold=unhealthy, healthy_threshold=healthy))
    plan.update(plan.config, [A], 0.0)
    expected, streak = True, 0
    for step, ok in enumerate(results):
        streak = streak + 1 if ok != expected else 0
        flip = streak >= (healthy if ok else unhealthy)
        if flip:
            expected, streak = ok, 0
        assert probe(plan, A, ok, step * 10.0) == (ok if flip else None)
        assert plan.healthy(A) == expected
