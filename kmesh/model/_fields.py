"""Field types shared by the specs, and the rules for names, labels, tags and addresses.

Rules:
- Bounds msgspec can check itself (ports, counters) are ``msgspec.Meta`` constraints, so a bad value fails
  while decoding with the field's path.
- Rules msgspec cannot express (durations, tags, base64, addresses) are a marker in ``Meta.extra``; the
  validator in ``_validate`` finds every marked field through ``msgspec.inspect`` and runs ``CHECKS[marker]``
  on its value. A spec therefore gets these checks by declaring the field's type, never by listing it.
- Names follow Kuma: resource names are DNS-like (letters, digits, ``-``, ``.``, ``_``), tag names and values
  use Kuma's character sets, labels use Kubernetes' qualified-name syntax so they survive a trip to
  Kubernetes-style tooling.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final

import msgspec

from kmesh.model import _paths
from kmesh.model._duration import parse_duration

__all__ = [
    "CHECKS",
    "MARK",
    "Address",
    "Base64",
    "Duration",
    "HeaderName",
    "IPAddress",
    "NonNegInt",
    "Percentage",
    "Port",
    "PositiveDuration",
    "PositiveInt",
    "Problems",
    "RefName",
    "Selector",
    "Tags",
    "address_problem",
    "label_problems",
    "name_problem",
    "percentage_value",
    "tag_problems",
]

Problems = Iterator[tuple[str, str]]
MARK: Final = "kmesh"


def _marked(kind: str) -> msgspec.Meta:
    return msgspec.Meta(extra={MARK: kind})


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]
Duration = Annotated[str, _marked("duration")]
PositiveDuration = Annotated[str, _marked("positive-duration")]
Tags = Annotated[dict[str, str], _marked("tags")]
Selector = Annotated[dict[str, str], _marked("selector")]
Percentage = Annotated[int | float | str, _marked("percentage")]
Base64 = Annotated[str, _marked("base64")]
RefName = Annotated[str, _marked("name")]
Address = Annotated[str, _marked("address")]
IPAddress = Annotated[str, _marked("ip")]
HeaderName = Annotated[str, _marked("header-name")]

MAX_NAME_LENGTH: Final = 253
_NAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_TAG_NAME: Final = re.compile(r"[A-Za-z0-9.\-_:/]+")
_TAG_VALUE: Final = re.compile(r"[A-Za-z0-9.\-_:]+")
# Selectors (targetRef tags) may also match any value with "*" and carry slashes, as in Kuma.
_SELECTOR_VALUE: Final = re.compile(r"[A-Za-z0-9.\-_:/]+|\*")
_LABEL_PREFIX: Final = re.compile(r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE: Final = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?)?")
_DNS_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_HEADER_NAME: Final = re.compile(r"[a-z0-9!#$%&'*+\-.^_`|~]{1,256}")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid resource name, or None when it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}"
    if not _NAME.fullmatch(name):
        return (
            f"invalid name {name!r}: use letters, digits, '-', '.' and '_', "
            "starting and ending with a letter or digit"
        )
    return None


def label_problems(labels: Mapping[str, str]) -> Problems:
    """Problems of a ``labels`` map, each at ``["key"]``.

    Keys are ``[prefix/]name`` (prefix a lower-case DNS subdomain up to 253 characters, name up to 63);
    values are up to 253 characters of the same alphabet plus ``/``, because kmesh stores resource names
    (up to 253 characters) in labels such as ``kuma.io/display-name``.
    """
    for k, v in labels.items():
        where = _paths.key("", k)
        prefix, _, name = k.rpartition("/")
        if not k:
            yield where, "label key must not be empty"
        elif prefix and (len(prefix) > MAX_NAME_LENGTH or not _LABEL_PREFIX.fullmatch(prefix)):
            yield where, f"label key prefix {prefix!r} must be a lower-case DNS name"
        elif len(name) > 63 or not _LABEL_NAME.fullmatch(name):
            yield (
                where,
                (
                    f"label key {k!r}: the name part must be 1-63 letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit"
                ),
            )
        if len(v) > MAX_NAME_LENGTH or not _LABEL_VALUE.fullmatch(v):
            yield (
                where,
                (
                    f"label value {v!r} must be at most {MAX_NAME_LENGTH} letters, digits, "
                    "'-', '_', '.' or '/', starting and ending with a letter or digit"
                ),
            )


def tag_problems(tags: Mapping[str, str], *, selector: bool = False) -> Problems:
    """Problems of a tag map (Kuma's character sets); ``selector`` also allows ``*`` and ``/`` in values."""
    value_re = _SELECTOR_VALUE if selector else _TAG_VALUE
    for k, v in tags.items():
        where = _paths.key("", k)
        if not k:
            yield where, "tag name must not be empty"
        elif not _TAG_NAME.fullmatch(k):
            yield where, "tag name must consist of letters, digits, '.', '-', '_', ':' and '/'"
        if not v:
            yield where, "tag value must not be empty"
        elif not value_re.fullmatch(v):
            extra = ", '/' or be '*'" if selector else " and ':'"
            yield where, f"tag value {v!r} must consist of letters, digits, '.', '-', '_'{extra}"


def address_problem(address: str) -> str | None:
    """Why ``address`` is neither an IP address nor a DNS name, or None."""
    if not address:
        return "must not be empty"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return None
    host = address[:-1] if address.endswith(".") else address
    if len(host) <= MAX_NAME_LENGTH and all(_DNS_LABEL.fullmatch(part) for part in host.split(".")):
        return None
    return f"{address!r} is neither an IP address nor a DNS name"


def percentage_value(value: int | float | str) -> Decimal:
    """The number a Kuma percentage (int, or decimal written as a string) stands for.

    Raises ValueError when it is not a number.
    """
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _check_duration(value: object, *, positive: bool) -> Problems:
    assert isinstance(value, str)
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        yield "", str(exc)
        return
    if positive and seconds == 0:
        yield "", "must be greater than zero"


def _check_percentage(value: object) -> Problems:
    assert isinstance(value, int | float | str)
    try:
        number = percentage_value(value)
    except ValueError as exc:
        yield "", f"invalid percentage: {exc}"
        return
    if not 0 <= number <= 100:
        yield "", f"percentage must be between 0 and 100, got {value}"


def _check_base64(value: object) -> Problems:
    assert isinstance(value, str)
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        yield "", "must be base64-encoded data"


def _check_ref_name(value: object) -> Problems:
    assert isinstance(value, str)
    reason = name_problem(value)
    if reason:
        yield "", reason


def _check_address(value: object) -> Problems:
    assert isinstance(value, str)
    reason = address_problem(value)
    if reason:
        yield "", reason


def _check_ip(value: object) -> Problems:
    assert isinstance(value, str)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        yield "", f"{value!r} is not an IP address"


def _check_header_name(value: object) -> Problems:
    assert isinstance(value, str)
    if not _HEADER_NAME.fullmatch(value):
        yield "", f"invalid header name {value!r}: use 1-256 lower-case token characters (RFC 7230)"


def _check_tags(value: object, *, selector: bool) -> Problems:
    assert isinstance(value, dict)
    yield from tag_problems(value, selector=selector)


CHECKS: Final[dict[str, Callable[[object], Problems]]] = {
    "duration": lambda v: _check_duration(v, positive=False),
    "positive-duration": lambda v: _check_duration(v, positive=True),
    "percentage": _check_percentage,
    "base64": _check_base64,
    "name": _check_ref_name,
    "address": _check_address,
    "ip": _check_ip,
    "header-name": _check_header_name,
    "tags": lambda v: _check_tags(v, selector=False),
    "selector": lambda v: _check_tags(v, selector=True),
}
