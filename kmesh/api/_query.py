"""Query parameters of the API: paging, filters and the zone selector.

Rules:
- ``size`` (default 100, 1..1000) and ``offset`` (default 0) page a listing; ``next`` in the answer is the
  absolute URL of the following page, with every other parameter kept, so a client walks pages by
  following it and never builds offsets itself.
- Filters come in kmesh's short form and Kuma's bracketed form, which mean the same:
  ``labels.<key>=<value>`` / ``filter[labels.<key>]=<value>`` (all pairs must match) and
  ``name=<prefix>`` / ``filter[name]=<prefix>``. ``zone=<zone>`` picks resources synced from that zone.
- A parameter given twice, a number that is not one, or an unknown ``filter[...]`` is a 400 naming the
  parameter: the caller asked for something we would otherwise silently ignore. Parameters kmesh does not
  know at all are ignored, as Kuma does, so GUI cache-busters and the like do no harm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from yarl import URL

from kmesh.api._responses import ApiError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ListQuery",
    "next_page_url",
    "parse_list_query",
    "parse_zone",
]

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000

_LABEL_PREFIX: Final = "labels."


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a listing asked for."""

    size: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    name_prefix: str | None = None
    zone: str | None = None


def parse_list_query(items: Iterable[tuple[str, str]]) -> ListQuery:
    """Parse a listing's query string, given as its (name, value) pairs in order. Raises ApiError (400)."""
    seen: set[str] = set()
    size = DEFAULT_PAGE_SIZE
    offset = 0
    labels: dict[str, str] = {}
    name_prefix: str | None = None
    zone: str | None = None
    for raw_key, value in items:
        key = _canonical(raw_key)
        if key is None:
            continue
        if key in seen:
            raise _bad(raw_key, "given more than once")
        seen.add(key)
        if key == "size":
            size = _integer(raw_key, value, minimum=1, maximum=MAX_PAGE_SIZE)
        elif key == "offset":
            offset = _integer(raw_key, value, minimum=0, maximum=None)
        elif key == "name":
            name_prefix = value or None
        elif key == "zone":
            zone = _non_empty(raw_key, value)
        else:
            label = key.removeprefix(_LABEL_PREFIX)
            labels[label] = value
    return ListQuery(size=size, offset=offset, labels=labels, name_prefix=name_prefix, zone=zone)


def parse_zone(items: Iterable[tuple[str, str]]) -> str | None:
    """The ``zone`` parameter of a single-resource request, or None. Raises ApiError (400)."""
    zone: str | None = None
    for key, value in items:
        if key != "zone":
            continue
        if zone is not None:
            raise _bad(key, "given more than once")
        zone = _non_empty(key, value)
    return zone


def next_page_url(url: URL, next_offset: int | None, size: int) -> str | None:
    """The absolute URL of the page after the one ``url`` asked for, or None when that was the last."""
    if next_offset is None:
        return None
    return str(url.update_query({"offset": str(next_offset), "size": str(size)}))


def _canonical(key: str) -> str | None:
    """The meaning of a query key: size, offset, name, zone or labels.<key>; None for keys kmesh ignores.

    Raises ApiError for a ``filter[...]`` kmesh cannot honour and for an empty label key.
    """
    if key.startswith("filter[") and key.endswith("]"):
        inner = key[len("filter[") : -1]
        if inner != "name" and not inner.startswith(_LABEL_PREFIX):
            raise _bad(key, "unknown filter; use filter[name] or filter[labels.<key>]")
        key = inner
    if key.startswith(_LABEL_PREFIX):
        if key == _LABEL_PREFIX:
            raise _bad(key, "a label filter needs a key: labels.<key>=<value>")
        return key
    if key in ("size", "offset", "name", "zone"):
        return key
    return None


def _bad(key: str, reason: str) -> ApiError:
    return ApiError.bad_parameter(key, reason, title="Invalid query parameter")


def _integer(key: str, value: str, *, minimum: int, maximum: int | None) -> int:
    bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
    # int() would accept " 5", "+5" and "5_0"; a page parameter is plain digits.
    if not value.isascii() or not value.isdigit():
        raise _bad(key, f"must be an integer {bounds}, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        raise _bad(key, f"must be an integer {bounds}, got {number}")
    return number


def _non_empty(key: str, value: str) -> str:
    if not value:
        raise _bad(key, "must not be empty")
    return value
