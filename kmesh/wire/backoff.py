"""Reconnect backoff shared by the KDS zone client and the DP client: exponential with full jitter.

Sans-IO: the caller measures time and sleeps; this only computes delays.

Rules:

- The n-th consecutive failure (n from 0) waits a uniform random time in
  ``[0, min(max_s, initial_s * 2**n)]`` (full jitter), so a fleet of clients does not dial a restarted
  server in lockstep. The exponent is capped at 30, so the ceiling never overflows.
- A connection that stayed up for at least ``stable_after_s`` resets the count: the next failure is
  treated as a first one (:meth:`Backoff.reset_if_stable`).
- ``0 < initial_s <= max_s``, else ``ValueError``.
"""

from __future__ import annotations

import random
from typing import Final, Protocol, final

__all__ = ["Backoff", "Uniform"]

_MAX_EXPONENT: Final = 30


class Uniform(Protocol):
    """The part of :class:`random.Random` the backoff uses."""

    def uniform(self, a: float, b: float, /) -> float: ...


@final
class Backoff:
    """Delays between reconnect attempts; see the module rules."""

    __slots__ = ("_failures", "_initial", "_max", "_rng", "_stable_after")

    def __init__(
        self, initial_s: float, max_s: float, stable_after_s: float, rng: Uniform | None = None
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff_initial_s must be positive and at most backoff_max_s")
        self._initial = initial_s
        self._max = max_s
        self._stable_after = stable_after_s
        self._rng: Uniform = rng if rng is not None else random.Random()
        self._failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures counted since the last reset."""
        return self._failures

    def ceiling(self) -> float:
        """The upper bound of the next delay: ``min(max_s, initial_s * 2**failures)``."""
        return min(self._max, self._initial * (1 << min(self._failures, _MAX_EXPONENT)))

    def next_delay(self) -> float:
        """Count one failure and return how long to wait before the next attempt (full jitter)."""
        delay = self._rng.uniform(0.0, self.ceiling())
        self._failures += 1
        return delay

    def reset_if_stable(self, connected_for_s: float) -> bool:
        """Reset the count if a connection stayed up ``stable_after_s``; returns whether it did."""
        if connected_for_s >= self._stable_after:
            self._failures = 0
            return True
        return False

    def reset(self) -> None:
        """Start over, as after a stable connection."""
        self._failures = 0
