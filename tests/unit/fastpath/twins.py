"""The two implementations of parse_client_hello under test, as the fixtures and property tests load them.

With ``KMESH_NO_EXTENSIONS=1`` only the pure-Python twin is tested. Otherwise the compiled twin must be
importable: when it is not, ``load_parser`` fails the test, loudly, rather than skipping it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from kmesh._fastpath import NO_EXTENSIONS, _sni_py
from kmesh._fastpath._sni_types import SniResult

Parser = Callable[..., SniResult]

IMPLEMENTATIONS = ["py"] if NO_EXTENSIONS else ["py", "c"]


def load_parser(name: str) -> Parser:
    if name == "py":
        return _sni_py.parse_client_hello
    try:
        module = importlib.import_module("kmesh._fastpath._sni_c")
    except ImportError as exc:
        pytest.fail(
            f"kmesh._fastpath._sni_c cannot be imported ({exc}). Build it with "
            "`.venv/bin/pip install -e . --no-deps --no-build-isolation`, or set KMESH_NO_EXTENSIONS=1 "
            "to test the pure-Python twin alone.",
            pytrace=False,
        )
    parse: Parser = module.parse_client_hello
    return parse
