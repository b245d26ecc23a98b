"""Semantic rules beyond field types, one case per rule: the offending field and a reason that says why.

The cases live in ``rules_cases.yaml`` beside this file, as the documents a user would write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kmesh.errors import InvalidResource
from kmesh.model import parse_resource

CASES = yaml.safe_load((Path(__file__).parent / "rules_cases.yaml").read_text())


def test_cases_are_distinct() -> None:
    names = [c["case"] for c in CASES["refused"] + CASES["accepted"]]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES["refused"], ids=lambda c: c["case"])
def test_refused(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidResource) as info:
        parse_resource(case["doc"])
    found = {v.field: v.reason for v in info.value.violations}
    assert case["field"] in found, found
    assert case["reason"] in found[case["field"]]


@pytest.mark.parametrize("case", CASES["accepted"], ids=lambda c: c["case"])
def test_accepted(case: dict[str, Any]) -> None:
    resource = parse_resource(case["doc"])
    assert resource.meta.type == case["doc"]["type"]
