"""Opening the store: engine creation for SQLite and PostgreSQL, migrations, version counters."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, QueuePool, create_engine, event, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from arkserve.errors import StoreSchemaNewer, StoreUnavailable
from arkserve.store.tables import versions

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use the psycopg 3 driver for both."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


POOL_SIZE, POOL_OVERFLOW = 5, 10  # PostgreSQL connections a process keeps, and opens beyond them when busy
POOL_TIMEOUT_S = 5.0  # how long a request waits for one of them before a 503 StoreUnavailable


def make_engine(url: str, *, busy_timeout_ms: int = 5000, pool_size: int = POOL_SIZE,
                max_overflow: int = POOL_OVERFLOW, pool_timeout_s: float = POOL_TIMEOUT_S) -> Engine:
    """The engine of a store URL; the pool settings apply to PostgreSQL (SQLite keeps SQLAlchemy's own)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN be a real BEGIN IMMEDIATE for writers; pysqlite's own
            # transaction handling is disabled so that the pragmas below apply.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the lock up front (no deadlock on upgrade); readers stay concurrent in WAL.
            read_only = conn.get_execution_options().get("ark_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         pool_timeout=pool_timeout_s)


_REVISION_RE = re.compile(r"^(down_)?revision(?:\s*:[^=\n]*)?\s*=\s*(?:['\"]([^'\"]+)['\"]|None)\s*$", re.M)


def _script_revisions() -> tuple[set[str], str] | None:
    """Every revision the migration files name and their one head, or ``None`` when they do not say it plainly
    (a merge, two heads, a file without both lines): then alembic itself decides."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {m.group(1) or "": m.group(2) for m in _REVISION_RE.finditer(path.read_text())}
        if found.get("") is None or "down_" not in found:
            return None
        revisions.add(str(found[""]))
        if found["down_"]:
            downs.add(str(found["down_"]))
    heads = revisions - downs
    return (revisions, heads.pop()) if len(heads) == 1 else None


def script_head() -> str | None:
    """The one head revision the migration files name, or ``None`` when they do not say it plainly."""
    known = _script_revisions()
    return known[1] if known else None


def store_revisions(engine: Engine) -> list[str] | None:
    """The revisions in the store's ``alembic_version``; ``None`` when it cannot be read (no table yet, or a
    store that cannot answer: alembic will say why)."""
    try:
        with engine.connect() as conn:
            return [str(r) for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()]
    except SQLAlchemyError:
        return None


def at_head(engine: Engine) -> bool:
    """Whether the store's schema is already at the newest migration (read without importing alembic)."""
    head = script_head()
    return head is not None and store_revisions(engine) == [head]


def check_not_newer(engine: Engine) -> None:
    """:class:`StoreSchemaNewer` when the store is at a revision these migrations do not know: a newer arkserve
    migrated it (a rollback after an upgrade). Alembic would stop with a traceback ("Can't locate revision")."""
    known = _script_revisions()
    stored = store_revisions(engine)
    if known is None or not stored:
        return
    revisions, head = known
    unknown = [r for r in stored if r not in revisions]
    if unknown:
        raise StoreSchemaNewer(f"the store is at schema {', '.join(unknown)}, newer than this arkserve (head "
                               f"{head}): upgrade arkserve, or restore the backup taken before the upgrade")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent). A store already there is left without
    importing alembic, which would cost every serving process ~10 MB it never uses; one at a revision this
    build does not know is refused (:class:`StoreSchemaNewer`)."""
    if at_head(engine):
        return
    check_not_newer(engine)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def unavailable(why: str) -> StoreUnavailable:
    """The store cannot answer now: the API's 503 says ``Retry-After: 1`` (the body ``retry_after_s``)."""
    return StoreUnavailable(f"store unavailable: {why}", details={"retry_after_s": 1})


class Store:
    """An engine plus the few helpers every process needs (transactions, version counters)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction; store errors surface as :class:`StoreUnavailable` when temporary."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise unavailable(exc.orig.__class__.__name__) from exc
        except PoolTimeout:
            raise self._busy() from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(ark_read_only=True) as conn:
                yield conn
        except OperationalError as exc:
            raise unavailable(exc.orig.__class__.__name__) from exc
        except PoolTimeout:
            raise self._busy() from None

    def _busy(self) -> StoreUnavailable:
        """Every pooled connection stayed taken for the pool's timeout (a slow or locked store): a 503 with
        ``Retry-After``, not the pool's TimeoutError (a 500 and a traceback per request)."""
        pool = self.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 0
        total = size + max(0, int(getattr(pool, "_max_overflow", 0)))
        return unavailable(f"all {total} connections busy")

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, busy_timeout_ms: int = 5000, migrate_schema: bool = True, pool_size: int = POOL_SIZE,
               max_overflow: int = POOL_OVERFLOW, pool_timeout_s: float = POOL_TIMEOUT_S) -> Store:
    engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size, max_overflow=max_overflow,
                         pool_timeout_s=pool_timeout_s)
    if migrate_schema:
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()  # a refused store (StoreSchemaNewer, a failed migration) leaves no connection open
            raise
    return Store(engine)


ROUTING_CHANNEL = "arkserve_routing"  # PostgreSQL: notified with each routing version; gateway workers listen


def bump(conn: Connection, name: str = "routing") -> None:
    """Move a version counter inside the caller's transaction (readers poll it to notice changes). On PostgreSQL
    a routing version also notifies :data:`ROUTING_CHANNEL` at commit (the gateway workers load it at once:
    :mod:`arkserve.store.wake`; the server folds a transaction's repeats into one notification)."""
    conn.execute(update(versions).where(versions.c.name == name).values(value=versions.c.value + 1))
    if name == "routing":
        notify(conn, ROUTING_CHANNEL)


def notify(conn: Connection, channel: str) -> None:
    """On PostgreSQL, ``NOTIFY channel`` with the caller's transaction (delivered at its commit), once per
    transaction: the server would fold repeats anyway, and each costs a round trip. Nothing on SQLite."""
    if conn.dialect.name != "postgresql":
        return
    # per DBAPI connection: the transaction that notified each channel (the object itself: an id can be reused)
    tx, sent = conn.get_transaction(), conn.info.setdefault("arkserve_notified", {})
    if tx is None or sent.get(channel) is not tx:
        conn.exec_driver_sql(f"NOTIFY {channel}")
        sent[channel] = tx


def version(conn: Connection, name: str = "routing") -> int:
    return int(conn.execute(select(versions.c.value).where(versions.c.name == name)).scalar_one())


def now() -> float:
    return time.time()
