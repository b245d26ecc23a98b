"""Flow control of outgoing Resources chunks: an ack window plus a queue of encoded chunks behind it.

At most ``limit`` chunks are in flight (sent and not yet answered by an Ack or a Nack). Chunks beyond
that wait here, already encoded, in the order they were made, and leave one by one as answers arrive.

The queue holds only what the caller handed over: the session does not pull state by itself. Its caller
keeps memory bounded by handing over more only while the queue is empty (``writable``), which costs at
most ``limit`` frames in flight plus one batch queued; :class:`~kmesh.kds.events.Drained` tells it when
the queue has emptied again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import final

__all__ = ["OutChunk", "SendWindow"]


@final
@dataclass(frozen=True, slots=True)
class OutChunk:
    """One Resources chunk, encoded: its SpecPart frames (if any) then its Resources frame."""

    type: str
    nonce: str
    frames: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return sum(len(frame) for frame in self.frames)


@final
class SendWindow:
    __slots__ = ("_in_flight", "_limit", "_pending", "_pending_bytes")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: deque[OutChunk] = deque()
        self._pending_bytes = 0
        # nonce -> type of every chunk sent and not yet answered.
        self._in_flight: dict[str, str] = {}

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        # Set once, at the handshake, before any chunk exists.
        self._limit = value

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def writable(self) -> bool:
        return not self._pending

    def queue(self, chunk: OutChunk) -> None:
        self._pending.append(chunk)
        self._pending_bytes += chunk.size

    def release(self) -> Iterator[OutChunk]:
        """Yield, and count as in flight, every queued chunk the window has room for, oldest first."""
        while self._pending and len(self._in_flight) < self._limit:
            chunk = self._pending.popleft()
            self._pending_bytes -= chunk.size
            self._in_flight[chunk.nonce] = chunk.type
            yield chunk

    def answer(self, nonce: str) -> str | None:
        """Settle the in-flight chunk ``nonce``; return its type, or ``None`` if it is not in flight."""
        return self._in_flight.pop(nonce, None)

    def clear(self) -> None:
        """Drop everything: the connection is gone and nothing queued will ever be sent or answered."""
        self._pending.clear()
        self._pending_bytes = 0
        self._in_flight.clear()
