"""Fixtures that run every SNI parser test over both twins (the pattern of aio-libs/propcache's tests).

``parser`` is parametrized ``py``/``c``. The ``c`` case fails, loudly, when the extension cannot be
imported: a missing build must not pass as a skip. With ``KMESH_NO_EXTENSIONS=1`` only ``py`` runs.
"""

from __future__ import annotations

import pytest

from .twins import IMPLEMENTATIONS, Parser, load_parser


@pytest.fixture(scope="session", params=IMPLEMENTATIONS)
def parser(request: pytest.FixtureRequest) -> Parser:
    """One implementation of parse_client_hello: ``py`` or ``c``."""
    return load_parser(request.param)


@pytest.fixture(scope="session")
def parsers() -> list[Parser]:
    """Every implementation under test, the reference first."""
    return [load_parser(name) for name in IMPLEMENTATIONS]
