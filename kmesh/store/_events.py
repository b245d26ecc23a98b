"""Fan-out of committed change events to watchers, each through its own bounded queue.

Rules:
- ``publish`` is called on the event loop's thread, once per commit, with that commit's events in order;
  commits are serialized by the store, so every watcher sees commits in commit order.
- A commit's events are queued as a unit. When they do not fit in a watcher's queue, that watcher's
  backlog is dropped and replaced by a single ``RESYNC`` event carrying the commit's revision: the watcher
  must list again, and the events that follow it are all newer than that listing's starting point. One
  slow watcher never holds back the store or the other watchers.
- A subscription exists from the moment ``subscribe`` returns (not from the first ``__anext__``), so a
  caller that watches and then commits sees its own commit.
- ``close`` ends every subscription: its iterator yields what is already queued, then stops.
- Subscriptions are held weakly: a watcher dropped without ``aclose()`` stops costing anything.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Sequence
from typing import final

from kmesh.store._protocol import ChangeEvent, ChangeKind

__all__ = ["Broadcaster", "Subscription"]


@final
class Subscription:
    """One watcher's queue; an async iterator of ChangeEvents."""

    __slots__ = ("__weakref__", "_broadcaster", "_ended", "_maxsize", "_queue", "_wakeup")

    def __init__(self, broadcaster: Broadcaster, maxsize: int) -> None:
        self._broadcaster = broadcaster
        self._maxsize = maxsize
        self._queue: deque[ChangeEvent] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Stop watching; queued events are dropped."""
        self._broadcaster._forget(self)
        self._queue.clear()
        self._end()

    def _offer(self, events: Sequence[ChangeEvent]) -> bool:
        """Queue one commit's events; returns True when the watcher was sent a RESYNC instead."""
        if self._ended:
            return False
        resync = len(self._queue) + len(events) > self._maxsize
        if resync:
            self._queue.clear()
            self._queue.append(ChangeEvent(ChangeKind.RESYNC, events[-1].revision))
        else:
            self._queue.extend(events)
        self._wakeup.set()
        return resync

    def _end(self) -> None:
        self._ended = True
        self._wakeup.set()


@final
class Broadcaster:
    """Hands each commit's events to every live subscription and counts what it did."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"a watch queue must hold at least one event, got {maxsize}")
        self._maxsize = maxsize
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._closed = False
        self.published = 0
        self.resynced = 0

    @property
    def watchers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._maxsize)
        if self._closed:
            subscription._end()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def publish(self, events: Sequence[ChangeEvent]) -> None:
        if not events or self._closed:
            return
        self.published += len(events)
        # A copy: a subscription may be collected (and leave the WeakSet) while we iterate.
        for subscription in list(self._subscriptions):
            if subscription._offer(events):
                self.resynced += 1

    def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription._end()
        self._subscriptions.clear()

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
