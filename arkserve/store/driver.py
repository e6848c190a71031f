"""Reads on the database driver's own connection, for the few statements on a hot poll path.

A gateway worker reads the routing versions on every poll and the changed routes on every change. Through a
SQLAlchemy ``Connection`` each read pays for the connection wrapper, its events, the transaction object, the
execution context and the result wrapper: about ten times what SQLite spends running the query. Here a
statement is compiled once for the engine's dialect, and run on a connection checked out of the same pool
(so PostgreSQL's pre-ping and SQLite's pragmas still apply) with a plain cursor. On PostgreSQL that connection
is in autocommit while this module holds it: under PostgreSQL's READ COMMITTED each statement takes its own
snapshot inside a transaction as well, so a read transaction added nothing but a ``BEGIN`` and a ``ROLLBACK``,
a round trip each (half the CPU of a gateway worker's routing delta there: ``bench/controlplane.py --postgres``).

What the cursor returns is the driver's: a JSON column arrives as text on SQLite (:func:`json_value`
decodes it), booleans as integers. Any driver error is raised as :class:`DriverError`; callers fall back to
the SQLAlchemy path, which reports it in the store's words."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import ClauseElement


class DriverError(Exception):
    """A read on the driver's connection failed (the store is away, locked, or its schema moved)."""


class Compiled:
    """One statement compiled for one dialect: its SQL text and how to lay out its parameters."""

    def __init__(self, stmt: ClauseElement, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        # the statement's literal values (e.g. ``state = 'ready'``) are bound parameters with generated names
        self._defaults: dict[str, Any] = dict(compiled.construct_params(_check=False) or {})  # type: ignore[call-arg]
        order = getattr(compiled, "positiontup", None) or ()
        self._order: Sequence[str] | None = tuple(order) if engine.dialect.positional else None

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self._defaults, **values}
        return merged if self._order is None else tuple(merged[name] for name in self._order)


class Statements:
    """Statements compiled lazily per engine (a gateway worker has one engine; tests open many)."""

    def __init__(self, **statements: ClauseElement) -> None:
        self._statements = statements
        self._by_engine: dict[int, dict[str, Compiled]] = {}

    def get(self, engine: Engine, name: str) -> Compiled:
        compiled = self._by_engine.setdefault(id(engine), {})
        found = compiled.get(name)
        if found is None:
            found = compiled[name] = Compiled(self._statements[name], engine)
        return found


class Reader:
    """A read transaction on a pooled driver connection."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def rows(self, compiled: Compiled, **values: Any) -> list[tuple[Any, ...]]:
        return self.execute(compiled.sql, compiled.params(values))

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        try:
            self._cursor.execute(sql, params)
            return list(self._cursor.fetchall()) if self._cursor.description else []
        except Exception as exc:  # the driver's own error classes: sqlite3.Error, psycopg.Error
            raise DriverError(f"{exc.__class__.__name__}: {exc}") from exc


class Session:
    """A driver connection one poller keeps between its reads (a checkout and check-in of the pool costs about
    as much as a small query). One read at a time: a read while another runs takes a pooled connection. A
    connection that failed is dropped; the next read opens another."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw: Any = None
        self._lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """One read transaction (a snapshot on SQLite's WAL, as ``Store.read`` takes)."""
        if not self._lock.acquire(blocking=False):
            with read(self.engine) as reader:
                yield reader
            return
        try:
            if self._raw is None:
                self._raw = _connect(self.engine)
            try:
                with _transaction(self.engine, self._raw) as reader:
                    yield reader
            except DriverError:
                self.close(invalidate=True)
                raise
        finally:
            self._lock.release()

    def close(self, invalidate: bool = False) -> None:
        """Give the connection back; ``invalidate``: it failed, so the pool discards it instead of reusing it."""
        raw, self._raw = self._raw, None
        if raw is not None:
            _release(self.engine, raw, invalidate)


def _autocommit(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _connect(engine: Engine) -> Any:
    try:
        raw: Any = engine.raw_connection()
    except Exception as exc:
        raise DriverError(f"{exc.__class__.__name__}: {exc}") from exc
    if _autocommit(engine):
        try:
            raw.rollback()  # out of whatever the pool's checkout left open (nothing, usually: no round trip then)
            raw.dbapi_connection.autocommit = True
        except Exception as exc:
            _release(engine, raw, invalidate=True)
            raise DriverError(f"{exc.__class__.__name__}: {exc}") from exc
    return raw


def _release(engine: Engine, raw: Any, invalidate: bool = False) -> None:
    """Back to the pool as the pool handed it out (not in autocommit), or discarded when it failed."""
    with contextlib.suppress(Exception):  # already gone
        if invalidate:
            raw.invalidate()
            return
        if _autocommit(engine):
            raw.dbapi_connection.autocommit = False
        raw.close()


@contextmanager
def _transaction(engine: Engine, raw: Any) -> Iterator[Reader]:
    try:
        cursor = raw.cursor()
    except Exception as exc:
        raise DriverError(f"{exc.__class__.__name__}: {exc}") from exc
    if engine.dialect.name == "sqlite":  # pysqlite's own transactions are off (store.db): begin ourselves
        Reader(cursor).execute("BEGIN")
    try:
        yield Reader(cursor)
    finally:
        try:
            raw.rollback()  # nothing to end in autocommit (PostgreSQL): no round trip
        except Exception as exc:
            raise DriverError(f"{exc.__class__.__name__}: {exc}") from exc


@contextmanager
def read(engine: Engine) -> Iterator[Reader]:
    """One read transaction on a connection checked out of the pool for it."""
    raw = _connect(engine)
    failed = False
    try:
        with _transaction(engine, raw) as reader:
            yield reader
    except DriverError:
        failed = True
        raise
    finally:
        _release(engine, raw, invalidate=failed)


def json_value(value: Any) -> Any:
    """A JSON column's value as the driver returned it: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
