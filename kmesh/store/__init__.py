"""Resource stores: the ``ResourceStore`` protocol, its memory and SQLite implementations, and
``open_store`` that picks one from configuration."""

from __future__ import annotations

import os

from kmesh.errors import ConfigError
from kmesh.store._base import StoreBase, StoredRow
from kmesh.store._common import DEFAULT_WATCH_QUEUE_SIZE, Clock, utc_now
from kmesh.store._protocol import (
    ChangeEvent,
    ChangeKind,
    Create,
    Delete,
    ListPage,
    ResourceStore,
    TransactionBuilder,
    Update,
    Upsert,
    Write,
)
from kmesh.store.memory import MemoryStore
from kmesh.store.sqlite import SqliteStore

__all__ = [
    "STORE_KINDS",
    "ChangeEvent",
    "ChangeKind",
    "Clock",
    "Create",
    "Delete",
    "ListPage",
    "MemoryStore",
    "ResourceStore",
    "SqliteStore",
    "StoreBase",
    "StoredRow",
    "TransactionBuilder",
    "Update",
    "Upsert",
    "Write",
    "open_store",
]

STORE_KINDS = ("memory", "sqlite")


def open_store(
    kind: str,
    *,
    path: str | os.PathLike[str] | None = None,
    clock: Clock = utc_now,
    watch_queue_size: int = DEFAULT_WATCH_QUEUE_SIZE,
) -> ResourceStore:
    """The store a control plane's ``store.type`` setting names: ``memory``, or ``sqlite`` at ``path``.

    Raises ConfigError for another kind or a sqlite store without a path; whatever SqliteStore raises
    when the file cannot be opened.
    """
    if kind == "memory":
        return MemoryStore(clock=clock, watch_queue_size=watch_queue_size)
    if kind == "sqlite":
        if path is None or not os.fspath(path):
            raise ConfigError("store type sqlite needs a path: set the store file path")
        return SqliteStore(path, clock=clock, watch_queue_size=watch_queue_size)
    raise ConfigError(f"unknown store type {kind!r}: use one of {', '.join(STORE_KINDS)}")
