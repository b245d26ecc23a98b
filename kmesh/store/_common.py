"""What every store shares apart from the commit rules: the time source, the spec and label codecs, and
the counters behind ``stats()``.

Rules:
- Times are aware UTC datetimes. The clock is injectable (tests pass a manual one); a clock returning a
  naive datetime is a programming error and fails loudly rather than storing an ambiguous time.
- A spec is stored as the model's ``encode_spec`` makes it (msgspec JSON, camelCase field names as in
  Kuma's YAML) and read back with ``decode_spec`` into the ``spec_type`` of its type's descriptor; what
  does not decode is a StoreError naming the type, never a msgspec exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, final

import msgspec

from kmesh import model
from kmesh.errors import StoreError
from kmesh.model import Spec

__all__ = [
    "DEFAULT_WATCH_QUEUE_SIZE",
    "Clock",
    "Counters",
    "decode_labels",
    "decode_spec",
    "encode_labels",
    "encode_spec",
    "read_clock",
    "utc_now",
]

Clock = Callable[[], datetime]

# Enough for a burst of a few KDS batches; a watcher further behind than this is better served by
# listing again than by replaying (RESYNC).
DEFAULT_WATCH_QUEUE_SIZE: Final = 4096

_LABELS_DECODER: Final = msgspec.json.Decoder(dict[str, str])
_ENCODER: Final = msgspec.json.Encoder()


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(UTC)


def read_clock(clock: Clock) -> datetime:
    """Call ``clock`` and return its time in UTC. Raises ValueError for a naive datetime."""
    now = clock()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"the store clock returned a naive datetime ({now!r}); it must be timezone-aware")
    return now.astimezone(UTC)


def encode_spec(spec: Spec) -> bytes:
    """The stored form of a spec (the model's codec: compact msgspec JSON)."""
    return model.encode_spec(spec)


def decode_spec(type_name: str, data: bytes) -> Spec:
    """A spec read back from storage. Raises StoreError when the type is unknown or the data does not fit
    it (a store written by another kmesh version, or damaged)."""
    try:
        return model.decode_spec(type_name, data)
    except KeyError:
        raise StoreError(f"the store holds a resource of unknown type {type_name!r}") from None
    except msgspec.DecodeError as exc:
        raise StoreError(f"a stored {type_name} spec does not match its type: {exc}") from exc


def encode_labels(labels: dict[str, str]) -> str:
    return _ENCODER.encode(labels).decode()


def decode_labels(data: str | bytes) -> dict[str, str]:
    return _LABELS_DECODER.decode(data)


@final
class Counters:
    """Monotonic counters of one store, read by ``stats()`` (later exported as Prometheus counters)."""

    NAMES: Final = (
        "commits",
        "commits_failed",
        "conflicts",
        "writes_create",
        "writes_update",
        "writes_upsert",
        "writes_delete",
        "upserts_unchanged",
        "cascade_deletes",
    )

    def __init__(self) -> None:
        self._values = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        return dict(self._values)
