"""Golden files for generated proxy configs: ``tests/golden/proxyconfig/<name>.yaml``, rewritten when
``KMESH_UPDATE_GOLDEN=1`` (as Kuma's ``testdata/*.golden``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "proxyconfig"


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    def check(name: str, actual: str) -> None:
        path = GOLDEN_DIR / f"{name}.yaml"
        if os.environ.get("KMESH_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        assert path.exists(), f"{path} is missing; run the test with KMESH_UPDATE_GOLDEN=1 to create it"
        assert actual == path.read_text(encoding="utf-8"), f"generated config differs from {path}"

    return check
