"""Fixtures of the end-to-end tests: one cluster of real control planes per test module (starting
processes is what costs), brought back to health before each test so a test that failed half-way, or one
that stopped a process on purpose, does not decide the next one's outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster.start(tmp_path_factory.mktemp("multizone"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def mz(cluster: Cluster) -> Cluster:
    """The module's cluster, every process running, the link open, both zones Online and in sync."""
    cluster.ensure_healthy()
    return cluster
