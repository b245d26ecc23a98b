"""Resource stores: the ``ResourceStore`` protocol and its memory and SQLite implementations."""

from __future__ import annotations

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

__all__ = [
    "ChangeEvent",
    "ChangeKind",
    "Create",
    "Delete",
    "ListPage",
    "ResourceStore",
    "TransactionBuilder",
    "Update",
    "Upsert",
    "Write",
]
