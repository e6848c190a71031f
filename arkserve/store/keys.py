"""Queries on access keys. Secrets are stored sealed (see ``arkserve.auth.vault``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.auth.vault import Sealed
from arkserve.errors import Conflict, NotFound
from arkserve.store.db import bump, now
from arkserve.store.tables import access_keys, users


@dataclass(frozen=True)
class StoredKey:
    access_key: str
    user_id: int
    username: str
    enabled: bool
    description: str
    created_at: float
    last_used_at: float | None
    sealed: Sealed


_COLUMNS = (access_keys, users.c.username)


def _row(row: object) -> StoredKey:
    m = row._mapping  # type: ignore[attr-defined]
    sealed = Sealed(bytes(m["secret_sealed"]), bytes(m["dek_wrapped"]), m["kek_id"])
    return StoredKey(m["access_key"], m["user_id"], m["username"], bool(m["enabled"]), m["description"],
                     m["created_at"], m["last_used_at"], sealed)


def _select() -> object:
    return select(*_COLUMNS).join(users, users.c.id == access_keys.c.user_id)


def insert_key(conn: Connection, access_key: str, user_id: int, sealed: Sealed, description: str) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(access_keys).values(
                access_key=access_key, user_id=user_id, secret_sealed=sealed.secret,
                dek_wrapped=sealed.dek_wrapped, kek_id=sealed.kek_id, enabled=True,
                description=description, created_at=now()))
    except IntegrityError:
        raise Conflict("access key id collision, try again", code="KeyExists") from None
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def count_for(conn: Connection, user_id: int) -> int:
    q = select(func.count()).select_from(access_keys).where(access_keys.c.user_id == user_id)
    return int(conn.execute(q).scalar_one())


def list_keys(conn: Connection, user_id: int | None = None) -> list[StoredKey]:
    q = _select().order_by(access_keys.c.created_at, access_keys.c.id)  # type: ignore[attr-defined]
    if user_id is not None:
        q = q.where(access_keys.c.user_id == user_id)
    return [_row(r) for r in conn.execute(q)]


def find(conn: Connection, access_key: str) -> StoredKey | None:
    row = conn.execute(_select().where(access_keys.c.access_key == access_key)).first()  # type: ignore[attr-defined]
    return _row(row) if row else None


def get(conn: Connection, access_key: str) -> StoredKey:
    key = find(conn, access_key)
    if key is None:
        raise NotFound(f'access key "{access_key}" not found', code="KeyNotFound")
    return key


def set_enabled(conn: Connection, access_key: str, enabled: bool) -> None:
    conn.execute(update(access_keys).where(access_keys.c.access_key == access_key).values(enabled=enabled))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def remove(conn: Connection, access_key: str) -> None:
    conn.execute(delete(access_keys).where(access_keys.c.access_key == access_key))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def touch(conn: Connection, access_keys_used: set[str], at: float | None = None, *,
          min_interval_s: float = 0.0) -> None:
    """Record when keys were last used; skips rows updated less than ``min_interval_s`` ago (no write storms)."""
    if not access_keys_used:
        return
    t = at or now()
    conn.execute(update(access_keys).where(
        access_keys.c.access_key.in_(sorted(access_keys_used)),
        (access_keys.c.last_used_at.is_(None)) | (access_keys.c.last_used_at < t - min_interval_s),
    ).values(last_used_at=t))


def replace_sealed(conn: Connection, access_key: str, sealed: Sealed) -> None:
    conn.execute(update(access_keys).where(access_keys.c.access_key == access_key).values(
        dek_wrapped=sealed.dek_wrapped, kek_id=sealed.kek_id))
