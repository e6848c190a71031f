"""The process that appends the gateway's request log to the store: ``python -m arkserve.store.request_writer``.

A gateway worker starts one (:class:`arkserve.gateway.requestlog.PipedSink`) and writes batches of rows to its
stdin: an 8-byte little-endian length, then a :mod:`marshal`-ed list of rows in ``events.REQUEST_FIELDS`` order.
Each batch becomes one transaction (``events.log_requests``). The store is the one named by
``ARKSERVE_REQUEST_LOG_DB`` (a database URL; in the environment, not on the command line, where ``ps`` would
show its password). It stops at the end of its input, after the last batch, and ignores SIGINT and SIGTERM
(it runs in a session of its own, but a service manager signals every process of its unit): the worker closes
the pipe when it is done. A batch the store refuses (it is away) is dropped, as the gateway keeps serving either
way, with a warning: the first at once, then a line a minute while the store stays away (``OutageLog``).
"""

from __future__ import annotations

import logging
import marshal
import os
import signal
import sys
from typing import BinaryIO

from arkserve.outage import OutageLog
from arkserve.store import events
from arkserve.store.db import open_store

log = logging.getLogger("arkserve.gateway")
URL_VARIABLE = "ARKSERVE_REQUEST_LOG_DB"


def launch(database_url: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start this writer for ``database_url`` (``PipedSink(argv, env=env)``)."""
    return [sys.executable, "-m", __name__], {**os.environ, URL_VARIABLE: database_url}


def read_batch(stream: BinaryIO) -> list[tuple[object, ...]] | None:
    """The next batch on ``stream``, or None at its end (a batch cut short by a dying worker counts as the end)."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "little")
    payload = stream.read(size)
    if len(payload) < size:
        return None
    rows: list[tuple[object, ...]] = marshal.loads(payload)  # noqa: S302 - from the worker that started us, on its pipe
    return rows


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store(os.environ[URL_VARIABLE], migrate_schema=False)
    away = OutageLog(log, "request log")
    try:
        while (rows := read_batch(sys.stdin.buffer)) is not None:
            try:
                with store.begin() as conn:
                    events.log_requests(conn, rows)
            except Exception as exc:  # the store is away (or refused it): drop, keep going
                why = str(getattr(exc, "message", exc)).splitlines()[0]  # not SQLAlchemy's [parameters: ...]: the rows
                away.failed(f"batch of {len(rows)} dropped: {why}")
            else:
                away.ok()
    finally:
        store.dispose()


if __name__ == "__main__":
    main()
