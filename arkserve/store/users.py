"""Queries on users."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.errors import Conflict, NotFound
from arkserve.store.db import bump, now
from arkserve.store.tables import users

ROLES = ("admin", "user")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: float
    password_hash: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _row(row: object) -> User:
    m = row._mapping  # type: ignore[attr-defined]
    return User(m["id"], m["username"], m["role"], bool(m["disabled"]), m["created_at"], m["password_hash"])


def create(conn: Connection, username: str, password_hash: str, role: str) -> User:
    t = now()
    try:
        with conn.begin_nested():
            uid = conn.execute(insert(users).values(
                username=username, password_hash=password_hash, role=role, disabled=False,
                created_at=t, updated_at=t)).inserted_primary_key
    except IntegrityError:
        raise Conflict(f'user "{username}" already exists', code="UserExists") from None
    assert uid is not None
    return get_by_id(conn, int(uid[0]))


def get_by_id(conn: Connection, user_id: int) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"user {user_id} not found", code="UserNotFound")
    return _row(row)


def find(conn: Connection, username: str) -> User | None:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    return _row(row) if row else None


def get(conn: Connection, username: str) -> User:
    user = find(conn, username)
    if user is None:
        raise NotFound(f'user "{username}" not found', code="UserNotFound")
    return user


def list_all(conn: Connection) -> list[User]:
    return [_row(r) for r in conn.execute(select(users).order_by(users.c.id))]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def set_password(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=now()))


def set_disabled(conn: Connection, user_id: int, disabled: bool) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled, updated_at=now()))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def set_role(conn: Connection, user_id: int, role: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(role=role, updated_at=now()))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def remove(conn: Connection, user_id: int) -> None:
    conn.execute(delete(users).where(users.c.id == user_id))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def count_admins(conn: Connection) -> int:
    q = select(func.count()).select_from(users).where(users.c.role == "admin", users.c.disabled.is_(False))
    return int(conn.execute(q).scalar_one())
