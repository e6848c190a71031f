"""The store: SQLAlchemy Core tables, migrations and the queries of each noun.

SQLite (WAL, busy timeout) by default, PostgreSQL for production. The schema only
changes through Alembic migrations in ``migrations/``; :func:`arkserve.store.db.open_store`
migrates on start. Query modules take a ``Connection`` so callers own transactions.
"""
