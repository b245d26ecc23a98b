"""Turn msgspec's decoding errors into ``FieldViolation``s a user can act on.

msgspec reports one error as text, ``"Expected `int`, got `str` - at `$.networking.inbound[0].port`"``. Here
the text is split into the path and the problem, the path is rewritten in kmesh's dotted form, and the
problem in plain words: ``expected int, got str``; ``unknown field`` (at the unknown field's own path, with
the fields that are allowed); ``required field is missing`` (at the missing field's path); for enums, the
allowed values. What the message leaves out (the offending map key, the bad value) is recovered by following
the path through the input document and the spec's type (``msgspec.inspect``); the map key by decoding again
with the map cut after each key until the same error comes back, since msgspec stops at the first error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import msgspec
import msgspec.inspect as mi

from kmesh.errors import FieldViolation
from kmesh.model import _paths
from kmesh.model._fields import MARK

__all__ = ["translate"]

_LOCATED: Final = re.compile(r"(?s)(?P<msg>.*) - at `(?P<at>[^`]*)`(?: in `(?P<within>[^`]*)`)?")
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_UNKNOWN: Final = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`")
_MISSING: Final = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_EXPECTED: Final = re.compile(r"Expected `(?P<want>[^`]*)`(?P<rest>[^,]*)(?:, got `(?P<got>[^`]*)`)?")
_ENUM: Final = re.compile(r"Invalid enum value (?P<value>.*)")
_WORDS: Final = {"object": "mapping", "array": "list"}
_MISSING_STEP: Final = object()
# Marked types whose wrong-type error is better said in words than as msgspec's type names.
_DESCRIBED: Final = {
    "duration": "expected a duration string such as 15s, 1h30m or 500ms",
    "positive-duration": "expected a duration string such as 15s, 1h30m or 500ms",
    "percentage": 'expected a percentage such as 50 or "99.5"',
}


def translate(exc: msgspec.ValidationError, spec_type: type, doc: object, prefix: str) -> FieldViolation:
    """The violation ``exc`` describes, decoding ``doc`` as ``spec_type``; paths go under ``prefix``."""
    text = str(exc)
    located = _LOCATED.fullmatch(text)
    message = located["msg"] if located else text
    steps: list[str | int] = []
    key_error = False
    if located:
        at = located["within"] or located["at"]
        key_error = located["within"] is not None

        def same_error(body: object) -> bool:
            try:
                msgspec.convert(body, spec_type)
            except msgspec.ValidationError as again:
                return str(again) == text
            return False

        steps = _steps(at, doc, same_error)
    here, declared = _follow(_type_info(spec_type), steps)
    described = _DESCRIBED.get(_marker(declared) or "")
    if described and _EXPECTED.fullmatch(message) and not key_error:
        return FieldViolation(_paths.join(prefix, here), f"{described}, got {_lookup(doc, steps)!r}")
    field, reason = _explain(message, here, steps, _unwrap(declared, want_container=True), doc, key_error)
    return FieldViolation(_paths.join(prefix, field), reason)


def _explain(
    message: str, here: str, steps: list[str | int], info: mi.Type | None, doc: object, key_error: bool
) -> tuple[str, str]:
    if m := _UNKNOWN.fullmatch(message):
        known = [f.encode_name for f in info.fields] if isinstance(info, mi.StructType) else []
        hint = f"; allowed here: {', '.join(known)}" if known else ""
        return _paths.join(here, m["name"]) if here else m["name"], f"unknown field{hint}"
    if m := _MISSING.fullmatch(message):
        return _paths.join(here, m["name"]) if here else m["name"], "required field is missing"
    if m := _ENUM.fullmatch(message):
        allowed = _allowed_values(info)
        choices = f"expected one of {', '.join(allowed)}, " if allowed else ""
        return here, f"{choices}got {m['value']}"
    if m := _EXPECTED.fullmatch(message):
        want = " | ".join(_WORDS.get(w, w) for w in m["want"].split(" | "))
        reason = f"expected {want}{m['rest']}"
        if key_error:
            reason = f"keys must be strings, got {_WORDS.get(m['got'], m['got'])}"
        elif m["got"]:
            reason += f", got {_WORDS.get(m['got'], m['got'])}"
        else:
            value = _lookup(doc, steps)
            if value is not _MISSING_STEP:
                reason += f", got {value!r}"
        return here, reason
    if message.startswith("Invalid RFC3339"):
        return here, "expected an RFC 3339 time such as 2024-01-01T00:00:00Z"
    return here, message[:1].lower() + message[1:]


def _steps(at: str, doc: object, same_error: Callable[[object], bool]) -> list[str | int]:
    """msgspec's ``$.a[0].b`` as steps, with each ``[...]`` (an unnamed map key) resolved."""
    steps: list[str | int] = []
    for m in _STEP.finditer(at):
        if m[1] is not None:
            steps.append(m[1])
        elif m[2] is not None:
            steps.append(int(m[2]))
        else:
            node = _lookup(doc, steps)
            if not isinstance(node, Mapping):
                break
            keys = list(node)
            bad = next(
                (
                    k
                    for i, k in enumerate(keys)
                    if same_error(_replace(doc, steps, {key: node[key] for key in keys[: i + 1]}))
                ),
                None,
            )
            if bad is None:
                break
            steps.append(str(bad))
    return steps


def _replace(doc: object, steps: Sequence[str | int], value: object) -> object:
    """A copy of ``doc`` with the node at ``steps`` replaced by ``value`` (containers on the way copied)."""
    if not steps:
        return value
    head, rest = steps[0], steps[1:]
    if isinstance(doc, list) and isinstance(head, int):
        copy = list(doc)
        copy[head] = _replace(doc[head], rest, value)
        return copy
    if isinstance(doc, Mapping) and isinstance(head, str):
        return {**doc, head: _replace(doc[head], rest, value)}
    return doc


def _lookup(doc: object, steps: Sequence[str | int]) -> object:
    node = doc
    for step in steps:
        if isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
            continue
        if isinstance(node, Mapping) and isinstance(step, str) and step in node:
            node = node[step]
            continue
        return _MISSING_STEP
    return node


@functools.cache
def _type_info(spec_type: type) -> mi.Type:
    return mi.type_info(spec_type)


def _follow(info: mi.Type | None, steps: Sequence[str | int]) -> tuple[str, mi.Type | None]:
    """The user-facing path of ``steps`` and the declared type there (None where it cannot be followed).

    The type tells a struct field (``.name``) from a map key (``["kuma.io/service"]``).
    """
    path = ""
    for step in steps:
        info = _unwrap(info, want_container=True)
        if isinstance(step, int):
            path = _paths.index(path, step)
            info = info.item_type if isinstance(info, mi.ListType | mi.VarTupleType) else None
        elif isinstance(info, mi.DictType):
            path = _paths.key(path, step)
            info = info.value_type
        else:
            path = _paths.join(path, step)
            fields = info.fields if isinstance(info, mi.StructType) else ()
            info = next((f.type for f in fields if f.encode_name == step), None)
    return path, info


def _unwrap(info: mi.Type | None, *, want_container: bool) -> mi.Type | None:
    while True:
        if isinstance(info, mi.Metadata):
            info = info.type
        elif isinstance(info, mi.UnionType):
            members = [t.type if isinstance(t, mi.Metadata) else t for t in info.types]
            containers = [t for t in members if isinstance(t, mi.StructType | mi.DictType | mi.ListType)]
            scalars = [t for t in members if not isinstance(t, mi.NoneType)]
            picked = containers if want_container and containers else scalars
            if not picked:
                return None
            info = picked[0]
        else:
            return info


def _marker(info: mi.Type | None) -> str | None:
    """The kmesh marker (``_fields.MARK``) on ``info`` or on a member of its union."""
    if isinstance(info, mi.Metadata):
        marker = (info.extra or {}).get(MARK)
        return marker if isinstance(marker, str) else _marker(info.type)
    if isinstance(info, mi.UnionType):
        return next((m for m in map(_marker, info.types) if m is not None), None)
    return None


def _allowed_values(info: mi.Type | None) -> list[str]:
    if isinstance(info, mi.LiteralType):
        return [str(v) for v in info.values]
    if isinstance(info, mi.EnumType):
        return [str(member.value) for member in info.cls]
    return []
