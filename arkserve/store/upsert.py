"""One-statement upserts: ``INSERT ... ON CONFLICT (key) DO UPDATE`` in the store's dialect.

A read-then-insert (or update-then-insert) "upsert" races on PostgreSQL: two writers that both find no row both
insert, and one fails on the primary key (SQLite serializes writers, so it only showed there; review 4, finding 3).
The database settles the race here: of concurrent writers, every one succeeds and the last to commit wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def upsert(conn: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Insert the row ``key`` + ``values``, or set ``values`` on the row ``key`` names (its primary key or another
    unique key; columns not in ``values`` keep theirs, or their defaults on insert)."""
    ins = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
    stmt = ins.values(**key, **values)
    if values:
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=dict(values)))
    else:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=list(key)))
