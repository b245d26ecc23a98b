"""The flat view of a nested config struct: every setting as a dotted path, its type and its env variable.

``kmesh.cp.config`` derives from this one walk the list of known file keys, the ``KMESH_*`` variables and
the checks of single values, so no setting is listed twice by hand. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi

from kmesh.errors import ConfigError

__all__ = ["SettingsTable", "env_var_name"]

ENV_PREFIX = "KMESH_"


def env_var_name(setting: str) -> str:
    """``api_server.port`` -> ``KMESH_API_SERVER_PORT``."""
    return ENV_PREFIX + setting.replace(".", "_").upper()


class SettingsTable:
    """The settings of a struct type: ``leaves`` maps each dotted path to its type, ``sections`` holds the
    paths of nested structs."""

    def __init__(self, root: type[msgspec.Struct]) -> None:
        self.leaves: dict[str, Any] = {}
        self.sections: set[str] = set()
        self._walk(root, "")
        names = [env_var_name(s) for s in self.leaves]
        # Two settings such as ``a_b.c`` and ``a.b_c`` would share a variable; refuse such a struct.
        if len(set(names)) != len(names):
            raise ValueError(f"settings of {root.__name__} collide on their environment variable names")

    def _walk(self, cls: type[msgspec.Struct], prefix: str) -> None:
        for field in msgspec.structs.fields(cls):
            path = f"{prefix}{field.name}"
            if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
                self.sections.add(path)
                self._walk(field.type, f"{path}.")
            else:
                self.leaves[path] = field.type

    def env_vars(self) -> dict[str, str]:
        """Every ``KMESH_*`` variable and the setting it sets."""
        return {env_var_name(s): s for s in self.leaves}

    def children(self, prefix: str) -> list[str]:
        """The keys directly inside section ``prefix`` (``""`` for the top), sorted."""
        start = f"{prefix}." if prefix else ""
        return sorted(
            p[len(start) :]
            for p in (*self.leaves, *self.sections)
            if p.startswith(start) and "." not in p[len(start) :]
        )

    def coerce(self, setting: str, value: object, *, from_text: bool, source: str) -> object:
        """``value`` checked against the type of ``setting``. Raises ConfigError naming ``source``.

        ``from_text`` values (env vars, flags) are strings: numbers and booleans are parsed from them, and
        an empty string unsets an optional setting. File values keep the types YAML gave them.
        """
        tp = self.leaves[setting]
        info = _unwrap(mi.type_info(tp))
        if from_text and value == "" and _optional(info):
            return None
        try:
            return msgspec.convert(value, tp, strict=not from_text)
        except msgspec.ValidationError:
            raise ConfigError(f"{source}: {setting} must be {describe(tp)}, got {value!r}") from None


def describe(tp: Any) -> str:
    """What a value of ``tp`` must be, in words: ``one of json, logfmt``, ``a port number 0-65535``."""
    raw = mi.type_info(tp)
    if isinstance(raw, mi.Metadata) and raw.extra_json_schema and "description" in raw.extra_json_schema:
        return str(raw.extra_json_schema["description"])
    info = _unwrap(raw)
    if isinstance(info, mi.UnionType):
        parts = [describe_info(t) for t in info.types if not isinstance(t, mi.NoneType)]
        return " or ".join(parts) + " (or empty)"
    return describe_info(info)


def describe_info(info: mi.Type) -> str:
    info = _unwrap(info)
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(str(v) for v in info.values)
    if isinstance(info, mi.BoolType):
        return "true or false"
    if isinstance(info, mi.IntType | mi.FloatType):
        noun = "an integer" if isinstance(info, mi.IntType) else "a number"
        bounds = [
            f"{op} {v}"
            for op, v in ((">=", info.ge), (">", info.gt), ("<=", info.le), ("<", info.lt))
            if v is not None
        ]
        return f"{noun} {' and '.join(bounds)}" if bounds else noun
    if isinstance(info, mi.StrType):
        return "a string"
    return type(info).__name__


def _unwrap(info: mi.Type) -> mi.Type:
    return info.type if isinstance(info, mi.Metadata) else info


def _optional(info: mi.Type) -> bool:
    return isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types)
