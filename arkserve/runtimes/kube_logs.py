"""Copies a Pod's output into ``<data_dir>/logs/<service>/<replica>.log`` (the other runtimes' layout).

One thread per Pod follows ``GET .../pods/<name>/log?follow=true&timestamps=true`` until the container
ends or the runtime closes. After an adoption it asks for the seconds since the file's last line and
skips lines up to that timestamp, compared as the file writes them, so no line is written twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from arkserve.logs import LogWriter
from arkserve.runtimes.follower import StreamFollower


class PodFollower(StreamFollower):
    """``open_stream(since_seconds)`` returns the raw response (a ``urllib3`` response: ``stream()``, ``close()``)."""

    def __init__(self, name: str, writer: LogWriter, open_stream: Callable[[int | None], Any]) -> None:
        super().__init__(name, writer)
        self.open_stream = open_stream

    def open(self, after: float | None) -> Any:
        return self.open_stream(max(1, math.ceil(time.time() - after) + 1) if after else None)

    def chunks(self, stream: Any) -> Iterable[bytes]:
        return stream.stream(4096, decode_content=True)  # type: ignore[no-any-return]
