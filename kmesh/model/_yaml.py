"""Load a multi-document YAML stream of resources, pointing errors at the file, document and line.

Rules:
- Documents are numbered from 1 in stream order, empty ones included (so ``document 3`` is the third
  ``---`` section a reader counts), and empty documents are skipped.
- Broken YAML raises InvalidResource with the source, the line YAML stopped at and its problem.
- Every document is composed to nodes first: a key repeated in one mapping is refused (YAML parsers keep
  the last silently, which hides mistakes), and a bad field is mapped back through the nodes to the line
  where it is written (the field's key, or the nearest enclosing one that exists).
- Everything is validated before anything is returned: a stream applies whole or not at all.
"""

from __future__ import annotations

from typing import Final

import yaml

from kmesh.errors import FieldViolation, InvalidResource
from kmesh.model import _paths
from kmesh.model._codec import parse_resource
from kmesh.model._resource import Resource

__all__ = ["load_documents"]

# libyaml's loader when PyYAML was built with it: same results, much faster on large streams.
_Loader: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_documents(text: str, *, source: str) -> list[Resource]:
    """Every resource in the YAML stream ``text`` (``source`` names it in errors, e.g. the file name).

    Raises InvalidResource for broken YAML or for the first document that is not a valid resource, with
    ``source=f"{source}, document {n}"``, the line of the offending field and the resource when known.
    """
    resources: list[Resource] = []
    loader = _Loader(text)
    number = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            number += 1
            where = f"{source}, document {number}"
            if node is None:
                continue
            _refuse_duplicate_keys(node, "", where, set())
            data = loader.construct_document(node)
            if data is None:
                continue
            try:
                resources.append(parse_resource(data, source=where))
            except InvalidResource as exc:
                first = exc.violations[0].field if exc.violations else ""
                raise InvalidResource(
                    exc.violations, source=where, line=_line_of(node, first), resource=exc.resource
                ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise InvalidResource(
            [FieldViolation("", f"invalid YAML: {problem}")],
            source=source,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidResource([FieldViolation("", f"invalid YAML: {exc}")], source=source) from None
    finally:
        loader.dispose()
    return resources


def _refuse_duplicate_keys(node: yaml.Node, path: str, where: str, visited: set[int]) -> None:
    # An alias makes several paths share one node (even a cycle); each node is checked once.
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if isinstance(key_node, yaml.ScalarNode) and key in seen and key != "<<":
                raise InvalidResource(
                    [FieldViolation(_paths.join(path, key), "duplicate key")],
                    source=where,
                    line=key_node.start_mark.line + 1,
                )
            seen.add(key)
            _refuse_duplicate_keys(value_node, _paths.join(path, key), where, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, _paths.index(path, i), where, visited)


def _line_of(node: yaml.Node, path: str) -> int:
    """1-based line of ``path`` in the document ``node``: the deepest step that exists in the YAML."""
    line = node.start_mark.line
    for step in _paths.split(path):
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            found = next(((k, v) for k, v in node.value if str(k.value) == step), None)
            if found is None:
                break
            line = found[0].start_mark.line
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line
        else:
            break
    return line + 1
