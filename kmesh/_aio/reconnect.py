"""Keeping one client connection up, as the zone's KDS client and the proxy's DP client both do: dial,
converse, hang up, back off, dial again.

Rules:
- ``_session(conn)`` owns one dialled connection until it ends, hanging up included, and returns
  ``(code, reason, was_established)``; a failed dial ends as ``(CODE_CONNECT_FAILED, message, False)``.
  Every dial, failed or not, is counted first (``_count_dial``).
- ``_stop_requested()`` is read after every connection: the owner's stop may set it across any await, and
  the loop then returns at once, without recording, logging or sleeping.
- Otherwise an established connection that stayed up ``stable_after_s`` resets the backoff; the end is
  recorded (``_record_end``, then ``last_error``); one warning is logged (``_DISCONNECTED`` or
  ``_CANNOT_CONNECT``) with the client's ``_log_fields()``, then ``code``, ``reason`` and ``retry_in_s``;
  and the loop sleeps the backoff delay, or until ``_wakeup`` is set.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import ClassVar, Final, Generic, TypeVar, final

from kmesh._aio.dial import DialFailed, dial_tls
from kmesh.wire.backoff import Backoff

__all__ = ["CODE_CONNECT_FAILED", "Endpoint", "Outcome", "Reconnecting"]

CODE_CONNECT_FAILED: Final = "connect_failed"

Outcome = tuple[str, str, bool]
"""How a connection ended: ``(code, reason, was_established)``."""

ConnT = TypeVar("ConnT", bound=asyncio.BaseProtocol)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where a client dials; ``peer`` names it in a failed dial's message ("the control plane")."""

    host: str
    port: int
    ssl_context: ssl.SSLContext
    server_hostname: str | None
    connect_timeout_s: float
    peer: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Reconnecting(abc.ABC, Generic[ConnT]):
    """The reconnect loop of a client, as a base class; see the module rules.

    The subclass sets ``_endpoint``, ``_backoff``, ``_wakeup`` and ``last_error`` in its ``__init__``, names
    its logger and warnings in the class attributes, and fills in the hooks; :meth:`_run` is the loop.
    """

    _log: ClassVar[logging.Logger]
    _DISCONNECTED: ClassVar[str]
    _CANNOT_CONNECT: ClassVar[str]

    _endpoint: Endpoint
    _backoff: Backoff
    _wakeup: asyncio.Event
    last_error: str | None

    @abc.abstractmethod
    def _stop_requested(self) -> bool:
        """Whether the owner's stop was called; read after every await."""
        ...

    @abc.abstractmethod
    def _new_connection(self) -> ConnT: ...

    @abc.abstractmethod
    async def _session(self, conn: ConnT) -> Outcome:
        """One dialled connection until it ends, hanging up included."""
        ...

    @abc.abstractmethod
    def _count_dial(self) -> None: ...

    @abc.abstractmethod
    def _record_end(self, code: str, reason: str, established: bool) -> None:
        """Record how a connection ended, beyond ``last_error``."""
        ...

    @abc.abstractmethod
    def _log_fields(self) -> dict[str, object]:
        """The fields of the warning before ``code``, ``reason`` and ``retry_in_s``."""
        ...

    async def _run(self) -> None:
        """Connect, and reconnect after each end, until a stop is requested."""
        loop = asyncio.get_running_loop()
        backoff = self._backoff
        backoff.reset()
        while not self._stop_requested():
            started = loop.time()
            code, reason, established = await self._connect_once()
            if self._stop_requested():
                return
            if established:
                backoff.reset_if_stable(loop.time() - started)
            delay = backoff.next_delay()
            self._record_end(code, reason, established)
            self.last_error = f"{code}: {reason}"
            self._log.warning(
                self._DISCONNECTED if established else self._CANNOT_CONNECT,
                extra={**self._log_fields(), "code": code, "reason": reason, "retry_in_s": round(delay, 3)},
            )
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

    async def _connect_once(self) -> Outcome:
        self._count_dial()
        endpoint = self._endpoint
        try:
            conn = await dial_tls(
                self._new_connection,
                host=endpoint.host,
                port=endpoint.port,
                ssl_context=endpoint.ssl_context,
                server_hostname=endpoint.server_hostname,
                timeout_s=endpoint.connect_timeout_s,
                peer=endpoint.peer,
            )
        except DialFailed as exc:
            return CODE_CONNECT_FAILED, str(exc), False
        return await self._session(conn)
