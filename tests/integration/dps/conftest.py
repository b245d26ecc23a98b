"""Fixtures of the DP integration tests: a real store of each kind (memory and SQLite), closed after use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kmesh.store import ResourceStore

from .support import open_store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResourceStore]:
    opened = open_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def memory_store(tmp_path: Path) -> AsyncIterator[ResourceStore]:
    opened = open_store("memory", tmp_path)
    try:
        yield opened
    finally:
        await opened.close()
