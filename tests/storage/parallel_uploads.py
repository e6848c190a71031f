"""Uploads run at once, and the bytes a user's uploads hold at any moment (shared by the quota tests of the
API and of WebDAV)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

from tests.storage.conftest import DiskEnv

T = TypeVar("T")


def trickle(size: int, piece: int = 30_000, pause_s: float = 0.03) -> Iterator[bytes]:
    """``size`` bytes in pieces with a pause between them: a body whose length the client does not send
    (chunked), long enough for uploads started together to overlap."""
    while size > 0:
        yield b"t" * min(piece, size)
        size -= piece
        time.sleep(pause_s)


def _bytes_under(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def stored_bytes(env: DiskEnv, user: str = "alice") -> int:
    """Bytes of ``user``'s files plus their uploads' staged bytes (the disk first: a file installed meanwhile
    is missed, never counted twice)."""
    disks = env.api.data_dir / "disks"
    return _bytes_under(disks / user) + _bytes_under(disks / ".staging" / user / "parts")


def in_parallel(env: DiskEnv, calls: dict[str, Callable[[], T]]) -> tuple[dict[str, T | Exception], int]:
    """Run ``calls`` at once, each in a thread; returns what each returned (or raised) and the most bytes
    :func:`stored_bytes` saw meanwhile."""
    results: dict[str, T | Exception] = {}

    def run(name: str, call: Callable[[], T]) -> None:
        try:
            results[name] = call()
        except Exception as exc:  # the caller looks at what each upload met
            results[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, stored_bytes(env))
        time.sleep(0.005)
    for t in threads:
        t.join()
    return results, max(peak, stored_bytes(env))
