"""The store-backed queue a gateway worker is given (``arkserve.gateway.asyncintake.AsyncQueue``): the CLI builds
one per worker after the fork, so the gateway package itself never imports the store.

``submit`` writes a large body to its file (fsynced) and then commits the row; it returns only after the commit,
and the gateway answers 202 only then (a failed commit removes the file). A submission that would take the
user's waiting bodies past ``asyncq.user_queued_bytes`` is refused first (:class:`SubmitRefused`, 429).
Lookups check the service and the owner: another user's request (or one of another service) reads as missing.
The queue-depth gauge is refreshed by a thread every 2 s, so a scrape never waits on the store.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from arkserve.asyncq import files
from arkserve.domain.async_requests import (
    ResultRefusal,
    Submission,
    SubmitRefused,
    allowed_hosts,
    callback_refusal,
    internal_token,
    public_view,
)
from arkserve.errors import ArkserveError
from arkserve.settings import AsyncSettings
from arkserve.store import async_requests as queue_store
from arkserve.store.db import Store

log = logging.getLogger("arkserve.asyncq")


class StoreQueue:
    def __init__(self, store: Store, data_dir: Path, settings: AsyncSettings, master_key: bytes,
                 *, depth_every_s: float = 2.0) -> None:
        self.store = store
        self.dir = files.body_dir(data_dir)
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes
        self.internal_token = internal_token(master_key)
        self.allowed = allowed_hosts(settings.callback_hosts)
        self._depth = _depth_text({})  # the gauge is declared from the first scrape on, zero rows until a read
        self._stop = threading.Event()
        self._every = depth_every_s
        threading.Thread(target=self._refresh_depth, name="arkserve-async-depth", daemon=True).start()

    # ------------------------------------------------------------------------------ intake (a thread)
    def submit(self, sub: Submission) -> None:
        with self.store.read() as conn:  # before the body is written: a refused one costs no disk
            self._check_room(conn, sub)
        body: bytes | None = sub.body
        body_file = None
        if sub.body_file is not None or sub.body_size > self.settings.inline_bytes:
            body_file = files.write(self.dir, f"{sub.id}.req", sub.body_file if sub.body_file is not None else sub.body)
            body = None
        try:
            with self.store.begin() as conn:
                self._check_room(conn, sub)  # again, with the submissions committed meanwhile
                queue_store.insert_request(conn, {
                    "id": sub.id, "service": sub.service, "user_id": sub.user_id, "access_key": sub.access_key,
                    "method": sub.method, "path": sub.path, "headers": sub.headers, "body": body or None,
                    "body_file": body_file, "body_size": sub.body_size, "callback_url": sub.callback_url,
                    "created_at": time.time()})
        except BaseException:  # nothing was stored (503, or refused): no row will ever name the file
            if body_file is not None:
                files.remove(self.dir, [body_file])
            raise

    def _check_room(self, conn: Connection, sub: Submission) -> None:
        limit = self.settings.user_queued_bytes
        if limit <= 0:
            return
        used = queue_store.queued_bytes(conn, sub.user_id, sub.service)
        if used + sub.body_size > limit:
            whose = "your" if sub.user_id is not None else f"service {sub.service}'s anonymous"
            raise SubmitRefused(429, "AsyncQueueFull",
                                f"{whose} asynchronous requests waiting hold {used} bytes of bodies; this one's "
                                f"{sub.body_size} would pass the limit of {limit} "
                                "(asyncq.user_queued_bytes): retry once some have finished", retry_after=5)

    def _own(self, request_id: str, service: str, user_id: int | None, bodies: bool) -> dict[str, Any] | None:
        with self.store.read() as conn:
            row = queue_store.get(conn, request_id, with_bodies=bodies)
        if row is None or row["service"] != service or row["user_id"] != user_id:
            return None
        return row

    def lookup(self, request_id: str, service: str, user_id: int | None) -> dict[str, Any] | None:
        row = self._own(request_id, service, user_id, False)
        return public_view(row) if row is not None else None

    def result(self, request_id: str, service: str, user_id: int | None
               ) -> tuple[int, list[list[str]], bytes] | ResultRefusal | None:
        row = self._own(request_id, service, user_id, True)
        if row is None:
            return None
        if row["status"] == queue_store.SUCCEEDED:
            body = row["result_body"] or b""
            if row["result_file"]:
                body = files.read(self.dir, row["result_file"])
            return int(row["result_status"]), list(row["result_headers"] or []), body
        if row["status"] == queue_store.FAILED:
            return ResultRefusal(502, "AsyncRequestFailed", f"the request failed: {row['error']}")
        return ResultRefusal(409, "ResultNotReady", f"the request is {row['status']}; try again later")

    # ------------------------------------------------------------------------------ on the loop
    def check_callback(self, url: str) -> str | None:
        return callback_refusal(url, self.allowed)

    def metrics_text(self) -> str:
        return self._depth

    def _refresh_depth(self) -> None:
        while True:  # the first read at once, then every few seconds
            try:
                with self.store.read() as conn:
                    self._depth = _depth_text(queue_store.queue_depth(conn))
            except ArkserveError as exc:
                log.debug("async queue depth not read: %s", exc)
            if self._stop.wait(self._every):
                return

    def close(self) -> None:
        self._stop.set()


def _depth_text(depth: dict[str, dict[str, int]]) -> str:
    lines = ["# HELP arkserve_async_queue_depth Asynchronous requests accepted and not finished, by state.",
             "# TYPE arkserve_async_queue_depth gauge"]
    for service, states in sorted(depth.items()):
        for state, n in sorted(states.items()):
            lines.append(f'arkserve_async_queue_depth{{service="{_esc(service)}",state="{state}"}} {n}')
    return "\n".join(lines) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
