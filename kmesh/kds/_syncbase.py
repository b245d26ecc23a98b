"""What both halves of a :class:`~kmesh.kds.sync.ResourceSync` share: its settings, its counters, and the
store pager that reads a type in pages bounded by count and by bytes.

Rules:

- Memory per connection stays bounded by the settings, not by the size of the state: the pager reads at
  most ``page_records`` resources at once and shrinks its pages when resources are large, so that a page
  holds about ``page_bytes`` of encoded specs (a single resource larger than that is a page of its own).
- The pager reads :class:`~kmesh.store.StoredRow` s, not Resources: specs stay in their stored form
  (the canonical ``encode_spec`` bytes that records carry and content hashes cover), so a pass over a
  large type decodes and re-encodes nothing. From a store built on ``StoreBase`` it pages by key
  (``list_stored``: no count, no offset, no shift when a resource is deleted meanwhile); from any other
  ResourceStore by offset through ``list``, encoding the specs.
- Counters are plain integers per resource type, updated by the sync and read by ZoneInsight and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

from kmesh.store import ResourceStore, StoreBase, StoredRow

__all__ = ["Pager", "SyncSettings", "TypeCounters", "TypeSyncStats"]

_MIB: Final = 1024 * 1024


@final
@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Tuning of one connection's sync; the defaults suit a production control plane.

    ``coalesce_s``: how long changes are gathered after the first of a burst before they are sent.
    ``max_batch_keys``: the most changed resources recomputed in one round. ``max_pending_keys``: beyond
    this many changed resources waiting, the types concerned are recomputed in full instead.
    ``nack_retry_*``: a record the peer refused is sent again after this backoff (doubling per refusal),
    so a record refused for a missing Mesh or owner goes through once the peer has it.
    """

    page_records: int = 500
    page_bytes: int = 4 * _MIB
    coalesce_s: float = 0.005
    max_batch_keys: int = 1000
    max_pending_keys: int = 50_000
    nack_retry_initial_s: float = 1.0
    nack_retry_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.page_records < 1 or self.page_bytes < 1 or self.max_batch_keys < 1:
            raise ValueError("page_records, page_bytes and max_batch_keys must be positive")
        if self.coalesce_s < 0 or self.nack_retry_initial_s <= 0 or self.nack_retry_max_s <= 0:
            raise ValueError("coalesce_s must not be negative, and the NACK retry delays must be positive")


@final
@dataclass(slots=True)
class TypeCounters:
    """Records of one type on one connection (chunks are counted by the session)."""

    records_sent: int = 0
    removals_sent: int = 0
    records_refused_by_peer: int = 0
    records_received: int = 0
    removals_received: int = 0
    records_rejected: int = 0
    chunks_acked_here: int = 0
    chunks_nacked_here: int = 0


@final
@dataclass(frozen=True, slots=True)
class TypeSyncStats:
    """One type on one connection: chunks this side sent and the peer's answers to them, chunks the peer
    sent and this side's answers, and the records inside them."""

    chunks_sent: int = 0
    chunks_acked: int = 0
    chunks_nacked: int = 0
    chunks_received: int = 0
    chunks_acked_here: int = 0
    chunks_nacked_here: int = 0
    records_sent: int = 0
    removals_sent: int = 0
    records_refused_by_peer: int = 0
    records_received: int = 0
    removals_received: int = 0
    records_rejected: int = 0


@final
class Pager:
    """Reads every resource of one type (optionally of one zone) page by page, as StoredRows.

    Call :meth:`next` until it returns None; each page is sized from the spec bytes of the one before so
    that it holds about ``page_bytes``. A key-paged listing (a StoreBase) sees every resource that exists
    throughout the listing; an offset-paged one may skip a resource when an earlier one is deleted
    meanwhile: callers re-check what they conclude from a missing resource, and the store's change events
    cover what was created meanwhile.
    """

    def __init__(self, store: ResourceStore, type_: str, zone: str | None, settings: SyncSettings) -> None:
        self._store = store
        self._keyed = store if isinstance(store, StoreBase) else None
        self._type = type_
        self._zone = zone
        self._settings = settings
        self._after: tuple[str, str, str] | None = None
        self._offset: int | None = 0
        self._limit = settings.page_records

    async def next(self) -> list[StoredRow] | None:
        """The next page, or None when the listing is done. Raises what the store raises."""
        if self._offset is None:
            return None
        if self._keyed is not None:
            rows = await self._keyed.list_stored(
                self._type, zone=self._zone, after=self._after, limit=self._limit
            )
            if len(rows) < self._limit:
                self._offset = None
            elif rows:
                last = rows[-1]
                self._after = (last.mesh, last.name, last.zone)
        else:
            page = await self._store.list(self._type, zone=self._zone, offset=self._offset, limit=self._limit)
            self._offset = page.next_offset if page.items else None
            rows = [StoredRow.of(resource) for resource in page.items]
        if not rows:
            self._offset = None
            return None
        self._measure(rows)
        return rows

    def _measure(self, rows: list[StoredRow]) -> None:
        average = max(1, sum(len(row.spec) for row in rows) // len(rows))
        self._limit = max(1, min(self._settings.page_records, self._settings.page_bytes // average))
