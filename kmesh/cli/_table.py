"""Plain-text tables and ages, as kubectl and kumactl print them.

Rules:
- Columns are separated by three spaces and padded to their widest cell; the last column is not padded, so
  no line ends in blanks (Go's tabwriter with padding 3, which both tools use).
- Ages follow kubectl's ``HumanDuration`` exactly (``5s``, ``3m20s``, ``2h``, ``4d``, ``2y30d``): users
  read ages from both tools side by side. "Now" is always passed in, which keeps golden files stable.
- A timestamp the server did not send, or cannot be read, shows as ``<unknown>`` rather than failing the
  whole listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

__all__ = ["UNKNOWN", "age", "format_table", "human_duration", "parse_time"]

UNKNOWN = "<unknown>"
_PADDING = 3


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``headers`` and ``rows`` aligned in columns, one line each, ending with a newline."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i] + _PADDING) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return "\n".join(lines) + "\n"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (naive ones are taken as UTC); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def age(timestamp: object, now: datetime) -> str:
    """How long before ``now`` the RFC 3339 ``timestamp`` was, humanized; ``<unknown>`` if unreadable."""
    when = parse_time(timestamp)
    if when is None:
        return UNKNOWN
    return human_duration(now - when)


def human_duration(d: timedelta) -> str:
    """kubectl's ``duration.HumanDuration``: two units of precision while they matter, then one."""
    seconds = int(d.total_seconds())
    # kubectl tolerates up to a second of clock skew between client and server as "now".
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"
