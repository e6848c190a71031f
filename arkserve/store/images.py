"""Queries on the platform registry's repositories (owner, visibility) and per-user registry quotas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.store.db import now
from arkserve.store.tables import image_quotas, image_repositories, users
from arkserve.store.upsert import upsert


@dataclass(frozen=True)
class Repository:
    name: str
    owner_id: int
    owner: str
    public: bool
    created_at: float
    updated_at: float


def _select() -> Select[Any]:
    return (select(image_repositories, users.c.username)
            .join(users, users.c.id == image_repositories.c.owner_id))


def _row(row: object) -> Repository:
    m = row._mapping  # type: ignore[attr-defined]
    return Repository(m["name"], m["owner_id"], m["username"], bool(m["public"]), m["created_at"], m["updated_at"])


def find(conn: Connection, name: str) -> Repository | None:
    row = conn.execute(_select().where(image_repositories.c.name == name)).first()
    return _row(row) if row else None


def list_repositories(conn: Connection, *, owner_id: int | None = None, public: bool | None = None) -> list[Repository]:
    q = _select().order_by(image_repositories.c.name)
    if owner_id is not None:
        q = q.where(image_repositories.c.owner_id == owner_id)
    if public is not None:
        q = q.where(image_repositories.c.public == public)
    return [_row(r) for r in conn.execute(q)]


def ensure(conn: Connection, name: str, owner_id: int, public: bool = False) -> Repository:
    """The row of ``name``, created (private unless ``public``) when the first push is allowed."""
    found = find(conn, name)
    if found is not None:
        return found
    t = now()
    try:
        with conn.begin_nested():
            conn.execute(insert(image_repositories).values(name=name, owner_id=owner_id, public=public,
                                                           created_at=t, updated_at=t))
    except IntegrityError:  # created meanwhile by a concurrent token request
        pass
    found = find(conn, name)
    assert found is not None
    return found


def set_public(conn: Connection, name: str, owner_id: int, public: bool) -> Repository:
    ensure(conn, name, owner_id)
    conn.execute(update(image_repositories).where(image_repositories.c.name == name)
                 .values(public=public, updated_at=now()))
    found = find(conn, name)
    assert found is not None
    return found


def remove(conn: Connection, name: str) -> None:
    conn.execute(delete(image_repositories).where(image_repositories.c.name == name))


def quota(conn: Connection, user_id: int) -> int | None:
    """The user's own quota in bytes, or None for the default (setting ``registry.quota_gib``)."""
    value = conn.execute(select(image_quotas.c.quota_bytes).where(image_quotas.c.user_id == user_id)).scalar()
    return int(value) if value is not None else None


def set_quota(conn: Connection, user_id: int, quota_bytes: int | None) -> None:
    """Set a user's quota; ``None`` removes it (back to the default)."""
    if quota_bytes is None:
        conn.execute(delete(image_quotas).where(image_quotas.c.user_id == user_id))
    else:
        upsert(conn, image_quotas, {"user_id": user_id}, {"quota_bytes": quota_bytes})
