"""One record per proxied request, handed to a sink that never blocks the event loop.

:class:`RecordSink` is the interface (``submit`` is called on the hot path and must only enqueue;
``close`` flushes). The hot path hands it a :data:`RequestRow`: a plain tuple of :class:`RequestRecord`'s
fields in order. Building one costs the compiled hot path a few tens of nanoseconds, where a record object
cost about half a microsecond, and a store takes the rows as they are (``store.events.insert_request_rows``),
where a dict per record cost it 10-20 µs more (docs/benchmarks.md, "The request log").
:class:`BatchingSink` moves rows to a background thread in batches and calls a blocking ``deliver(batch)``
there; when the backlog passes its bound it drops rows and counts them instead of growing without limit.
:class:`PipedSink` is the one the ``gateway`` command uses: its thread only serialises each batch for a writer
process, which writes it to the store. :class:`MemorySink` is for tests, :class:`JsonLinesSink` appends JSON
lines to a file.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable


class RequestRecord(NamedTuple):
    """A :data:`RequestRow` with its fields named (``RequestRecord._make(row)``): for readers, not the hot path."""

    time: float  # POSIX seconds when the request's headers were complete
    service: str  # "" when no service matched
    replica: str  # "" when no replica served it
    method: str
    path: str  # raw path and query as received
    status: int
    latency_ms: float
    bytes_in: int  # request body bytes
    bytes_out: int  # response body bytes
    access_key: str  # "" when unsigned; never the secret or the signature
    client: str  # client address
    request_id: str
    revision: str = ""  # the spec revision of the replica that served it (stable or canary, docs/canary.md)

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


RequestRow = tuple[float, str, str, str, str, int, float, int, int, str, str, str, str]
"""RequestRecord's fields in order (:data:`FIELDS`), as the hot path submits them."""
FIELDS = RequestRecord._fields


@runtime_checkable
class RecordSink(Protocol):
    def submit(self, row: RequestRow) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps every record in a list, named (tests)."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, row: RequestRow) -> None:
        self.records.append(RequestRecord._make(row))

    def close(self) -> None:
        pass


class BatchingSink:
    """Queue rows; a daemon thread hands them to ``deliver`` in batches every ``interval_s``."""

    def __init__(self, deliver: Callable[[list[RequestRow]], None], *, interval_s: float = 0.5,
                 batch_size: int = 1000, max_backlog: int = 100_000) -> None:
        self._deliver = deliver
        self._interval = interval_s
        self._batch = batch_size
        self._max = max_backlog
        self._queue: deque[RequestRow] = deque()
        self._stop = threading.Event()
        self.dropped = 0  # rows refused because the backlog was full
        self.failed_batches = 0
        self.failed_rows = 0  # rows of the batches that deliver() failed on
        self._thread = threading.Thread(target=self._run, name="arkserve-requestlog", daemon=True)
        self._thread.start()

    def submit(self, row: RequestRow) -> None:
        if len(self._queue) >= self._max:
            self.dropped += 1
            return
        self._queue.append(row)

    def _drain(self) -> None:
        q = self._queue
        while q:
            batch = [q.popleft() for _ in range(min(self._batch, len(q)))]
            try:
                self._deliver(batch)
            except Exception:  # a failing store must not kill the log thread
                self.failed_batches += 1
                self.failed_rows += len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._drain()
        self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class PipedSink(BatchingSink):
    """Hand each batch to a child process (``argv``) on its stdin: an 8-byte little-endian length, then the
    batch as :mod:`marshal` data (a list of rows). The child does the slow part, the store's ``INSERT`` in
    ``arkserve gateway`` (``python -m arkserve.store.request_writer``), so that this process only serialises.

    Why a process: the same writes in a thread of this process took the GIL from the event loop thousands of
    times a second (about 8 000 context switches a second in each direction at 15 000 requests a second) and
    cost 10-20 µs per request (docs/benchmarks.md, "The request log"). Here the thread makes one C call and
    one ``write`` per batch. A child that died is started again for the next batch; the batch whose write
    failed counts in ``failed_batches``; rows a dying child had read and not stored are lost with it. The child
    runs in its own session, so a Ctrl-C at the terminal does not reach it, and it should stop at the end of its
    input (``request_writer`` also ignores SIGTERM, which a service manager sends to every process of the
    unit), so :meth:`close` loses nothing: it drains, closes the pipe and waits for the child."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, stop_timeout_s: float = 30.0,
                 **kwargs: float) -> None:
        self._argv, self._env, self._stop_timeout = list(argv), env, stop_timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        self.started = 0  # children started, the first one included
        super().__init__(self._send, **kwargs)  # type: ignore[arg-type]

    def _send(self, batch: list[RequestRow]) -> None:
        payload = marshal.dumps(batch)
        child = self._child
        if child is None or child.poll() is not None:
            self._forget()
            # its own session: a Ctrl-C at the terminal does not reach it; it ends when this process closes the pipe
            child = self._child = subprocess.Popen(self._argv, stdin=subprocess.PIPE, env=self._env,
                                                   start_new_session=True)
            self.started += 1
        assert child.stdin is not None
        try:
            child.stdin.write(len(payload).to_bytes(8, "little"))
            child.stdin.write(payload)
            child.stdin.flush()
        except OSError:  # BrokenPipeError: it died; the next batch starts another
            self._forget()
            raise

    def _forget(self) -> None:
        """Let go of a child that died (rows it had not stored yet are lost with it)."""
        if self._child is not None and self._child.stdin is not None:
            with contextlib.suppress(OSError):
                self._child.stdin.close()
        self._child = None

    def close(self) -> None:
        super().close()
        child = self._child
        if child is not None and child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()  # its end of input: it writes what it has and exits
            try:
                child.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


class JsonLinesSink(BatchingSink):
    """Append one JSON object per record to ``path`` (one ``write`` per batch, O_APPEND)."""

    def __init__(self, path: str | Path, **kwargs: float) -> None:
        self.path = Path(path)
        super().__init__(self._write, **kwargs)  # type: ignore[arg-type]

    def _write(self, batch: list[RequestRow]) -> None:
        text = "".join(json.dumps(RequestRecord._make(r)._asdict(), separators=(",", ":")) + "\n" for r in batch)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
