"""Queries on users.

A user id is never handed out twice: the async webhook secret is derived from it (``domain.async_requests``),
so a reused id would give a new account a deleted one's secret. PostgreSQL's sequence never reuses ids; SQLite
(``users.id`` has no ``AUTOINCREMENT``) would reuse the highest id once its row is deleted, so there
:func:`create` allocates the id itself, one past the high-water mark kept in the ``versions`` row
:data:`ID_COUNTER`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.errors import Conflict, NotFound
from arkserve.store.db import bump, now
from arkserve.store.tables import models, services, users, versions

ROLES = ("admin", "user")
ID_COUNTER = "user_ids"  # SQLite: the highest user id ever handed out


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


def _next_sqlite_id(conn: Connection) -> int:
    """One past the highest id ever handed out (the caller's write transaction holds SQLite's lock). The counter
    starts, lazily, at the highest id in the table: ids deleted before it existed cannot be known."""
    held = conn.execute(select(versions.c.value).where(versions.c.name == ID_COUNTER)).scalar()
    highest = int(conn.execute(select(func.coalesce(func.max(users.c.id), 0))).scalar_one())
    uid = max(int(held or 0), highest) + 1
    if held is None:
        conn.execute(insert(versions).values(name=ID_COUNTER, value=uid))
    else:
        conn.execute(update(versions).where(versions.c.name == ID_COUNTER).values(value=uid))
    return uid


def create(conn: Connection, username: str, password_hash: str, role: str) -> User:
    t = now()
    values: dict[str, object] = dict(username=username, password_hash=password_hash, role=role, disabled=False,
                                     created_at=t, updated_at=t)
    try:
        with conn.begin_nested():
            if conn.dialect.name == "sqlite":
                values["id"] = _next_sqlite_id(conn)
            uid = conn.execute(insert(users).values(**values)).inserted_primary_key
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


def owned(conn: Connection, user_id: int) -> dict[str, list[str]]:
    """What in the store keeps a user from being deleted: the names of their services (those being deleted
    included, until the reconciler removes them) and of their models in the market; kinds they own none of are
    left out."""
    found = {
        "services": list(conn.execute(select(services.c.name).where(services.c.owner_id == user_id)
                                      .order_by(services.c.name)).scalars()),
        "models": list(conn.execute(select(models.c.name).where(models.c.owner_id == user_id)
                                    .order_by(models.c.name)).scalars()),
    }
    return {kind: names for kind, names in found.items() if names}


def remove(conn: Connection, user_id: int) -> None:
    conn.execute(delete(users).where(users.c.id == user_id))
    bump(conn)
    bump(conn, "keys")  # the gateway reloads its keys only when this moves


def count_admins(conn: Connection) -> int:
    q = select(func.count()).select_from(users).where(users.c.role == "admin", users.c.disabled.is_(False))
    return int(conn.execute(q).scalar_one())


def lock(conn: Connection, user_id: int) -> None:
    """Hold the user's row until the transaction ends (PostgreSQL ``FOR NO KEY UPDATE``; SQLite's write transactions
    are serial already): what is admitted against one user's quotas and balance is decided one at a time, each
    seeing what the one before it wrote. Not ``FOR UPDATE``: that also blocks the ``FOR KEY SHARE`` lock a row
    referring to the user takes when it is inserted (a billing stop, a ledger line), so a transaction that had
    bumped the change feed and then inserted such a row waited for an admission that waited for the change feed:
    a deadlock, one of the two aborted."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update(key_share=True))


def lock_active_admins(conn: Connection) -> list[int]:
    """The active admins' ids, their rows locked until the transaction ends (PostgreSQL ``FOR NO KEY UPDATE``, as
    :func:`lock`; SQLite's
    write transactions are serial already): two admins demoting each other at once see each other's change,
    so one of them is refused and an admin is always left."""
    q = select(users.c.id).where(users.c.role == "admin", users.c.disabled.is_(False)).order_by(users.c.id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(key_share=True)
    return [int(i) for i in conn.execute(q).scalars()]
