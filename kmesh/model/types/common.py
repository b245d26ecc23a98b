"""Structs several resource families share: data sources, the admin endpoint, HTTP header matchers and
modifiers (Kuma's ``api/common/v1alpha1``).
"""

from __future__ import annotations

import base64
from typing import Literal, final

import msgspec

from kmesh.model._fields import Base64, HeaderName, Port, Problems, RefName
from kmesh.model._resource import Spec

__all__ = [
    "DataSource",
    "EnvoyAdmin",
    "HeaderKeyValue",
    "HeaderMatch",
    "HeaderMatchType",
    "HeaderModifier",
]


@final
class DataSource(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where some bytes come from: a Secret of the mesh, a file on the control plane, or inline.

    Exactly one of the four is set. ``inline`` is base64, ``inlineString`` is the text itself.
    """

    secret: RefName | None = None
    file: str | None = None
    inline: Base64 | None = None
    inline_string: str | None = None

    def problems(self) -> Problems:
        chosen = [f for f in ("secret", "file", "inline", "inlineString") if self._get(f) is not None]
        if len(chosen) != 1:
            got = ", ".join(chosen) if chosen else "none"
            yield "", f"exactly one of secret, file, inline or inlineString must be set, got {got}"

    def _get(self, wire: str) -> str | None:
        return {
            "secret": self.secret,
            "file": self.file,
            "inline": self.inline,
            "inlineString": self.inline_string,
        }[wire]

    def inline_bytes(self) -> bytes | None:
        """The bytes of an inline source (``inline`` or ``inlineString``), None for a secret or file."""
        if self.inline is not None:
            return base64.b64decode(self.inline)
        if self.inline_string is not None:
            return self.inline_string.encode()
        return None


@final
class EnvoyAdmin(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The proxy's admin endpoint (``/ready``, ``/stats``, ``/config_dump``); the name is Kuma's."""

    port: Port = 9901


HeaderMatchType = Literal["Exact", "Present", "RegularExpression", "Absent", "Prefix"]


@final
class HeaderMatch(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Match a request or response header by name (lower case, RFC 7230 token) and value."""

    type: HeaderMatchType = "Exact"
    name: HeaderName
    value: str = ""


@final
class HeaderKeyValue(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: HeaderName
    value: str


@final
class HeaderModifier(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Headers to set (replace), add (append) or remove; at most 16 of each, each name once per list."""

    set: list[HeaderKeyValue] = msgspec.field(default_factory=list)
    add: list[HeaderKeyValue] = msgspec.field(default_factory=list)
    remove: list[HeaderName] = msgspec.field(default_factory=list)

    def problems(self) -> Problems:
        for wire, names in (
            ("set", [h.name for h in self.set]),
            ("add", [h.name for h in self.add]),
            ("remove", list(self.remove)),
        ):
            if len(names) > 16:
                yield wire, f"at most 16 headers, got {len(names)}"
            # Kuma keys each list by header name (listMapKey=name), so a name may appear once per list.
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name in seen:
                    yield f"{wire}[{i}]", f"header {name!r} is listed twice"
                seen.add(name)
