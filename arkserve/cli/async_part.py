"""``arkserve dispatcher``: the asynchronous-inference dispatcher as a part of its own (``arkserve up`` runs it)."""

from __future__ import annotations

import logging
import signal

import click

from arkserve.cli.parts import _master
from arkserve.cli.server import _logging, _settings, store_options
from arkserve.errors import ArkserveError


@click.command("dispatcher", help="Run the asynchronous-inference dispatcher alone, against --database-url.")
@store_options
def dispatcher(data_dir: str | None, database_url: str | None) -> None:
    from arkserve.asyncq.dispatcher import Dispatcher
    from arkserve.store.db import open_store

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    _logging(s.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request sent (callback URLs may hold tokens)
    try:
        master = _master(s)
        store = open_store(s.database_url, migrate_schema=False, busy_timeout_ms=s.store.busy_timeout_ms)
    except (ArkserveError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    d = Dispatcher(store, s, master.key)
    signal.signal(signal.SIGTERM, lambda *_: d.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: d.stop_event.set())
    try:
        d.run()
    finally:
        d.stop(grace_s=10.0)
        store.dispose()
