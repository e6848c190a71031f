"""Queries on service events and the per-request log written by the gateway."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from arkserve.store import keys
from arkserve.store.db import now
from arkserve.store.tables import events, request_log


def record(conn: Connection, service: str, kind: str, message: str, replica: str = "") -> None:
    conn.execute(insert(events).values(service=service, replica=replica, time=now(), kind=kind,
                                       message=message[:4000]))


def list_events(conn: Connection, service: str, *, since: float | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    q = select(events).where(events.c.service == service)
    if since is not None:
        q = q.where(events.c.time >= since)
    rows = conn.execute(q.order_by(events.c.time.desc(), events.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in reversed(list(rows))]


REQUEST_FIELDS = ("time", "service", "replica", "method", "path", "status", "latency_ms", "bytes_in",
                  "bytes_out", "access_key", "client", "request_id", "revision")


_ACCESS_KEY = REQUEST_FIELDS.index("access_key")
ROWS_PER_INSERT = 256  # 3 328 parameters a statement: under SQLite's limit
_COPY_SQL = f"COPY {request_log.name} ({', '.join(REQUEST_FIELDS)}) FROM STDIN"


@functools.lru_cache(maxsize=32)
def _insert_rows_sql(n: int) -> str:
    """``INSERT … VALUES (…), (…)`` for ``n`` rows, from the constant column names (no input reaches the text)."""
    row = f"({', '.join('?' * len(REQUEST_FIELDS))})"
    return f"INSERT INTO {request_log.name} ({', '.join(REQUEST_FIELDS)}) VALUES {', '.join([row] * n)}"  # noqa: S608


def insert_request_rows(conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
    """Append request-log rows, each a sequence in :data:`REQUEST_FIELDS` order, many rows to a statement.

    The gateway logs one row per request (its writer process, ``store/request_writer.py``). A statement per
    row (``executemany``) lets go of the GIL and takes it back for every row: in a thread beside a busy event
    loop that cost 30-55 µs of CPU a row, against about 3 µs here (docs/benchmarks.md, "The request log").
    On SQLite, statements hold 256, 128, … or 1 rows, so that only nine distinct texts are ever prepared (and
    cached by the driver). On PostgreSQL the rows are streamed with ``COPY … FROM STDIN``: psycopg parses the
    text of a statement with over 50 parameters anew at every execution, which made 256-row statements cost
    about 40 µs of the writer's CPU a row."""
    if conn.dialect.name == "postgresql":
        with conn.connection.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        return len(rows)
    i = 0
    while i < len(rows):
        n = 1 << (min(len(rows) - i, ROWS_PER_INSERT).bit_length() - 1)
        conn.exec_driver_sql(_insert_rows_sql(n), tuple(itertools.chain.from_iterable(rows[i:i + n])))
        i += n
    return len(rows)


def log_requests(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """What the gateway's request-log writer does with a batch of rows: append them, and mark the access keys
    that signed them as used."""
    insert_request_rows(conn, rows)
    keys.touch(conn, {r[_ACCESS_KEY] for r in rows if r[_ACCESS_KEY]})


def insert_requests(conn: Connection, records: Iterable[Mapping[str, Any]]) -> int:
    """Append request-log rows given as mappings of :data:`REQUEST_FIELDS` (``revision`` may be left out)."""
    return insert_request_rows(conn, [(*(r.get(k) for k in REQUEST_FIELDS[:-1]), r.get("revision") or "")
                                      for r in records])


def list_requests(conn: Connection, service: str, *, replica: str | None = None, since: float | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    q = select(request_log).where(request_log.c.service == service)
    if replica:
        q = q.where(request_log.c.replica == replica)
    if since is not None:
        q = q.where(request_log.c.time >= since)
    rows = conn.execute(q.order_by(request_log.c.time.desc(), request_log.c.id.desc()).limit(limit))
    return [{k: r._mapping[k] for k in REQUEST_FIELDS} for r in rows]


PRUNE_CHUNK = 10_000


def prune(conn: Connection, older_than_s: float, *, chunk: int = PRUNE_CHUNK) -> int:
    """Delete events and request-log rows older than ``older_than_s`` among the oldest ``chunk`` rows of each
    table (by id, the order they were written in); returns how many went. Call it in a transaction of its own
    until it returns 0: each call holds the write lock briefly, and reads what it deletes plus one chunk, where
    ``DELETE … WHERE time < …`` read the whole table (no index leads with ``time``: 0.4 s for 1.5 million rows,
    every prune; docs/benchmarks.md). A row written long after its time (a request that lasted hours: its time
    is its start) goes once the rows written before it have gone."""
    cutoff, gone = now() - older_than_s, 0
    for table in (events, request_log):
        oldest = select(table.c.id).order_by(table.c.id).limit(chunk).scalar_subquery()
        gone += conn.execute(delete(table).where(table.c.id.in_(oldest), table.c.time < cutoff)).rowcount
    return gone
