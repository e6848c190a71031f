"""Following a replica's output into its log file, shared by the runtimes that read a log stream (docker, Kubernetes).

A :class:`StreamFollower` is one thread per replica: it opens the runtime's stream of timestamped lines (``open``,
from after the file's last line when the replica was adopted), copies each line into the
:class:`~arkserve.logs.LogWriter` and skips the lines already there, and ends with the stream or ``close()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from arkserve.logs import LogWriter, format_ts, parse_ts


class StreamFollower(threading.Thread):
    """Subclasses say how to open the stream (``open``) and read its chunks of bytes (``chunks``)."""

    def __init__(self, name: str, writer: LogWriter) -> None:
        super().__init__(name=f"ark-logs-{name}", daemon=True)
        self.writer = writer
        self._stream: Any = None
        self._closed = False

    def open(self, after: float | None) -> Any:
        """The runtime's stream of ``<RFC 3339 time> <line>`` lines, from ``after`` (seconds) when given."""
        raise NotImplementedError

    def chunks(self, stream: Any) -> Iterable[bytes]:
        return stream  # type: ignore[no-any-return]

    def run(self) -> None:
        after = self.writer.last_ts  # lines up to here are already in the file (adoption)
        try:
            self._stream = self.open(after if after else None)
            if self._closed:
                return
            self.copy(self.chunks(self._stream), after)
        except Exception:  # noqa: S110 - the stream ends with the replica, or its daemon / API server goes away
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
        # The file keeps microseconds (rounded by format_ts), the runtimes give nanoseconds: compare the two as the
        # file writes them, so a line already in the file (written before an adoption) is not written again.
        # (Rounding ts * 1e6 instead disagreed with format_ts now and then, for a nanosecond count ending near 500.)
        if after is None or format_ts(ts) > format_ts(after):
            self.writer.write(text, ts)

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            with suppress(Exception):
                self._stream.close()
