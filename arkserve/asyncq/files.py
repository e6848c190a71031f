"""Request and result bodies too large for a store row: files under ``<data_dir>/async/``, written to a temp
name, fsynced, renamed and the directory fsynced, so a body is durable before the row that names it commits.
A file whose row never committed is removed at once; one left by a crash in between is found by :func:`older`."""

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


def older(directory: Path, before: float) -> list[str]:
    """Names of the files last written before ``before`` (a time); a temp file left that old (a crash while it
    was written) is removed here."""
    out = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime >= before:
                continue
        except FileNotFoundError:
            continue
        if entry.name.startswith("."):
            if entry.name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            continue
        out.append(entry.name)
    return out
