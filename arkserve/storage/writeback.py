"""Writeback behind the write head: a big file being written is made durable while it is written, so that
the ``fsync`` at its end (which an atomic install needs: temp file + fsync + rename) has little left to do.

Without it the kernel keeps every written page dirty until the final ``fsync`` (or until its flusher wakes
up, 30 s later, or until a tenth of the memory is dirty) and that ``fsync`` then writes the whole file while
the writer waits: about 0.45 s per GiB here, as long as the transfer itself. :class:`Writeback` starts the
disk writing each completed window of :data:`WINDOW` bytes as soon as it is complete
(``sync_file_range(2)`` with ``SYNC_FILE_RANGE_WRITE``, which returns at once) and waits for the window
before it (``WAIT_BEFORE | WRITE | WAIT_AFTER``), so at most two windows are dirty at any time and the
writer never gets ahead of the disk by more than that (nor gets throttled by the kernel for a pile of dirty
pages). ``sync_file_range`` neither writes metadata nor flushes the disk's cache: the final ``fsync`` stays.

Linux only (through ``libc``: Python's ``os`` has no ``sync_file_range``); elsewhere, or on a file system
that refuses it, :class:`Writeback` does nothing and the final ``fsync`` writes everything as before.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

WINDOW = 32 << 20  # bytes per window; two windows (64 MiB) at most dirty per file being written
WAIT_BEFORE, WRITE, WAIT_AFTER = 1, 2, 4  # SYNC_FILE_RANGE_* of <linux/fs.h>


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _load()


class Writeback:
    """Tell it the write head's file offset as the writer advances (:meth:`advance`); it keeps the disk
    writing behind. ``start`` is where the writer begins (a resumed upload appends at its stored offset)."""

    def __init__(self, fd: int, start: int = 0, window: int | None = None) -> None:
        self.fd, self.window = fd, window or WINDOW
        self.started = start  # writeback started for [.., started)
        self.waited = start  # writeback finished for [.., waited)
        self.enabled = _SYNC_FILE_RANGE is not None

    def _call(self, offset: int, count: int, flags: int) -> None:
        assert _SYNC_FILE_RANGE is not None
        if _SYNC_FILE_RANGE(self.fd, offset, count, flags) != 0:
            self.enabled = False  # e.g. a file system without it: the final fsync does all of it

    def advance(self, head: int) -> None:
        """The file holds its bytes up to offset ``head``: start writing each complete window before it, and
        wait for the windows before that one."""
        if not self.enabled or head - self.started < self.window:
            return
        end = head - (head - self.started) % self.window
        self._call(self.started, end - self.started, WRITE)
        self.started = end
        if self.started - self.waited > self.window:  # keep one window in flight, wait for the older ones
            upto = self.started - self.window
            self._call(self.waited, upto - self.waited, WAIT_BEFORE | WRITE | WAIT_AFTER)
            self.waited = upto


def position(fd: int) -> int:
    """``fd``'s current offset (where the next write lands)."""
    return os.lseek(fd, 0, os.SEEK_CUR)
