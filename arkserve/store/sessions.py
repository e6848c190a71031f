"""Queries on console login sessions. Only the SHA-256 of a session token is stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from arkserve.store.db import now
from arkserve.store.tables import sessions


@dataclass(frozen=True)
class Session:
    user_id: int
    csrf_token: str
    expires_at: float


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: Connection, token: str, user_id: int, csrf_token: str, ttl_s: float) -> Session:
    t = now()
    conn.execute(insert(sessions).values(token_hash=token_hash(token), user_id=user_id, csrf_token=csrf_token,
                                         created_at=t, expires_at=t + ttl_s))
    conn.execute(delete(sessions).where(sessions.c.expires_at < t))
    return Session(user_id, csrf_token, t + ttl_s)


def find(conn: Connection, token: str) -> Session | None:
    row = conn.execute(select(sessions).where(sessions.c.token_hash == token_hash(token))).first()
    if row is None or row.expires_at < now():
        return None
    return Session(row.user_id, row.csrf_token, row.expires_at)


def remove(conn: Connection, token: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))


def remove_for_user(conn: Connection, user_id: int, keep: str | None = None) -> None:
    """End every session of the user, but the one whose token ``keep`` is (the caller's own)."""
    q = delete(sessions).where(sessions.c.user_id == user_id)
    if keep is not None:
        q = q.where(sessions.c.token_hash != token_hash(keep))
    conn.execute(q)
