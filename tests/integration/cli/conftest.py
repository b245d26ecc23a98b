"""Fixtures for running the real ``kmeshctl`` (``python -m kmesh.cli``) against a real ``kmesh-cp``, or
against a real ApiServer in a background thread when the test needs hooks only a global passes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kmesh.api import ApiServer
from kmesh.store import MemoryStore
from kmesh.testing import CpProcess

T = TypeVar("T")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cp() -> Iterator[CpProcess]:
    with CpProcess() as process:
        yield process


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    # A directory kmeshctl must create itself, so its mode is kmeshctl's doing.
    return tmp_path / "kmeshctl" / "config.yaml"


@pytest.fixture
def kmeshctl(tmp_path: Path, config_file: Path) -> Run:
    """Run kmeshctl with a private config file and HOME; returns the completed process."""
    env = {k: v for k, v in os.environ.items() if k != "KMESHCTL_CONFIG"}
    env["KMESHCTL_CONFIG"] = str(config_file)
    env["HOME"] = str(tmp_path / "home")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kmesh.cli", *args],
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

    return run


@pytest.fixture
def connected(cp: CpProcess, kmeshctl: Run) -> Run:
    """``kmeshctl`` with the test's control plane added and current."""
    result = kmeshctl("config", "control-planes", "add", "--name", "test", "--address", cp.api_url)
    assert result.returncode == 0, result.stderr
    return kmeshctl


class BackgroundApi:
    """A real ApiServer over a real MemoryStore, on its own event loop in a thread, for kmeshctl to call.

    ``kmesh-cp`` runs standalone only until the multi-zone wiring lands, so the tests of what a global
    serves (zone tokens, the delete guard, zones with insights) run the API in-process with the hooks
    the global passes. ``run(coro)`` runs a coroutine on the server's loop (store writes) and returns its
    result.
    """

    def __init__(self, **api_options: Any) -> None:
        self._options = api_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="background-api", daemon=True)
        self._store: MemoryStore | None = None
        self._server: ApiServer | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self) -> None:
        # Made on the server's loop: the store and the server belong to it.
        self._store = MemoryStore()
        self._server = ApiServer(self._store, port=0, instance_id="background-api", **self._options)
        await self._server.start()

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    @property
    def store(self) -> MemoryStore:
        assert self._store is not None
        return self._store

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def stop(self) -> None:
        if self._server is not None:
            self.run(self._server.stop())
        if self._store is not None:
            self.run(self._store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


StartBackgroundApi = Callable[..., BackgroundApi]


@pytest.fixture
def background_api() -> Iterator[StartBackgroundApi]:
    """Starts BackgroundApis (keyword arguments go to ApiServer); stops them all at the end."""
    started: list[BackgroundApi] = []

    def start(**api_options: Any) -> BackgroundApi:
        api = BackgroundApi(**api_options)
        started.append(api)
        api.start()
        return api

    yield start
    for api in started:
        api.stop()
