"""The dispatcher part (``arkserve dispatcher``, one more child of ``arkserve up``): it feeds stored asynchronous
requests to their services and keeps their results, then delivers callbacks.

Each pass claims due requests with a lease (``store/async_requests.py``) up to ``asyncq.concurrency`` at a
time, at most three quarters of them (``share``) for one service, so one service's long requests never hold up
another's, and hands each to a thread: send through the gateway (``delivery.py``), then store the one result (or an
explicit failure), or put it back in the queue with a backoff. A heartbeat renews the leases of requests in
flight, so only a dead dispatcher's requests are claimed again (when their lease runs out): every accepted
request ends as a result or a failure. A request claimed again after its dispatcher died may reach the app a
second time (at-least-once to the app); its result is recorded once. Finished requests are purged after
``asyncq.retention_s``, with their files; a request's body file goes as soon as it has its result. Files no row
names (a crash between writing a body and committing its row) are removed after a day.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from arkserve.asyncq import callbacks, files
from arkserve.asyncq.delivery import Outcome, Sender
from arkserve.domain.async_requests import allowed_hosts, internal_token, service_webhook_secret, webhook_secret
from arkserve.errors import ArkserveError
from arkserve.outage import OutageLog
from arkserve.settings import Settings
from arkserve.store import async_requests as queue_store
from arkserve.store import events as event_store
from arkserve.store.db import Store

log = logging.getLogger("arkserve.asyncq")


class Dispatcher:
    def __init__(self, store: Store, settings: Settings, master_key: bytes, *, poll_s: float = 0.1) -> None:
        self.store = store
        self.settings = settings
        self.a = settings.asyncq
        self.master_key = master_key
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.dir = files.body_dir(settings.data_dir)
        self.sender = Sender(settings, internal_token(master_key))
        self.allowed = allowed_hosts(self.a.callback_hosts)
        self.hooks = httpx.Client(timeout=self.a.callback_timeout_s, follow_redirects=False)
        self.poll_s = poll_s
        self.pool = ThreadPoolExecutor(self.a.concurrency, thread_name_prefix="arkserve-async")
        self.inflight: set[str] = set()
        # requests of one service in flight at most: a quarter of the slots stays free for the other services
        self.share = max(1, self.a.concurrency - self.a.concurrency // 4)
        self.busy: Counter[str] = Counter()  # requests in flight per service (callbacks not counted)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._renew_at = self._purge_at = self._sweep_at = 0.0

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> None:
        log.info("dispatcher %s started", self.owner)
        away = OutageLog(log, "dispatcher pass skipped")
        while not self.stop_event.is_set():
            try:
                self.pass_once(time.time())
                away.ok()
            except ArkserveError as exc:  # the store is away: try again
                away.failed(exc.message)
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def pass_once(self, now: float) -> None:
        free = self.a.concurrency - len(self.inflight)
        if now >= self._renew_at:
            self._renew_at = now + self.a.lease_s / 4
            with self.lock:
                ids = list(self.inflight)
            if ids:
                with self.store.begin() as conn:
                    queue_store.renew(conn, self.owner, ids, now + self.a.lease_s)
        with self.lock:
            busy = dict(self.busy)
        full = [service for service, n in busy.items() if n >= self.share]
        with self.store.read() as conn:  # a backlog only of services that have their share: no claim
            requests, hooks_due = queue_store.anything_due(conn, now, full)
        if free > 0 and requests:
            with self.store.begin() as conn:
                rows = queue_store.claim(conn, self.owner, now, self.a.lease_s, free, per_service=self.share,
                                         busy=busy)
            for row in rows:
                self._start(row, self._handle, row["service"])
        free = self.a.concurrency - len(self.inflight)
        if free > 0 and hooks_due:
            with self.store.begin() as conn:
                hooks = queue_store.claim_callbacks(conn, self.owner, now, self.a.lease_s, free)
            for row in hooks:
                self._start(row, self._callback)
        if now >= self._purge_at:
            self._purge_at = now + 60
            with self.store.begin() as conn:
                gone = queue_store.purge(conn, now)
            files.remove(self.dir, gone)
        if now >= self._sweep_at:
            self._sweep_at = now + 3600
            self._sweep(now - 86400)

    def _sweep(self, before: float) -> None:
        """Remove the files under ``<data_dir>/async/`` older than ``before`` that no row names."""
        old = files.older(self.dir, before)
        if not old:
            return
        with self.store.read() as conn:
            named = queue_store.named_files(conn, old)
        orphans = [n for n in old if n not in named]
        if orphans:
            log.info("removing %d file(s) under %s that no asynchronous request names", len(orphans), self.dir)
            files.remove(self.dir, orphans)

    def _start(self, row: dict[str, Any], job: Any, service: str | None = None) -> None:
        with self.lock:
            self.inflight.add(row["id"])
            if service is not None:
                self.busy[service] += 1

        def run() -> None:
            try:
                job(row)
            except Exception:  # the lease runs out and another pass tries again
                log.exception("asynchronous request %s: unexpected error", row["id"])
            finally:
                with self.lock:
                    self.inflight.discard(row["id"])
                    if service is not None:
                        self.busy[service] -= 1
                        if self.busy[service] <= 0:
                            del self.busy[service]
                self.wake.set()

        self.pool.submit(run)

    # ------------------------------------------------------------------------------ one request
    def _handle(self, row: dict[str, Any]) -> None:
        now = time.time()
        with self.store.read() as conn:
            target = queue_store.service_target(conn, row["service"], row["created_at"])
        if target is None:
            self._finish(row, "failed", error=f"the service {row['service']!r} no longer exists")
            return
        if row["attempts"] > self.a.max_attempts:
            self._finish(row, "failed", error=f"gave up after {row['attempts'] - 1} attempts; last error: "
                                              f"{row.get('error') or 'its dispatcher stopped'}")
            return
        outcome = self.sender.send(row, target[0])
        if outcome.kind == "retry":
            if time.time() - row["created_at"] > self.a.deliver_timeout_s or row["attempts"] >= self.a.max_attempts:
                self._finish(row, "failed", error=f"not delivered within {self.a.deliver_timeout_s:g} s / "
                                                  f"{row['attempts']} attempts: {outcome.error}")
                return
            delay = min(30.0, 0.5 * 2 ** (row["attempts"] - 1))
            with self.store.begin() as conn:
                queue_store.requeue(conn, row["id"], self.owner, now + delay, outcome.error)
            return
        if outcome.kind == "fail":
            self._finish(row, "failed", error=outcome.error)
            return
        self._finish(row, "succeeded", outcome)

    def _finish(self, row: dict[str, Any], status: str, outcome: Outcome | None = None, error: str = "") -> None:
        body: bytes | None = outcome.body if outcome is not None else None
        result_file = None
        if body is not None and len(body) > self.a.inline_bytes:
            result_file = files.write(self.dir, f"{row['id']}.res", body)
            body = None
        with self.store.begin() as conn:
            ok = queue_store.finish(
                conn, row["id"], self.owner, now=time.time(), status=status, retention_s=self.a.retention_s,
                result_status=outcome.status if outcome else None, result_headers=outcome.headers if outcome else None,
                result_body=body, result_file=result_file, result_size=len(outcome.body) if outcome else None,
                error=error or None)
        if not ok:  # the lease was lost (this dispatcher stalled past it): another one owns the request now
            log.warning("asynchronous request %s: lease lost, result dropped", row["id"])
            if result_file:
                files.remove(self.dir, [result_file])
        elif row.get("body_file"):  # never sent again
            files.remove(self.dir, [row["body_file"]])
        self.wake.set()

    # ------------------------------------------------------------------------------ callbacks
    def _callback(self, row: dict[str, Any]) -> None:
        t0 = time.time()
        status, error, state = 0, "", "pending"
        secret = None
        if row["user_id"] is not None:
            secret = webhook_secret(self.master_key, row["user_id"])
        else:  # anonymous (a public service): the service's own secret, never its owner's
            with self.store.read() as conn:
                target = queue_store.service_target(conn, row["service"], row["created_at"])
            if target is not None:
                secret = service_webhook_secret(self.master_key, row["service"], target[2])
        try:
            if secret is None:
                raise callbacks.CallbackRefused("no webhook secret: the service no longer exists")
            result = row["result_body"]
            if row.get("result_file"):
                result = files.read(self.dir, row["result_file"])
            body = callbacks.payload(row, result)
            status, error = callbacks.deliver(self.hooks, row, secret, body, self.allowed)
            state = "delivered" if 200 <= status < 300 else "pending"
        except callbacks.CallbackRefused as exc:
            error, state = str(exc), "failed"
        except httpx.InvalidURL as exc:  # stored before intake refused such URLs: it can never be sent
            error, state = f"the callback URL cannot be sent: {exc}", "failed"
        except (httpx.HTTPError, ConnectionError) as exc:
            error = f"{exc.__class__.__name__}: {exc}"
        except Exception as exc:  # anything else is a failed attempt too, so callback_attempts always ends it
            log.exception("callback of %s: unexpected error", row["id"])
            error = f"{exc.__class__.__name__}: {exc}"
        if state == "pending" and row["callback_attempts"] >= self.a.callback_attempts:
            state = "failed"
        next_at = time.time() + callbacks.backoff(row["callback_attempts"])
        if error:
            log.info("callback of %s: attempt %d: %s", row["id"], row["callback_attempts"], error)
        with self.store.begin() as conn:
            queue_store.callback_outcome(conn, row["id"], self.owner, state, next_at)
            event_store.insert_requests(conn, [{
                "time": t0, "service": row["service"], "replica": "callback", "method": "POST",
                "path": callbacks.shown(row["callback_url"]), "status": status,
                "latency_ms": round((time.time() - t0) * 1000, 3),
                "bytes_in": 0, "bytes_out": 0, "access_key": row["access_key"], "client": "dispatcher",
                "request_id": row["id"]}])

    # ------------------------------------------------------------------------------ stopping
    def stop(self, grace_s: float = 30.0) -> None:
        """Stop claiming; let requests in flight finish for up to ``grace_s`` (the rest are claimed again later)."""
        self.stop_event.set()
        self.wake.set()
        deadline = time.monotonic() + grace_s
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.sender.close()
        self.hooks.close()
