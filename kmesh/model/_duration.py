"""Durations as Kuma writes them: Go's ``time.ParseDuration`` strings plus Kuma's day, week and year units.

Rules:
- A duration is one or more ``<number><unit>`` terms (``15s``, ``1h30m``, ``1.5h``, ``500ms``); the units are
  Go's ``ns``, ``us`` (``µs``), ``ms``, ``s``, ``m``, ``h`` and the ``d`` (24h), ``w`` (7d) and ``y`` (365d)
  that Kuma's mesh CA settings use (``dpCert.rotation.expiration: 1d``, ``caCert.expiration: 10y``).
- ``0`` alone needs no unit, as in Go. Signs are refused: no kmesh setting takes a negative duration.
- The total must fit Go's ``time.Duration`` (int64 nanoseconds, about 292 years), so anything kmesh accepts
  is also accepted by Kuma.
- Arithmetic is exact (integer nanoseconds via ``Fraction``), only the returned seconds are a float.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

__all__ = ["format_duration", "parse_duration"]

_NS_PER_UNIT: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN, which Go accepts
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU, likewise
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
    "y": 365 * 86_400 * 1_000_000_000,
}
_UNITS_HINT: Final = "ns, us, ms, s, m, h, d, w, y"
# Go's time.Duration is an int64 count of nanoseconds.
_MAX_NS: Final = 2**63 - 1
# ASCII digits only: \d would also take other scripts' digits, which Go refuses.
_TERM: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([^0-9.]*)")


def parse_duration(text: str) -> float:
    """The number of seconds ``text`` stands for.

    Raises ValueError naming what is wrong: empty, a sign, a number without a unit, an unknown unit,
    stray characters, or a total beyond what Go's ``time.Duration`` holds.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as 15s or 1h30m, got {type(text).__name__}")
    if not text:
        raise ValueError("empty duration; write a number with a unit, such as 15s or 1h30m")
    if text[0] in "+-":
        raise ValueError(f"duration {text!r} must not have a sign")
    if text == "0":
        return 0.0
    total = Fraction(0)
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}: expected a number at {text[pos:]!r}")
        number, unit = match.groups()
        if not unit:
            raise ValueError(f"missing unit in duration {text!r}; use one of {_UNITS_HINT}")
        if unit not in _NS_PER_UNIT:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}; use one of {_UNITS_HINT}")
        total += Fraction(number) * _NS_PER_UNIT[unit]
        if total > _MAX_NS:
            raise ValueError(f"duration {text!r} is too long (the limit is about 292 years)")
        pos = match.end()
    return float(total / 1_000_000_000)


_FORMAT_UNITS: Final = (
    ("h", 3_600 * 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)


def format_duration(seconds: float) -> str:
    """The shortest Go-style string for ``seconds`` (rounded to whole nanoseconds): ``1h30m``, ``500ms``.

    ``parse_duration(format_duration(x))`` gives back ``x`` to the nanosecond. Raises ValueError for a
    negative value.
    """
    if seconds < 0:
        raise ValueError(f"negative duration {seconds!r}")
    remaining = round(Fraction(seconds) * 1_000_000_000)
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
