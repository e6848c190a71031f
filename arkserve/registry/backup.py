"""Copying the registry's images for ``arkserve backup``: ``<data_dir>/registry`` (Distribution's storage: the
blobs and the repositories' links to them) and ``registry-auth/`` (the token signing key and its certificate;
small, and a restore without it makes a new pair, which only ends the tokens docker holds now).

Safe while the registry runs. The copy holds ``run/registry.lock`` shared, so no garbage collection deletes
blobs meanwhile (one running makes the copy fail: ``RegistryBusy``), and it copies the repositories' links
before the blobs: Distribution writes a blob before any link to it, so every link copied finds its blob. A push
that ends during the copy may be missing from it, or leave blobs that nothing links (the next garbage
collection frees them); uploads still in progress (``_uploads``) are left out. A file deleted while being
copied (a tag deleted meanwhile) is left out too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from arkserve.errors import TemporaryError
from arkserve.registry import config
from arkserve.registry.tokens import key_dir

V2 = Path("docker/registry/v2")


def _copytree(src: Path, dst: Path, ignore: Callable[[str, list[str]], set[str]] | None = None) -> None:
    try:
        shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)
    except shutil.Error as exc:  # only files that went away while copying are fine to miss
        gone = [e for e in exc.args[0] if not os.path.lexists(e[0])]
        if len(gone) != len(exc.args[0]):
            raise


def copy(data_dir: Path, dest: Path) -> list[tuple[str, Path]]:
    """Copy the registry's storage to ``dest/registry`` and ``registry-auth/`` to ``dest/registry-auth``.

    Returns (name, path) for each one copied (none when the registry never ran)."""
    storage = config.storage_root(data_dir)
    auth = key_dir(data_dir)
    copied: list[tuple[str, Path]] = []
    if auth.is_dir():
        _copytree(auth, dest / "registry-auth")
        copied.append(("registry-auth", dest / "registry-auth"))
    if not storage.is_dir():
        return copied
    lock = config.take_lock(data_dir, exclusive=False)
    if lock is None:
        raise TemporaryError("a garbage collection of the registry is running (`arkserve image gc`); back up "
                             "again when it has ended", code="RegistryBusy")
    try:
        blobs = storage / V2 / "blobs"

        def links_first(directory: str, names: list[str]) -> set[str]:
            skip = {n for n in names if n == "_uploads"}
            return skip | ({"blobs"} if Path(directory) == blobs.parent else set())

        _copytree(storage, dest / "registry", ignore=links_first)
        if blobs.is_dir():
            _copytree(blobs, dest / "registry" / V2 / "blobs")
    finally:
        os.close(lock)
    copied.append(("registry", dest / "registry"))
    return copied
