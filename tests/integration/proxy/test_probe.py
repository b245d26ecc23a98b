"""``AppProbe`` against a real listening socket on loopback.

What is checked: the first probe reports at once (True for a listening app, False for none); closing the
app's server is reported False, listening again on the same port True; a state that does not change is
not reported again; with thresholds above one, a single odd result does not flip the state.

No test asserts how long anything took: every wait is on a report or on a number of probes made, and its
bound only turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from kmesh.proxy._probe import AppProbe
from kmesh.testing import free_port

WAIT_S = 10.0
INTERVAL_S = 0.02
TIMEOUT_S = 1.0


class Recorder:
    """Counts the probes made (wrapping ``probe_once``) and collects what the probe reports."""

    def __init__(self) -> None:
        self.reports: asyncio.Queue[bool] = asyncio.Queue()
        self.results: list[bool] = []
        self.seen_at_report: list[list[bool]] = []
        self._probed = asyncio.Event()

    def report(self, ready: bool) -> None:
        # The probe reports right after the probe that decided it: ``results`` ends with that probe.
        self.seen_at_report.append(list(self.results))
        self.reports.put_nowait(ready)

    def wrap(self, probe: AppProbe, monkeypatch: pytest.MonkeyPatch) -> None:
        inner = probe.probe_once

        async def counted() -> bool:
            result = await inner()
            self.results.append(result)
            self._probed.set()
            return result

        monkeypatch.setattr(probe, "probe_once", counted)

    async def next_report(self) -> bool:
        return await asyncio.wait_for(self.reports.get(), WAIT_S)

    async def probes(self, count: int) -> list[bool]:
        """Wait until ``count`` more probes have completed (and the one before each was observed);
        return their results."""
        start = len(self.results)

        async def wait() -> None:
            while len(self.results) < start + count + 1:
                self._probed.clear()
                await self._probed.wait()

        await asyncio.wait_for(wait(), WAIT_S)
        return self.results[start : start + count]


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


@contextlib.asynccontextmanager
async def app_listening(port: int) -> AsyncIterator[None]:
    server = await asyncio.start_server(_accept, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


def state(probe: AppProbe) -> bool | None:
    """What the probe last decided (read through a call, so each assertion reads it afresh)."""
    return probe.ready


@contextlib.asynccontextmanager
async def running(probe: AppProbe) -> AsyncIterator[AppProbe]:
    probe.start()
    try:
        yield probe
    finally:
        await probe.close()


async def test_probe_follows_the_app_going_away_and_coming_back(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    rec = Recorder()
    probe = AppProbe("127.0.0.1", port, rec.report, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S)
    rec.wrap(probe, monkeypatch)
    async with contextlib.AsyncExitStack() as stack:
        app = await stack.enter_async_context(contextlib.AsyncExitStack())
        await app.enter_async_context(app_listening(port))
        await stack.enter_async_context(running(probe))  # the first probe runs once the app listens
        assert await rec.next_report() is True
        assert await rec.probes(2) == [True, True]
        await app.aclose()
        # The app's server is closed: the next probe is refused.
        assert await rec.next_report() is False
        assert state(probe) is False
        assert await rec.probes(3) == [False, False, False]
        assert rec.reports.empty()
        # It listens again on the same port.
        async with app_listening(port):
            assert await rec.next_report() is True
            assert state(probe) is True
            assert await rec.probes(2) == [True, True]
        assert await rec.next_report() is False
    assert rec.reports.empty()


async def test_the_first_probe_reports_unready_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    probe = AppProbe("127.0.0.1", free_port(), rec.report, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S)
    rec.wrap(probe, monkeypatch)
    async with running(probe):
        assert await rec.next_report() is False
        assert await rec.probes(2) == [False, False]
        assert rec.reports.empty()


async def test_probe_once_answers_without_starting_the_loop() -> None:
    port = free_port()
    probe = AppProbe("127.0.0.1", port, lambda ready: None, timeout_s=TIMEOUT_S)
    assert await probe.probe_once() is False
    async with app_listening(port):
        assert await probe.probe_once() is True
    assert state(probe) is None  # probe_once observes nothing by itself


async def test_thresholds_ignore_a_single_odd_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``unhealthy_threshold=3`` a closed app is reported only after three refused probes in a row."""
    port = free_port()
    rec = Recorder()
    probe = AppProbe(
        "127.0.0.1",
        port,
        rec.report,
        interval_s=INTERVAL_S,
        timeout_s=TIMEOUT_S,
        healthy_threshold=2,
        unhealthy_threshold=3,
    )
    rec.wrap(probe, monkeypatch)
    async with contextlib.AsyncExitStack() as stack:
        app = await stack.enter_async_context(contextlib.AsyncExitStack())
        await app.enter_async_context(app_listening(port))
        await stack.enter_async_context(running(probe))
        # The first answer is reported at once, whatever the thresholds.
        assert await rec.next_report() is True
        await app.aclose()
        assert await rec.next_report() is False
        # Reported after the third refused probe in a row, not the first.
        seen = rec.seen_at_report[-1]
        assert seen[-3:] == [False, False, False]
        assert seen[-4] is True
        async with app_listening(port):
            assert await rec.next_report() is True
            seen = rec.seen_at_report[-1]
            assert seen[-2:] == [True, True]
            assert seen[-3] is False
