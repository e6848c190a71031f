"""Waiting until the gateways route by what the API just wrote, so a new key works the moment its call returns.

Every gateway worker acknowledges each routing version it loads (``arkserve.store.routing``). After a change
that the data plane must see before the caller relies on it (a new or re-enabled key; a disabled or deleted one
must be refused), the API waits until every live worker has loaded the version the change produced, for at most
``timeout_s`` (a worker that is gone stops counting after ``fresh_s``, as for the reconciler's drains).
"""

from __future__ import annotations

import time

from arkserve.api.context import AppContext
from arkserve.store.db import version
from arkserve.store.routing import gateways_caught_up

POLL_S = 0.02


def await_gateways(ctx: AppContext, timeout_s: float = 3.0) -> bool:
    """Block (a worker thread) until the gateways serve the current routing version; False on timeout."""
    with ctx.store.read() as conn:
        target = version(conn)
    deadline = time.monotonic() + timeout_s
    while True:
        with ctx.store.read() as conn:
            if gateways_caught_up(conn, target):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
