"""Field paths as users read them: ``networking.inbound[0].port``, ``tags["kuma.io/service"]``.

Rules:
- Struct fields are joined with dots, in their wire (camelCase) names; list items are ``[N]``; map keys are
  ``["key"]`` with the key JSON-quoted, because tag and label keys contain dots and slashes.
- ``split`` is the inverse of the builders, so the YAML loader can walk a document's nodes to the line of
  a reported field.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = ["index", "join", "key", "split"]

_TOKEN: Final = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def join(prefix: str, rel: str) -> str:
    """``rel`` (a path relative to the value at ``prefix``) appended to ``prefix``."""
    if not rel:
        return prefix
    if not prefix or rel.startswith("["):
        return prefix + rel
    return f"{prefix}.{rel}"


def index(prefix: str, i: int) -> str:
    return f"{prefix}[{i}]"


def key(prefix: str, k: str) -> str:
    return f"{prefix}[{json.dumps(k, ensure_ascii=False)}]"


def split(path: str) -> list[str | int]:
    """The steps of ``path``: a str for a field or map key, an int for a list index.

    Stops at the first piece it cannot read, so a malformed path still yields its readable prefix.
    """
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            break
        name, number, quoted = match.groups()
        if name is not None:
            steps.append(name)
        elif number is not None:
            steps.append(int(number))
        else:
            steps.append(str(json.loads(quoted)))
        pos = match.end()
    return steps
