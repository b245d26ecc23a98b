"""Reconnect backoff: full jitter under a doubling ceiling capped at max_s, reset by a stable connection."""

from __future__ import annotations

import random

import pytest

from kmesh.wire.backoff import Backoff


def test_full_jitter_stays_within_the_doubling_ceiling() -> None:
    backoff = Backoff(0.5, 8.0, 10.0, random.Random(7))
    for n in range(12):
        ceiling = min(8.0, 0.5 * 2**n)
        assert backoff.ceiling() == ceiling
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling
        assert backoff.failures == n + 1


def test_the_ceiling_is_capped_at_max_and_never_overflows() -> None:
    backoff = Backoff(1.0, 30.0, 10.0, random.Random(1))
    for _ in range(2000):
        backoff.next_delay()
    assert backoff.ceiling() == 30.0


def test_delays_are_uniform_draws_of_the_given_rng() -> None:
    a = Backoff(1.0, 60.0, 10.0, random.Random(42))
    ref = random.Random(42)
    expected = [ref.uniform(0.0, min(60.0, 1.0 * 2**n)) for n in range(8)]
    assert [a.next_delay() for _ in range(8)] == expected
    assert len({round(d, 9) for d in expected}) == len(expected)  # jittered, not fixed


def test_a_stable_connection_resets_and_a_short_one_does_not() -> None:
    backoff = Backoff(1.0, 60.0, 10.0, random.Random(3))
    for _ in range(4):
        backoff.next_delay()
    assert not backoff.reset_if_stable(9.99)
    assert backoff.failures == 4
    assert backoff.reset_if_stable(10.0)
    assert backoff.failures == 0
    assert backoff.ceiling() == 1.0
    backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="backoff_initial_s must be positive"):
        Backoff(initial, maximum, 10.0)
