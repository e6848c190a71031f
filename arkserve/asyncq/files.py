"""Request and result bodies too large for a store row: files under ``<data_dir>/async/``, written to a temp
name, fsynced, renamed and the directory fsynced, so a body is durable before the row that names it commits."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import IO


def body_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "async"


def write(directory: Path, name: str, src: bytes | IO[bytes]) -> str:
    """Store ``src`` as ``directory/name`` durably; returns ``name`` (what the row records)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        if isinstance(src, bytes):
            fh.write(src)
        else:
            shutil.copyfileobj(src, fh, 1024 * 1024)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / name)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return name


def read(directory: Path, name: str) -> bytes:
    return (directory / name).read_bytes()


def open_body(directory: Path, name: str) -> IO[bytes]:
    return open(directory / name, "rb")  # the caller closes it


def remove(directory: Path, names: list[str]) -> None:
    for name in names:
        if "/" not in name and not name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
