"""Request bodies that must be hashed before they may reach a replica.

Bytes are hashed as they arrive and kept in memory (the received pieces themselves, no copies)
up to a bound, then in an anonymous temp file; :meth:`Spool.read` hands them back in pieces so
the upstream write side can respect backpressure. Tiny pieces (a body sent in 2-byte chunks) are
gathered into one buffer instead: a bytes object and its list slot cost about 40 bytes each, so kept
one by one, 1 MiB of such a body held 25 MiB of a worker's memory.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from typing import IO

_SMALL = 4096  # pieces shorter than this are gathered ...
_GATHER = 64 * 1024  # ... into a buffer of up to this size


class Spool:
    __slots__ = ("_file", "_hash", "_mem_limit", "_pieces", "_pos", "_small", "size")

    def __init__(self, mem_limit: int) -> None:
        self._hash = hashlib.sha256()
        self._pieces: list[bytes] | None = []  # None once the body moved to a file
        self._small = bytearray()  # tiny pieces not yet in _pieces
        self._mem_limit = mem_limit
        self._file: IO[bytes] | None = None
        self._pos = 0
        self.size = 0

    @property
    def pieces(self) -> list[bytes] | None:
        """The body as received, in memory; None once it moved to a file."""
        if self._small:
            self._gathered()
        return self._pieces

    def _gathered(self) -> None:
        if self._pieces is not None:
            self._pieces.append(bytes(self._small))
        self._small = bytearray()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        pieces = self._pieces
        if pieces is not None:
            if self.size <= self._mem_limit:
                if len(data) >= _SMALL:
                    if self._small:
                        self._gathered()
                    pieces.append(data)
                else:
                    self._small += data
                    if len(self._small) >= _GATHER:
                        self._gathered()
                return
            self._file = tempfile.TemporaryFile(prefix="arkserve-body-")  # noqa: SIM115 - closed in close()
            self._file.writelines(pieces)
            self._file.write(self._small)
            self._pieces, self._small = None, bytearray()
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
        pieces = self.pieces
        if pieces is not None:
            if self._pos >= len(pieces):
                return b""
            self._pos += 1
            return pieces[self._pos - 1]
        assert self._file is not None
        return self._file.read(n)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pieces, self._small = None, bytearray()
