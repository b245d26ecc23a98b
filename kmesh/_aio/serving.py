"""The connections a server accepted and the task serving each, shared by the KDS global server and the
DP server: spawned when a connection is made, closed all together when the server stops.

Rules:

- Each accepted connection is served by one task (:meth:`LiveConnections.spawn`). An exception escaping
  the serving coroutine is logged (with the connection's peer) on the server's logger and closes the
  connection with the server's internal-error code; it never reaches the event loop.
- Whatever way serving ends, the connection gets ``shutdown_s`` to flush its last bytes (a Close or
  Reject) and go; a peer that does not read them is dropped (``abort``).
- The connection and its task are forgotten as soon as the task ends; ``on_done`` (if given) runs right
  after, so the owner can forget what it keeps per connection.
- :meth:`LiveConnections.close_all` sends a Close to every live connection, waits ``shutdown_s`` for
  their tasks, cancels the ones still running, and aborts the connections left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar, final

__all__ = ["LiveConnections", "ServedConnection"]


class ServedConnection(Protocol):
    """What :class:`LiveConnections` needs of a connection (KdsConnection, DpConnection)."""

    @property
    def peer(self) -> str: ...

    def close(self, code: str = ..., reason: str = "") -> None: ...

    def abort(self) -> None: ...

    async def wait_closed(self) -> None: ...


ConnT = TypeVar("ConnT", bound=ServedConnection)


@final
class LiveConnections(Generic[ConnT]):
    """Live connections of a server and their serving tasks; see the module rules."""

    __slots__ = ("_error_code", "_error_reason", "_failure_message", "_log", "_shutdown_s", "_tasks")

    def __init__(
        self,
        *,
        shutdown_s: float,
        log: logging.Logger,
        failure_message: str,
        error_code: str,
        error_reason: str,
    ) -> None:
        self._shutdown_s = shutdown_s
        self._log = log
        self._failure_message = failure_message
        self._error_code = error_code
        self._error_reason = error_reason
        self._tasks: dict[asyncio.Task[None], ConnT] = {}

    def connections(self) -> list[ConnT]:
        """The live connections, in the order they were made."""
        return list(self._tasks.values())

    def spawn(
        self,
        conn: ConnT,
        serve: Coroutine[Any, Any, None],
        *,
        name: str,
        on_done: Callable[[], object] | None = None,
    ) -> None:
        """Serve ``conn`` by running ``serve`` in its own task."""
        task = asyncio.create_task(self._guard(conn, serve), name=name)
        self._tasks[task] = conn

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.pop(t, None)
            if on_done is not None:
                on_done()

        task.add_done_callback(done)

    async def _guard(self, conn: ConnT, serve: Coroutine[Any, Any, None]) -> None:
        try:
            await serve
        except Exception:
            self._log.exception(self._failure_message, extra={"peer": conn.peer})
            conn.close(self._error_code, self._error_reason)
        finally:
            try:
                await asyncio.wait_for(conn.wait_closed(), self._shutdown_s)
            except TimeoutError:
                conn.abort()  # the peer does not read its last bytes: drop it

    async def close_all(self, code: str, reason: str) -> None:
        """Close every live connection and wait (at most ``shutdown_s``) for their tasks to end."""
        for conn in self.connections():
            conn.close(code, reason)
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._shutdown_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for conn in self.connections():
            conn.abort()
