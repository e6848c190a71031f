"""Request bodies that must be hashed before they may reach a replica.

Bytes are hashed as they arrive and kept in memory (the received pieces themselves, no copies)
up to a bound, then in an anonymous temp file; :meth:`Spool.read` hands them back in pieces so
the upstream write side can respect backpressure.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from typing import IO


class Spool:
    __slots__ = ("_file", "_hash", "_mem_limit", "_pos", "pieces", "size")

    def __init__(self, mem_limit: int) -> None:
        self._hash = hashlib.sha256()
        self.pieces: list[bytes] | None = []  # None once the body moved to a file
        self._mem_limit = mem_limit
        self._file: IO[bytes] | None = None
        self._pos = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        pieces = self.pieces
        if pieces is not None:
            if self.size <= self._mem_limit:
                pieces.append(data)
                return
            self._file = tempfile.TemporaryFile(prefix="arkserve-body-")  # noqa: SIM115 - closed in close()
            self._file.writelines(pieces)
            self.pieces = None
        assert self._file is not None
        self._file.write(data)

    def content_hash(self) -> str:
        return base64.b64encode(self._hash.digest()).decode("ascii")

    def rewind(self) -> None:
        self._pos = 0
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)

    def read(self, n: int) -> bytes:
        """The next piece (at most ``n`` bytes from the file; a whole received piece from memory)."""
        if self.pieces is not None:
            if self._pos >= len(self.pieces):
                return b""
            self._pos += 1
            return self.pieces[self._pos - 1]
        assert self._file is not None
        return self._file.read(n)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.pieces = None
