"""Alembic environment: runs migrations on the connection handed in by ``arkserve.store.db``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from arkserve.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
target_metadata = metadata


def _run(conn: object) -> None:
    context.configure(connection=conn, target_metadata=target_metadata,  # type: ignore[arg-type]
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # `alembic` command line, used when writing a new migration
    engine = engine_from_config(config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
