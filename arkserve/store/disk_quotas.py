"""Queries on disk quotas: the limit an admin set for a user's network disk (none: the default applies)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from arkserve.store.db import now
from arkserve.store.tables import disk_quotas
from arkserve.store.upsert import upsert


def get(conn: Connection, user_id: int) -> int | None:
    value = conn.execute(select(disk_quotas.c.limit_bytes).where(disk_quotas.c.user_id == user_id)).scalar()
    return None if value is None else int(value)


def set_limit(conn: Connection, user_id: int, limit_bytes: int | None) -> None:
    """Set a user's quota; ``None`` removes it (back to the default)."""
    if limit_bytes is None:
        conn.execute(delete(disk_quotas).where(disk_quotas.c.user_id == user_id))
        return
    upsert(conn, disk_quotas, {"user_id": user_id}, {"limit_bytes": limit_bytes, "updated_at": now()})
