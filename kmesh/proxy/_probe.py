"""A sidecar's probe of its application: is each inbound's app accepting connections?

Other zones weigh this zone by its healthy instances and locality-aware clients fail over when local ones
are unhealthy (DESIGN.md, "Cross-zone routing"), so a sidecar whose app died must say so: it reports the
inbound unready to its zone control plane (``DpClient.set_inbound_health``), which recomputes everyone's
endpoints and the ingresses' ``availableServices``.

Rules:
- A TCP connect to ``service_address:service_port`` every ``interval_s`` (1 s), ``timeout_s`` (1 s) each;
  the first probe runs at once. Ready after ``healthy_threshold`` (1) successes in a row, unready after
  ``unhealthy_threshold`` (1) failures in a row: a refused connect is not a blip, and the cost of a false
  alarm (traffic moves for a second) is lower than sending callers to a dead app.
- Until the first probe answers nothing is reported: Kuma's rule, no health information means healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final, final

__all__ = ["AppProbe"]

DEFAULT_INTERVAL_S: Final = 1.0
DEFAULT_TIMEOUT_S: Final = 1.0


@final
class AppProbe:
    """Probes one app address and calls ``report(ready)`` whenever its state changes."""

    def __init__(
        self,
        host: str,
        port: int,
        report: Callable[[bool], None],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        healthy_threshold: int = 1,
        unhealthy_threshold: int = 1,
    ) -> None:
        self.host, self.port = host, port
        self._report = report
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._healthy_threshold = healthy_threshold
        self._unhealthy_threshold = unhealthy_threshold
        self.ready: bool | None = None
        self._streak = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"probe-{self.port}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def probe_once(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self._timeout_s)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _run(self) -> None:
        while True:
            self._observe(await self.probe_once())
            await asyncio.sleep(self._interval_s)

    def _observe(self, ok: bool) -> None:
        if ok == self.ready:
            self._streak = 0
            return
        self._streak += 1
        needed = self._healthy_threshold if ok else self._unhealthy_threshold
        if self.ready is None or self._streak >= needed:
            self.ready, self._streak = ok, 0
            self._report(ok)
