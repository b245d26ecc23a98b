"""Shared helpers for the resource model tests: capture the InvalidResource a bad input raises."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kmesh.errors import InvalidResource
from kmesh.model import load_documents, parse_resource


@pytest.fixture
def yaml_error() -> Callable[[str], InvalidResource]:
    """Load a YAML stream that must fail, and return the InvalidResource it raised."""

    def load(text: str) -> InvalidResource:
        with pytest.raises(InvalidResource) as info:
            load_documents(text, source="input.yaml")
        return info.value

    return load


@pytest.fixture
def doc_error() -> Callable[[object], InvalidResource]:
    """Parse a document that must fail, and return the InvalidResource it raised."""

    def parse(doc: object) -> InvalidResource:
        with pytest.raises(InvalidResource) as info:
            parse_resource(doc)
        return info.value

    return parse
