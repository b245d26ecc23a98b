"""Load balancing over one cluster's endpoints: which endpoint a new connection goes to. Sans-IO: time is
passed in (``now``, monotonic seconds), randomness comes from an injected ``random.Random``, and nothing
here imports asyncio or socket.

Rules:
- An endpoint is identified by its ``EndpointKey`` ``(address, port, sni)``; a config repeating a key keeps
  its first occurrence. An endpoint of weight 0 is never picked and counts nowhere.
- An endpoint is *available* when it is healthy (``set_health``, healthy until told otherwise) and not
  ejected (an ejection lasts until its time; ``now`` is compared, no timers).
- Priorities (locality, ``kmesh.proxyconfig._endpoints``): endpoints are grouped into levels by
  ``priority``, ascending (the endpoints' priorities are used as given; without locality awareness the
  generator makes them all 0). The first level whose available share of its endpoints is at least
  ``lb.failover_threshold_percent`` (and that has any available endpoint) gets the traffic; if none
  reaches it, the lowest level with any available endpoint. This is all-or-nothing, unlike Envoy's
  gradual spill with its 1.4 overprovisioning factor: a level either takes all new connections or none.
- ``exclude`` (the endpoints already tried for this connection) is always honoured. When every available
  endpoint of the chosen level is excluded, the other levels' available endpoints are tried in ascending
  priority, so a retry moves to another zone rather than to a dead endpoint.
- Panic (Envoy's panic mode): when no endpoint that is not excluded is available anywhere, the lowest
  level with an endpoint not excluded is balanced over ignoring health and ejection: a cluster that looks
  dead is still tried rather than refusing every connection. ``pick`` returns None only when there is no
  endpoint of positive weight or all of them are excluded. (The ``healthy_panic_threshold_percent`` of the
  outlier and health-check configs is not used: panic starts only when nothing is available.)
- Algorithms (``lb.type``), applied to the chosen level's candidates:
  ``RoundRobin`` (default): nginx's smooth weighted round robin, deterministic: from a fresh start, over
  any ``sum(weights)`` picks each endpoint gets exactly its weight. Each endpoint keeps its current weight;
  only the candidates of a pick take part in it, so a changing candidate set needs no special case. A config
  change to the endpoints (keys, weights or priorities) restarts the sequence; other changes keep it.
  ``Random``: weighted random. ``LeastRequest``: ``choice_count`` (default 2) weighted random draws, with
  replacement as Envoy does; the one with the fewest active connections wins, ties going to the first drawn.
  ``RingHash`` and ``Maglev`` (treated as a ring hash): ``hash_key`` (the caller passes the client's
  address bytes) is hashed onto a ring of virtual nodes, each endpoint owning nodes in proportion to its
  weight (a power of two per unit of weight), at least ``min_ring_size`` (default 1024) and at most
  ``max_ring_size`` (default Envoy's 8M, capped here at ``RING_SIZE_CAP``) in all; positions are 64-bit
  blake2b digests, so every proxy maps a client to the same endpoint. If the owner of the node found is
  not a candidate, the ring is walked to the next node that is. One ring per level, built on first use and
  kept until the endpoints change. Without ``hash_key`` a hash balancer picks weighted random.
- Passive health (outlier ejection), driven by ``failed``/``connected``. A connect failure (refused,
  timeout, TLS or identity failure) is a local-origin error; like Envoy, without
  ``split_external_and_local_errors`` it counts toward both ``consecutive_total_failures`` and
  ``consecutive_gateway_failures`` (the lower set one applies), with it toward
  ``consecutive_local_origin_failures``. When no such detector is set, or there is no outlier config, the
  first failure ejects: a refused connection is deterministic. ``connected`` resets the count. The n-th
  ejection lasts ``n * base_ejection_time_s`` (5 s without an outlier config), at most
  ``MAX_EJECTION_TIME_S`` (or the base, if longer); n goes down by one for every ``interval_s`` (10 s
  without a config) spent not ejected, as Envoy's multiplier does. An endpoint already ejected is not
  ejected again. At most ``max_ejection_percent`` of the endpoints are ejected at once, but always at least
  one, as Envoy; without an outlier config all may be, since panic mode covers an all-ejected cluster.
  ``disabled: true`` turns ejection off: only active health checks (``set_health``) and ``exclude`` remain.
- Endpoints that stay across ``update`` keep health, ejection, failure count and active connections. One
  that is removed while connections to it are open is remembered until they are released, so ``released``
  stays exact and the endpoint comes back with its state if it is added again.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import final

from kmesh.proxyconfig import Endpoint, LbConfig, OutlierDetectionConfig

__all__ = [
    "DEFAULT_BASE_EJECTION_TIME_S",
    "MAX_EJECTION_TIME_S",
    "RING_SIZE_CAP",
    "Balancer",
    "EndpointKey",
    "Pick",
    "endpoint_key",
]

EndpointKey = tuple[str, int, str | None]  # (address, port, sni)

DEFAULT_BASE_EJECTION_TIME_S = 5.0
DEFAULT_EJECTION_INTERVAL_S = 10.0
MAX_EJECTION_TIME_S = 300.0  # Envoy's default max_ejection_time
DEFAULT_CHOICE_COUNT = 2
DEFAULT_MIN_RING_SIZE = 1024
DEFAULT_MAX_RING_SIZE = 8 * 1024 * 1024
# Building a ring costs one blake2b per node in Python (about 1 us each): Envoy's 8M default would take
# seconds and gigabytes, and 128Ki nodes already spread keys within a fraction of a percent.
RING_SIZE_CAP = 128 * 1024


def endpoint_key(endpoint: Endpoint) -> EndpointKey:
    """What identifies an endpoint across config changes: the same address reached under another SNI is
    another destination (a zone ingress serves many services on one port)."""
    return (endpoint.address, endpoint.port, endpoint.sni)


@final
@dataclass(frozen=True, slots=True)
class Pick:
    """The endpoint chosen for one connection; hand it back to ``connected``/``released``/``failed``."""

    endpoint: Endpoint
    key: EndpointKey
    label: str  # "address:port", the stats key


@final
@dataclass(slots=True)
class _State:
    """What the balancer knows about one endpoint; survives config changes that keep its key."""

    pick: Pick
    healthy: bool = True
    ejected_until: float | None = None  # kept after expiry: the decay of ``ejections`` starts there
    ejections: int = 0  # the ejection-time multiplier
    failures: int = 0  # consecutive connect failures
    active: int = 0
    current: int = 0  # smooth weighted round robin's current weight

    @property
    def weight(self) -> int:
        return self.pick.endpoint.weight

    def ejected(self, now: float) -> bool:
        return self.ejected_until is not None and now < self.ejected_until

    def available(self, now: float) -> bool:
        return self.healthy and not self.ejected(now)


@final
@dataclass(frozen=True, slots=True)
class _Ejection:
    """The outlier settings, resolved to what ``failed`` needs (see the module docstring)."""

    enabled: bool
    threshold: int
    base_s: float
    max_s: float
    interval_s: float
    max_percent: float

    @classmethod
    def from_config(cls, outlier: OutlierDetectionConfig | None) -> _Ejection:
        if outlier is None:
            return cls(
                enabled=True,
                threshold=1,
                base_s=DEFAULT_BASE_EJECTION_TIME_S,
                max_s=MAX_EJECTION_TIME_S,
                interval_s=DEFAULT_EJECTION_INTERVAL_S,
                max_percent=100.0,
            )
        if outlier.split_external_and_local_errors:
            counts = [outlier.consecutive_local_origin_failures]
        else:
            counts = [outlier.consecutive_total_failures, outlier.consecutive_gateway_failures]
        given = [c for c in counts if c is not None and c > 0]
        base = max(outlier.base_ejection_time_s, 0.0)
        return cls(
            enabled=not outlier.disabled,
            threshold=min(given) if given else 1,
            base_s=base,
            max_s=max(MAX_EJECTION_TIME_S, base),
            interval_s=outlier.interval_s,
            max_percent=outlier.max_ejection_percent,
        )


@final
class _Ring:
    """A consistent-hash ring over one level's endpoints: sorted node positions and each node's owner."""

    __slots__ = ("owners", "positions")

    def __init__(self, states: Sequence[_State], min_size: int, max_size: int) -> None:
        total = sum(s.weight for s in states)
        # Nodes per unit of weight, rounded up to a power of two: sets whose total weight differs by less
        # than half get the same nodes for the endpoints they share, so adding one endpoint moves keys
        # only to it (about 1/n of them), not also between the others as a rescaled ring would.
        per_unit = 1 << max(0, math.ceil(min_size / total) - 1).bit_length()
        if per_unit * total <= max_size:
            counts = [s.weight * per_unit for s in states]  # exact proportions
        else:  # the weights alone exceed the cap: scale down, every endpoint keeping a node
            counts = [max(1, s.weight * max_size // total) for s in states]
        nodes: list[tuple[int, EndpointKey]] = []
        for state, count in zip(states, counts, strict=True):
            address, port, sni = state.pick.key
            prefix = f"{address}:{port}/{sni or ''}#".encode()
            nodes.extend((_hash64(prefix + str(i).encode()), state.pick.key) for i in range(count))
        nodes.sort()
        self.positions = [position for position, _ in nodes]
        self.owners = [owner for _, owner in nodes]

    def lookup(self, hash_key: bytes, accept: Collection[EndpointKey]) -> EndpointKey:
        """The owner of the first node at or after the key's position that is in ``accept`` (not empty,
        and every accepted endpoint owns a node, so the walk ends)."""
        size = len(self.positions)
        start = bisect.bisect_left(self.positions, _hash64(hash_key))
        for step in range(size):
            owner = self.owners[(start + step) % size]
            if owner in accept:
                return owner
        raise AssertionError("no accepted endpoint on the ring")  # pragma: no cover - see docstring


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


@final
class Balancer:
    """Picks endpoints of one cluster for new connections and learns from how they went.

    Not thread-safe: one event loop owns a proxy. Keys given to ``set_health``, ``connected``, ``released``
    and ``failed`` that the balancer does not know are ignored (a connection may outlive its endpoint).
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        lb: LbConfig,
        *,
        outlier: OutlierDetectionConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._states: dict[EndpointKey, _State] = {}
        self._retired: dict[EndpointKey, _State] = {}  # removed, with connections still open
        self._levels: list[list[_State]] = []
        self._rings: dict[int, _Ring] = {}
        self._shape: tuple[tuple[EndpointKey, int, int], ...] = ()
        self._lb = lb
        self._ejection = _Ejection.from_config(outlier)
        self.update(endpoints, lb, outlier=outlier)

    @property
    def size(self) -> int:
        """The number of distinct endpoints, weight 0 included (as ``describe`` lists them)."""
        return len(self._states)

    def update(
        self, endpoints: Sequence[Endpoint], lb: LbConfig, *, outlier: OutlierDetectionConfig | None = None
    ) -> None:
        """Take a new endpoint set and settings; endpoints whose key stays keep their state."""
        states: dict[EndpointKey, _State] = {}
        for endpoint in endpoints:
            key = endpoint_key(endpoint)
            if key in states:
                continue
            state = self._states.get(key) or self._retired.pop(key, None)
            pick = Pick(endpoint, key, f"{endpoint.address}:{endpoint.port}")
            if state is None:
                state = _State(pick)
            else:
                state.pick = pick
            states[key] = state
        for key, state in self._states.items():
            if key not in states and state.active > 0:
                self._retired[key] = state
        shape = tuple((k, s.weight, s.pick.endpoint.priority) for k, s in states.items())
        ring_sizes = (lb.min_ring_size, lb.max_ring_size)
        if shape != self._shape or ring_sizes != (self._lb.min_ring_size, self._lb.max_ring_size):
            self._rings.clear()
        if shape != self._shape:
            # Restart round robin: the exact-share guarantee holds from all-zero current weights.
            for state in states.values():
                state.current = 0
        self._shape = shape
        self._states = states
        self._lb = lb
        self._ejection = _Ejection.from_config(outlier)
        by_priority: dict[int, list[_State]] = {}
        for state in states.values():
            if state.weight > 0:
                by_priority.setdefault(state.pick.endpoint.priority, []).append(state)
        self._levels = [by_priority[p] for p in sorted(by_priority)]

    def pick(
        self, now: float, *, hash_key: bytes | None = None, exclude: Collection[EndpointKey] = ()
    ) -> Pick | None:
        """An endpoint for a new connection, or None when there is no endpoint of positive weight or all
        of them are in ``exclude``. See the module docstring for the order of preference."""
        levels = self._levels
        excluded = exclude if isinstance(exclude, set | frozenset | dict) else set(exclude)
        available = [[s for s in level if s.available(now)] for level in levels]
        chosen = self._chosen_level(levels, available)
        if chosen is not None:
            for index in [chosen, *(i for i in range(len(levels)) if i != chosen)]:
                candidates = [s for s in available[index] if s.pick.key not in excluded]
                if candidates:
                    return self._choose(index, candidates, hash_key)
        for index, level in enumerate(levels):  # panic: health ignored, exclude still honoured
            candidates = [s for s in level if s.pick.key not in excluded]
            if candidates:
                return self._choose(index, candidates, hash_key)
        return None

    def connected(self, pick: Pick) -> None:
        """A connection to ``pick`` is open: one more active, and its consecutive failures are forgiven."""
        state = self._find(pick.key)
        if state is not None:
            state.active += 1
            state.failures = 0

    def released(self, pick: Pick) -> None:
        """A connection counted by ``connected`` has ended."""
        state = self._find(pick.key)
        if state is None:
            return
        state.active = max(0, state.active - 1)
        if state.active == 0 and self._retired.get(pick.key) is state:
            del self._retired[pick.key]

    def failed(self, pick: Pick, now: float) -> None:
        """Connecting to ``pick`` failed (refused, timed out, TLS or identity check failed); may eject it."""
        state = self._states.get(pick.key)
        rule = self._ejection
        if state is None or not rule.enabled:
            return
        state.failures += 1
        if state.failures < rule.threshold or state.ejected(now) or not self._may_eject(now):
            return  # the count goes on, so a refused ejection is tried again on the next failure
        if state.ejected_until is not None and rule.interval_s > 0:
            calm = max(0.0, now - state.ejected_until)
            state.ejections = max(0, state.ejections - int(calm // rule.interval_s))
        state.ejections += 1
        state.ejected_until = now + min(rule.base_s * state.ejections, rule.max_s)
        state.failures = 0

    def set_health(self, key: EndpointKey, healthy: bool) -> None:
        """Record an active health check's verdict for ``key``."""
        state = self._states.get(key)
        if state is not None:
            state.healthy = healthy

    def describe(self, now: float) -> list[dict[str, object]]:
        """Each endpoint's settings and state, in config order (for the admin endpoints)."""
        return [
            {
                "address": s.pick.endpoint.address,
                "port": s.pick.endpoint.port,
                "sni": s.pick.endpoint.sni,
                "zone": s.pick.endpoint.zone,
                "priority": s.pick.endpoint.priority,
                "weight": s.weight,
                "via": s.pick.endpoint.via,
                "healthy": s.healthy,
                "ejected_until": s.ejected_until if s.ejected(now) else None,
                "active": s.active,
            }
            for s in self._states.values()
        ]

    def _find(self, key: EndpointKey) -> _State | None:
        return self._states.get(key) or self._retired.get(key)

    def _chosen_level(self, levels: list[list[_State]], available: list[list[_State]]) -> int | None:
        threshold = self._lb.failover_threshold_percent
        for index, level in enumerate(levels):
            if available[index] and len(available[index]) * 100 >= threshold * len(level):
                return index
        return next((i for i, avail in enumerate(available) if avail), None)

    def _may_eject(self, now: float) -> bool:
        pickable = [s for level in self._levels for s in level]
        ejected = sum(1 for s in pickable if s.ejected(now))
        # Envoy: eject while the ejected share is below the maximum, and always allow one.
        return ejected == 0 or ejected * 100 < self._ejection.max_percent * len(pickable)

    def _choose(self, level: int, candidates: list[_State], hash_key: bytes | None) -> Pick:
        kind = self._lb.type
        if kind == "RoundRobin":
            return self._round_robin(candidates)
        if kind == "LeastRequest":
            count = max(1, self._lb.choice_count or DEFAULT_CHOICE_COUNT)
            drawn = self._rng.choices(candidates, weights=[s.weight for s in candidates], k=count)
            return min(drawn, key=lambda s: s.active).pick  # min keeps the first of equals
        if kind in ("RingHash", "Maglev") and hash_key is not None:
            return self._hashed(level, candidates, hash_key)
        return self._rng.choices(candidates, weights=[s.weight for s in candidates])[0].pick

    @staticmethod
    def _round_robin(candidates: list[_State]) -> Pick:
        # nginx ngx_http_upstream_get_peer: every candidate gains its weight, the largest wins and pays the
        # total back. The candidates' current weights keep their sum, so they stay bounded.
        total = 0
        best = candidates[0]
        for state in candidates:
            state.current += state.weight
            total += state.weight
            if state.current > best.current:
                best = state
        best.current -= total
        return best.pick

    def _hashed(self, level: int, candidates: list[_State], hash_key: bytes) -> Pick:
        ring = self._rings.get(level)
        if ring is None:
            max_size = min(self._lb.max_ring_size or DEFAULT_MAX_RING_SIZE, RING_SIZE_CAP)
            min_size = min(self._lb.min_ring_size or DEFAULT_MIN_RING_SIZE, max_size)
            ring = self._rings[level] = _Ring(self._levels[level], max(1, min_size), max(1, max_size))
        accept = {s.pick.key for s in candidates}
        return self._states[ring.lookup(hash_key, accept)].pick
