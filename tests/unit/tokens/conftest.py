"""Fixtures for the token tests: a signing key, a second (foreign) key, and a key set of the first."""

from __future__ import annotations

import pytest

from kmesh.tokens import KeySet, SigningKey, generate_signing_key


@pytest.fixture
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture
def other_key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture
def keys(key: SigningKey) -> KeySet:
    return KeySet([key])
