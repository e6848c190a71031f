"""The pieces of an upload in flight: the claim on a name, the one-shot :class:`Writer` and the resumable
session's :class:`Appender` (see :mod:`arkserve.storage.uploads` for how they fit together)."""

from __future__ import annotations

import json
import os
import stat
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arkserve.errors import Conflict, PermanentError
from arkserve.storage import paths
from arkserve.storage.disk import Entry
from arkserve.storage.paths import Parts
from arkserve.storage.space import space_errors
from arkserve.storage.writeback import Writeback

if TYPE_CHECKING:
    from arkserve.storage.uploads import Session, Uploads


class Claim:
    """A held claim on one target name (its ``flock``)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def read(self) -> dict[str, Any]:
        raw = os.pread(self.fd, 65536, 0)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, raw, 0)

    def release(self, *, remove: bool) -> None:
        if self.fd < 0:
            return
        if remove:
            with suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self.fd)
        self.fd = -1


def check_free(pfd: int, parts: Parts, overwrite: bool) -> None:
    st = paths.lstat_in(pfd, parts[-1])
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        raise Conflict(f'"{paths.join(parts)}" is a folder', code="IsAFolder")
    if not overwrite:
        raise Conflict(f'"{paths.join(parts)}" exists already (upload with overwrite to replace it)',
                       code="PathExists")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Writer:
    """One one-shot upload in flight: ``write`` chunks, then ``commit`` (or ``abort``)."""

    def __init__(self, up: Uploads, parts: Parts, claim: Claim, name: str, fd: int, size: int | None,
                 reserved: int, overwrite: bool) -> None:
        self.up, self.parts, self.claim, self.name, self.fd = up, parts, claim, name, fd
        self.size, self.reserved, self.overwrite, self.written = size, reserved, overwrite, 0
        self.writeback = Writeback(fd)  # the disk writes behind the head: the fsync of commit has little left

    def room_for(self, more: int) -> bool:
        """Whether ``more`` bytes fit in what the upload has reserved (always, when its size is known)."""
        return self.size is not None or self.written + more <= self.reserved

    @space_errors()
    def reserve(self, more: int) -> None:
        """Make room for ``more`` bytes of a body of unknown size (:meth:`Uploads.grow`, which takes the quota
        lock: call it from a worker thread; 413 ``QuotaExceeded`` when the quota has no room left)."""
        if not self.room_for(more):
            self.reserved = self.up.grow(self.claim, self.parts, self.written + more, self.reserved)

    @space_errors()
    def write(self, data: bytes) -> None:
        n = self.written + len(data)
        if self.size is not None and n > self.size:
            raise PermanentError(f"body is longer than the declared {self.size} bytes", code="SizeMismatch")
        self.reserve(len(data))
        _write_all(self.fd, data)
        self.written = n
        self.writeback.advance(n)

    def stored(self, n: int) -> None:
        """Count ``n`` bytes written to ``fd`` by the caller itself (a body spliced from the socket)."""
        if self.size is None or self.written + n > self.size:
            raise PermanentError(f"body is longer than the declared {self.size} bytes", code="SizeMismatch")
        self.written += n

    @space_errors()
    def commit(self) -> Entry:
        try:
            if self.size is not None and self.written != self.size:
                raise PermanentError(f"body ended after {self.written} of {self.size} bytes", code="SizeMismatch")
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            return self.up.install(self.name, self.parts, self.overwrite)
        finally:
            self.abort()

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with suppress(FileNotFoundError):
            (self.up.staging / "parts" / self.name).unlink()
        self.claim.release(remove=True)


class Appender:
    """One request appending to a resumable session; ``close`` keeps what was stored (and installs the file
    once complete)."""

    def __init__(self, up: Uploads, session: Session, parts: Parts, claim: Claim, fd: int) -> None:
        self.up, self.session, self.parts, self.claim, self.fd = up, session, parts, claim, fd
        self.offset = session.offset
        self.writeback = Writeback(fd, self.offset)

    @space_errors()
    def write(self, data: bytes) -> None:
        if self.offset + len(data) > self.session.size:
            raise PermanentError(f"upload would pass its declared size of {self.session.size} bytes",
                                 code="SizeMismatch")
        _write_all(self.fd, data)
        self.offset += len(data)
        self.writeback.advance(self.offset)

    def rewind(self, offset: int) -> None:
        """Drop what was stored past ``offset`` (a forged body, or one the full disk cut short): the session
        resumes from there, and the bytes give their room back."""
        os.ftruncate(self.fd, offset)
        self.offset = offset

    @space_errors()
    def close(self) -> Entry | None:
        """Make the stored bytes durable; install the file when all bytes are there (then the session ends)."""
        if self.fd < 0:
            return None
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            if self.offset < self.session.size:
                return None
            sid = self.session.id
            entry = self.up.install(f"{sid}.part", self.parts, self.session.overwrite)
            self.up.drop(sid)
            self.claim.release(remove=True)
            return entry
        finally:
            self.claim.release(remove=False)

    def state(self) -> dict[str, Any]:
        return {**asdict(self.session), "offset": self.offset}
