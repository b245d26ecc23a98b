"""Dialling a control plane over TLS and hanging up, as the zone's KDS client and the proxy's DP client both
do: one place for the timeouts, the operator's wording of a failed dial, and a bounded close.

Rules:
- A dial is bounded by ``timeout_s`` for TCP and the TLS handshake together; a failure raises
  :class:`DialFailed` whose message says what went wrong in an operator's words, naming ``peer``.
- Hanging up sends the protocol's Close, waits up to ``timeout_s`` for the peer's side, then aborts, so a
  silent peer never holds a client's shutdown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Protocol, TypeVar

from kmesh.errors import KmeshError

__all__ = ["DialFailed", "dial_tls", "hang_up"]


class _Closable(Protocol):
    def close(self, code: str, reason: str) -> None: ...

    async def wait_closed(self) -> None: ...

    def abort(self) -> None: ...


ProtocolT = TypeVar("ProtocolT", bound=asyncio.BaseProtocol)


class DialFailed(KmeshError):
    """The connection could not be made; the message is for the log and ``last_error``."""


async def dial_tls(
    factory: Callable[[], ProtocolT],
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    server_hostname: str | None,
    timeout_s: float,
    peer: str,
) -> ProtocolT:
    """Connect ``factory()``'s protocol to ``host:port`` over TLS. Raises DialFailed."""
    loop = asyncio.get_running_loop()
    try:
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                factory,
                host,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout_s,
            ),
            timeout_s,
        )
    except (OSError, TimeoutError) as exc:
        raise DialFailed(describe_dial_failure(exc, peer=peer)) from exc
    return conn


def describe_dial_failure(exc: BaseException, *, peer: str) -> str:
    """``exc`` (a failed dial) in an operator's words; ``peer`` names who was dialled ("the global")."""
    if isinstance(exc, TimeoutError):
        return "timed out connecting (TCP or TLS handshake)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {peer}'s certificate was not accepted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc) or type(exc).__name__


async def hang_up(conn: _Closable, code: str, reason: str, *, timeout_s: float) -> None:
    """Close ``conn`` with ``code``/``reason`` and wait for it, aborting after ``timeout_s``."""
    conn.close(code, reason)
    try:
        await asyncio.wait_for(conn.wait_closed(), timeout_s)
    except TimeoutError:
        conn.abort()
