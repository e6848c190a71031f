"""PostgreSQL: a statement waiting for a row lock that another session holds (a stuck process, a psql session left
in a transaction) fails after the store's lock timeout as a 503 StoreUnavailable, instead of hanging its request
and, one request after another, the whole pool. A ``options`` the URL sets itself is kept."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import text

from arkserve.errors import StoreUnavailable
from arkserve.store import users as user_store
from arkserve.store.db import _with_lock_timeout, open_store
from tests import pg


def test_a_row_lock_held_elsewhere_fails_the_waiting_write_after_the_lock_timeout(postgres_admin_url: str) -> None:
    url = pg.fresh_database(postgres_admin_url)
    store = open_store(url, lock_timeout_ms=300)
    try:
        with store.begin() as conn:
            uid = user_store.create(conn, "held", "h", "user").id
        holder = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (uid,))  # and stays in its transaction
        outcome: list[BaseException | None] = []

        def write() -> None:
            try:
                with store.begin() as conn:
                    conn.execute(text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": uid})
                outcome.append(None)
            except BaseException as exc:  # collected for the assertion
                outcome.append(exc)

        t0 = time.monotonic()
        t = threading.Thread(target=write)
        t.start()
        t.join(10)
        waited = time.monotonic() - t0
        holder.rollback()
        holder.close()
        t.join(10)
        assert outcome and isinstance(outcome[0], StoreUnavailable), outcome
        assert "LockNotAvailable" in str(outcome[0]) and 0.25 < waited < 5
    finally:
        store.dispose()


@pytest.mark.parametrize(("url", "options"), [
    ("postgresql+psycopg://u@h/db", "-c lock_timeout=10000"),
    ("postgresql+psycopg://u@h/db?options=-c%20search_path%3Dark", "-c lock_timeout=10000 -c search_path=ark"),
    ("postgresql+psycopg://u@h/db?options=-c%20lock_timeout%3D0", "-c lock_timeout=10000 -c lock_timeout=0"),
])
def test_the_urls_own_options_are_kept_after_the_default(url: str, options: str) -> None:
    assert _with_lock_timeout(url, 10_000) == options
