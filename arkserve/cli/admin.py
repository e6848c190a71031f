"""``arkserve master-key rotate``: re-wrap every stored secret under a new master key (offline)."""

from __future__ import annotations

import os

import click

from arkserve.auth.vault import MASTER_KEY_FILE, MasterKey, load_master_key, write_secret_file
from arkserve.cli.output import fail
from arkserve.cli.server import _settings, store_options
from arkserve.errors import ArkserveError


@click.group("master-key", help="The master key that encrypts stored secret keys.")
def master_key() -> None:
    pass


@master_key.command("rotate", help="Generate a new master key and re-wrap every stored SK with it. Stop arkserve "
                                   "first: running parts keep the old key in memory.")
@store_options
def rotate(data_dir: str | None, database_url: str | None) -> None:
    from arkserve.auth import keys as key_service  # imports SQLAlchemy: not for every CLI start
    from arkserve.store.db import open_store

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    from_env = os.environ.get("ARKSERVE_MASTER_KEY")
    try:
        old = load_master_key(s.data_dir, from_env, create=False)
        store = open_store(s.database_url, busy_timeout_ms=s.store.busy_timeout_ms)
    except ArkserveError as exc:
        fail(exc.message)
        raise
    pending = s.data_dir / (MASTER_KEY_FILE + ".new")
    # The new key is on disk before any secret depends on it; a crash in between is finished by re-running.
    new = MasterKey.from_b64(pending.read_text()) if pending.exists() else MasterKey.generate()
    if not from_env:
        write_secret_file(pending, new.to_b64() + "\n")
    with store.begin() as conn:
        count = key_service.rotate_master(conn, old, new)
    store.dispose()
    if from_env:
        click.echo(f"re-wrapped {count} secret(s). Set ARKSERVE_MASTER_KEY to the new key for every part:")
        click.echo(new.to_b64())
        return
    current = s.data_dir / MASTER_KEY_FILE
    os.replace(current, s.data_dir / (MASTER_KEY_FILE + ".old"))
    os.replace(pending, current)
    click.echo(f"re-wrapped {count} secret(s); new master key in {current} (the old one is kept in "
               f"{current}.old until you delete it)")
