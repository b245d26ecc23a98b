"""Fixtures of the KDS integration tests: one TLS identity for the global per module (making keys is slow
and the contexts are not bound to an event loop)."""

from __future__ import annotations

import pytest

from .support import Tls, make_tls


@pytest.fixture(scope="module")
def tls() -> Tls:
    return make_tls()
