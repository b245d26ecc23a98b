"""The SQLite store's on-disk layout: opening a database file, its schema and version, and the mapping
between a row and a Resource.

Rules:
- Everything here runs on the store's worker thread, the only thread that ever touches the connection.
- The file is made with mode 0600 before SQLite opens it; SQLite gives its ``-wal`` and ``-shm`` files the
  mode of the database file, so secrets stored in it are never world-readable. The parent directory is
  made (0700) if missing.
- The journal is WAL with ``synchronous=FULL``: a commit that returned survives a crash or power loss, and
  readers never block the writer.
- ``meta`` holds the schema version and the store revision. A file with a newer schema than this code
  knows is refused rather than misread; an older one is migrated forward inside one transaction.
- One table holds every type, keyed by (type, mesh, name, zone). The primary key orders a type's rows by
  (mesh, name, zone), which is the listing order, so a list by type or by type and mesh is an index range;
  the owner and mesh indexes serve the delete cascade.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from kmesh.errors import StoreError
from kmesh.model import Resource, ResourceKey
from kmesh.store._base import StoredRow
from kmesh.store._common import decode_labels, encode_labels, encode_spec

__all__ = [
    "COLUMNS",
    "KEY_COLUMNS",
    "SCHEMA_VERSION",
    "connect",
    "resource_params",
    "row_to_key",
    "row_to_resource",
    "row_to_stored",
]

SCHEMA_VERSION: Final = 1

KEY_COLUMNS: Final = "type, mesh, name, zone"
COLUMNS: Final = (
    "type, mesh, name, zone, version, labels, spec, owner_type, owner_mesh, owner_name, owner_zone, "
    "creation_time, modification_time"
)

# Index i holds the statements that bring a schema at version i to version i + 1.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE resources (
            type TEXT NOT NULL,
            mesh TEXT NOT NULL,
            name TEXT NOT NULL,
            zone TEXT NOT NULL,
            version INTEGER NOT NULL,
            labels TEXT NOT NULL,
            spec BLOB NOT NULL,
            owner_type TEXT,
            owner_mesh TEXT,
            owner_name TEXT,
            owner_zone TEXT,
            creation_time TEXT NOT NULL,
            modification_time TEXT NOT NULL,
            PRIMARY KEY (type, mesh, name, zone)
        ) WITHOUT ROWID""",
        """CREATE INDEX resources_by_owner ON resources (owner_type, owner_mesh, owner_name, owner_zone)
            WHERE owner_type IS NOT NULL""",
        "CREATE INDEX resources_by_mesh ON resources (mesh) WHERE mesh != ''",
        "INSERT INTO meta (key, value) VALUES ('revision', 0)",
    ),
)


def connect(path: Path, busy_timeout_s: float) -> tuple[sqlite3.Connection, int]:
    """Open (creating if needed) the store at ``path``; returns the connection and the stored revision.

    Raises StoreError for a file that is not a kmesh store or has a newer schema; sqlite3.Error for I/O
    trouble and OSError when the file or its directory cannot be made (the caller translates both).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_CREAT without O_TRUNC: an existing store keeps its content and its mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    # isolation_level=None: the store issues BEGIN/COMMIT itself, so sqlite3 never opens hidden ones.
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL journaling (journal_mode is {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        revision = _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise
        raise StoreError(f"{path} is not a kmesh SQLite store: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn, revision


def _migrate(conn: sqlite3.Connection, path: Path) -> int:
    # A store at the current schema is only read: opening a second connection to a file whose writer is
    # mid-commit must not wait for the write lock.
    if _schema_version(conn) == SCHEMA_VERSION:
        return _revision(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _schema_version(conn)  # again, under the write lock: another process may have migrated
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{path} was written by a newer kmesh (schema version {found}; this kmesh knows up to "
                f"{SCHEMA_VERSION}): upgrade kmesh, or use another store file"
            )
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        for statements in _MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (SCHEMA_VERSION,),
        )
        revision = _revision(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return revision


def _schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the file; 0 for a new (empty) file."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return 0 if row is None else int(row[0])


def _revision(conn: sqlite3.Connection) -> int:
    (revision,) = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
    return int(revision)


def resource_params(resource: Resource) -> tuple[Any, ...]:
    """The values of COLUMNS for ``resource``."""
    meta = resource.meta
    owner = meta.owner
    return (
        meta.type,
        meta.mesh,
        meta.name,
        meta.zone,
        meta.version,
        encode_labels(meta.labels),
        encode_spec(resource.spec),
        None if owner is None else owner.type,
        None if owner is None else owner.mesh,
        None if owner is None else owner.name,
        None if owner is None else owner.zone,
        _time(meta.creation_time),
        _time(meta.modification_time),
    )


def row_to_key(row: tuple[Any, ...]) -> ResourceKey:
    """The key of a row selected as KEY_COLUMNS."""
    type_name, mesh, name, zone = row
    return ResourceKey(type_name, name, mesh, zone)


def row_to_resource(row: tuple[Any, ...]) -> Resource:
    """The Resource of a row selected as COLUMNS."""
    return row_to_stored(row).resource()


def row_to_stored(row: tuple[Any, ...]) -> StoredRow:
    """The StoredRow of a row selected as COLUMNS: the spec stays as stored, the times as text."""
    (
        type_name,
        mesh,
        name,
        zone,
        version,
        labels,
        spec,
        o_type,
        o_mesh,
        o_name,
        o_zone,
        created,
        modified,
    ) = row
    owner = None if o_type is None else ResourceKey(o_type, o_name, o_mesh, o_zone)
    return StoredRow(
        type_name, mesh, name, zone, version, decode_labels(labels), spec, owner, created, modified
    )


def _time(value: datetime | None) -> str:
    if value is None:  # the commit planner always sets both times; a row without one would be unreadable
        raise StoreError("a resource reached the SQLite store without its times")
    return value.isoformat()
