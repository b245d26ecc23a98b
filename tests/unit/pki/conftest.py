"""Fixtures for the PKI tests: the CA of mesh ``default`` and one of another mesh (made once per module:
key generation is the slow part, and the tests never change a CA).
"""

from __future__ import annotations

import pytest

from kmesh.pki import CaBundle, generate_ca

from .helpers import NOW


@pytest.fixture(scope="module")
def mesh_ca() -> CaBundle:
    return generate_ca("default", "ca-1", now=NOW)


@pytest.fixture(scope="module")
def other_mesh_ca() -> CaBundle:
    return generate_ca("other", "ca-1", now=NOW)
