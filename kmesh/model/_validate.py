"""Semantic validation of a decoded spec: every rule its field types cannot express.

Rules:
- The walk follows the spec's type tree from ``msgspec.inspect`` alongside its value, so generic structs
  (``To[RetryConf]``) and optional fields resolve to the declared types.
- For every field whose type carries a marker (see ``_fields``), ``CHECKS[marker]`` runs on its value;
  every struct's own ``problems()`` runs after its fields. All violations are collected, not just the first,
  each with its full path in wire names.
- Decoding (types, bounds, required and unknown fields) is msgspec's job and happens before this.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import msgspec.inspect as mi

from kmesh.errors import FieldViolation
from kmesh.model import _paths
from kmesh.model._fields import CHECKS, MARK
from kmesh.model._resource import Spec

__all__ = ["spec_violations"]


@functools.cache
def _type_info(spec_type: type[Spec]) -> mi.Type:
    return mi.type_info(spec_type)


def spec_violations(spec: Spec, prefix: str = "") -> list[FieldViolation]:
    """Every semantic rule ``spec`` breaks, with paths under ``prefix`` (``"spec"`` or ``""``)."""
    return [FieldViolation(path, reason) for path, reason in _walk(spec, _type_info(type(spec)), prefix)]


def _walk(value: object, info: mi.Type, path: str) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(info, mi.Metadata):
        marker = (info.extra or {}).get(MARK)
        if marker is not None:
            for rel, reason in CHECKS[marker](value):
                yield _paths.join(path, rel), reason
        yield from _walk(value, info.type, path)
    elif isinstance(info, mi.UnionType):
        member = _member_for(value, info)
        if member is not None:
            yield from _walk(value, member, path)
    elif isinstance(info, mi.StructType):
        assert isinstance(value, Spec)
        for field in info.fields:
            yield from _walk(getattr(value, field.name), field.type, _paths.join(path, field.encode_name))
        for rel, reason in value.problems():
            yield _paths.join(path, rel), reason
    elif isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        assert isinstance(value, list | tuple | set | frozenset)
        for i, item in enumerate(value):
            yield from _walk(item, info.item_type, _paths.index(path, i))
    elif isinstance(info, mi.DictType):
        assert isinstance(value, dict)
        for k, item in value.items():
            yield from _walk(item, info.value_type, _paths.key(path, str(k)))


def _member_for(value: object, union: mi.UnionType) -> mi.Type | None:
    """The member of ``union`` that ``value`` was decoded as: structs by class, the rest by kind."""
    fallback: mi.Type | None = None
    for member in union.types:
        inner = member.type if isinstance(member, mi.Metadata) else member
        if isinstance(inner, mi.StructType):
            if type(value) is inner.cls:
                return member
        elif isinstance(inner, mi.NoneType):
            continue
        elif _same_kind(value, inner):
            return member
        elif fallback is None and isinstance(inner, mi.UnionType):
            fallback = member
    return fallback


def _same_kind(value: object, info: mi.Type) -> bool:
    if isinstance(info, mi.StrType):
        return isinstance(value, str)
    if isinstance(info, mi.LiteralType):
        return value in info.values
    if isinstance(info, mi.EnumType):
        return isinstance(value, info.cls)
    if isinstance(info, mi.ListType | mi.VarTupleType):
        return isinstance(value, list | tuple)
    if isinstance(info, mi.DictType):
        return isinstance(value, dict)
    if isinstance(info, mi.BoolType):
        return isinstance(value, bool)
    if isinstance(info, mi.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(info, mi.FloatType):
        return isinstance(value, float)
    return False
