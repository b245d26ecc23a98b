"""Structured logging shared by every kmesh server: one line per record, JSON (default) or logfmt.

A line carries ``ts`` (UTC, RFC 3339 with milliseconds), ``level``, ``logger``, ``msg`` and then every
key passed with ``extra={...}``, so logs can be filtered by field without parsing prose::

    log.info("control plane started", extra={"mode": "standalone", "api_address": "127.0.0.1:5681"})

Rules:
- Never log a secret. Values under keys that name one (``token``, ``password``, ``secret``, ``private_key``,
  ``api_key``, ``authorization``, ``cookie``, ``credentials``, alone or after a ``_`` as in ``zone_token``)
  are replaced with ``<redacted>`` here, as a safety net; callers still must not pass them.
- A logged exception adds ``error`` (its message) and ``exc_type``; the traceback goes into ``traceback``
  only at level error (``log.exception``), which is reserved for bugs, never for bad input.
- Records go to stderr; stdout stays free for a command's output (``--print-config``).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any, Final, Literal

import orjson

__all__ = ["LEVELS", "JsonFormatter", "LogfmtFormatter", "setup_logging"]

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
REDACTED: Final = "<redacted>"
_SECRET_KEY = re.compile(
    r"(^|_)(token|password|passwd|secret|private_key|api_key|authorization|cookie|credentials?)$",
    re.IGNORECASE,
)
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_RESERVED: Final = ("ts", "level", "logger", "msg")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as an ordered dict of fields, secrets redacted."""
    ts = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
    out: dict[str, Any] = {
        "ts": ts.replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key in _STANDARD_ATTRS or key.startswith("_"):
            continue
        name = f"extra_{key}" if key in _RESERVED else key
        out[name] = REDACTED if _SECRET_KEY.search(key) else value
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        out["error"] = str(exc)
        out["exc_type"] = type(exc).__name__
        if record.levelno >= logging.ERROR and record.exc_info[2] is not None:
            out["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values orjson cannot encode are written with ``str()``."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(record), default=str).decode()


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs; values with spaces, quotes or ``=`` are quoted with escapes."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())


def _logfmt_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


_HANDLER_MARK: Final = "_kmesh_handler"


def setup_logging(
    level: str = "info", fmt: Literal["json", "logfmt"] = "json", *, stream: IO[str] | None = None
) -> None:
    """Route every logger's records through one handler on the root logger, writing to ``stream``
    (default: stderr). Calling it again replaces the handler it installed. Raises ValueError for an
    unknown level or format.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "logfmt":
        formatter = LogfmtFormatter()
    else:
        raise ValueError(f"unknown log format {fmt!r}; expected json or logfmt")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # aiohttp's access log is one line per request at INFO; keep it out unless debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
