"""Queries on leader leases: acquire or renew (compare-and-set on expiry, one transaction), release, read.

Times come from the database's own clock (:func:`db_now`), so reconcilers on hosts whose clocks disagree still
agree on when a lease expired. A lease changes hands only by an ``UPDATE ... WHERE token = <seen> AND holder =
<seen>``: of two candidates that both saw it expire, exactly one updates a row; the other updates none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from arkserve.store.tables import leases


@dataclass(frozen=True)
class LeaseRow:
    name: str
    holder: str  # "" when free
    token: int  # the fencing token: +1 each time the lease changes hands
    acquired_at: float
    renewed_at: float
    expires_at: float


def db_now(conn: Connection) -> float:
    """The database server's clock, seconds since the epoch (SQLite: this host's, to the millisecond)."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
    return float(conn.execute(text("SELECT (julianday('now') - 2440587.5) * 86400.0")).scalar_one())


def get(conn: Connection, name: str) -> LeaseRow | None:
    row = conn.execute(select(leases).where(leases.c.name == name)).first()
    return LeaseRow(**row._mapping) if row is not None else None


def _ensure(conn: Connection, name: str) -> None:
    """The lease's row, free and expired, unless it exists (two first candidates racing insert one row)."""
    ins = pg_insert(leases) if conn.dialect.name == "postgresql" else sqlite_insert(leases)
    conn.execute(ins.values(name=name, holder="", token=0, acquired_at=0.0, renewed_at=0.0, expires_at=0.0)
                 .on_conflict_do_nothing(index_elements=["name"]))


def acquire(conn: Connection, name: str, holder: str, duration_s: float) -> LeaseRow:
    """Renew the lease if ``holder`` has it, take it if it is free or expired; return the row as it now is
    (``row.holder == holder`` means held, until ``row.expires_at`` on the database's clock)."""
    _ensure(conn, name)
    seen = get(conn, name)
    assert seen is not None
    now = db_now(conn)
    values: dict[str, Any]
    if seen.holder == holder:
        values = {"renewed_at": now, "expires_at": now + duration_s}
    elif seen.holder == "" or seen.expires_at <= now:
        values = {"holder": holder, "token": seen.token + 1, "acquired_at": now, "renewed_at": now,
                  "expires_at": now + duration_s}
    else:
        return seen  # another holds it
    if not compare_and_set(conn, seen, values):  # another candidate changed it since we read it
        now_row = get(conn, name)
        assert now_row is not None
        return now_row
    return replace(seen, **values)


def compare_and_set(conn: Connection, seen: LeaseRow, values: dict[str, Any]) -> bool:
    """Write ``values`` only if the lease is still as ``seen`` (same holder, same token): True if written."""
    cas = (update(leases).where(leases.c.name == seen.name, leases.c.token == seen.token,
                                leases.c.holder == seen.holder).values(**values))
    return conn.execute(cas).rowcount == 1


def release(conn: Connection, name: str, holder: str, token: int) -> bool:
    """Give the lease up at once (a clean shutdown), if ``holder`` still has it with ``token``."""
    now = db_now(conn)
    res = conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder,
                                            leases.c.token == token).values(holder="", expires_at=now))
    return res.rowcount == 1
