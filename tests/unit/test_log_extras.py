"""No log call passes an ``extra`` key that ``logging.LogRecord`` already owns (``name``, ``msg``,
``args``...): ``Logger.makeRecord`` raises KeyError for those, but only when the level is enabled, so the
bug hides in tests that log at WARNING and kills a server that logs at INFO (it did: the DP client's
"joined the control plane" line took down every proxy at the default level)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import kmesh

RESERVED = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
}


def test_no_log_call_passes_a_reserved_extra_key() -> None:
    root = Path(kmesh.__file__).parent
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg != "extra" or not isinstance(keyword.value, ast.Dict):
                    continue
                found.extend(
                    f"{path.relative_to(root)}:{key.lineno}: {key.value!r}"
                    for key in keyword.value.keys
                    if isinstance(key, ast.Constant) and key.value in RESERVED
                )
    assert not found, "extra keys that LogRecord reserves: " + ", ".join(found)
