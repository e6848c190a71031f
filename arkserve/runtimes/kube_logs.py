"""Copies a Pod's output into ``<data_dir>/logs/<service>/<replica>.log`` (the other runtimes' layout).

One thread per Pod follows ``GET .../pods/<name>/log?follow=true&timestamps=true`` until the container
ends or the runtime closes. After an adoption it asks for the seconds since the file's last line and
skips lines up to that timestamp, compared as the file writes them, so no line is written twice.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from arkserve.logs import LogWriter, format_ts, parse_ts


class PodFollower(threading.Thread):
    """``open_stream(since_seconds)`` returns the raw response (a ``urllib3`` response: ``stream()``, ``close()``)."""

    def __init__(self, name: str, writer: LogWriter, open_stream: Callable[[int | None], Any]) -> None:
        super().__init__(name=f"ark-logs-{name}", daemon=True)
        self.writer, self.open_stream = writer, open_stream
        self._stream: Any = None
        self._closed = False

    def run(self) -> None:
        after = self.writer.last_ts  # lines up to here are already in the file (adoption)
        try:
            since = max(1, math.ceil(time.time() - after) + 1) if after else None
            self._stream = self.open_stream(since)
            if self._closed:
                return
            self.copy(self._stream.stream(4096, decode_content=True), after)
        except Exception:  # noqa: S110 - the stream ends with the container, the Pod or the API server
            pass
        finally:
            self.writer.close()

    def copy(self, chunks: Iterable[bytes], after: float | None) -> None:
        buf = b""
        for chunk in chunks:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                self._write(raw, after)
        if buf:
            self._write(buf, after)

    def _write(self, raw: bytes, after: float | None) -> None:
        stamp, _, text = raw.decode("utf-8", "replace").partition(" ")
        try:
            ts = parse_ts(stamp)
        except ValueError:
            ts, text = time.time(), raw.decode("utf-8", "replace")
        if after is None or format_ts(ts) > format_ts(after):
            self.writer.write(text, ts)

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            with suppress(Exception):
                self._stream.close()
