"""``arkserve restore SRC``: put an ``arkserve backup`` back into a data dir, so that it holds the backup's state.

Copying a backup's ``arkserve.db`` over an old data dir by hand does not restore it. Even a clean stop used to
leave ``arkserve.db-wal`` (the write-ahead log) beside the store, and SQLite replays it onto the copied file at
the next open. That gives back the state *after* the backup, or a corrupt store when the log comes from another
store (hostile review rev4-pg, finding 1). This command refuses while ``arkserve up`` runs for the data dir (it
takes ``up``'s own lock, ``run/up.lock``, for its whole run) or while another process has the store open. It then
removes the log (``-wal``, ``-shm``) and the last run's ``run/`` files, and copies in what ``arkserve backup``
wrote (the store, ``master.key``, ``admin-password``, ``config.yaml``, ``tls/``, ``registry-auth/``,
``registry/``, plus ``disks/`` and ``models/`` when they were added to the backup) with their modes. On a
PostgreSQL store it restores these files only: the database comes back with ``pg_restore``
(docs/operations.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import click

from arkserve.cli.daemon import BACKUP_FILES, read_run
from arkserve.cli.output import fail
from arkserve.cli.server import _hold_data_dir, _settings, store_label, store_options

BACKUP_DIRS = ("tls", "registry-auth", "registry", "disks", "models")  # disks/, models/: rsynced in (the docs)


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _is_store(path: Path) -> bool:
    """Whether ``path`` is an arkserve SQLite store (read without writing anything beside it)."""
    try:
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return bool(db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1)
        finally:
            db.close()
    except sqlite3.Error:
        return False


def _holders(files: list[Path]) -> list[int]:
    """The pids of the processes (this user may see) that have one of ``files`` open."""
    wanted = {str(f) for f in files}
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return pids


@click.command("restore", help="Put an `arkserve backup` SRC back into the data dir (stopped: not while "
                               "`arkserve up` runs): the SQLite store, the master key, the local CA, the config, "
                               "the registry's images. The store's old write-ahead log goes first. A PostgreSQL "
                               "store is restored with pg_restore (docs/operations.md); this restores its files.")
@store_options
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore(data_dir: str | None, database_url: str | None, src: Path) -> None:
    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    target = _sqlite_path(s.database_url)
    names = {p.name for p in src.iterdir()}
    known = [n for n in (*BACKUP_FILES, *BACKUP_DIRS) if n in names]
    store_name = target.name if target is not None else "arkserve.db"
    if store_name in names and not _is_store(src / store_name):
        fail(f"{src / store_name} is not an arkserve SQLite store; is {src} a backup made by `arkserve backup`?")
    if not known and store_name not in names:
        fail(f"{src} is not a backup made by `arkserve backup` (it holds none of {store_name}, "
             f"{', '.join((*BACKUP_FILES, *BACKUP_DIRS))})")
    if target is not None and store_name not in names:
        fail(f"{src} has no {store_name}, so it is not a backup of an SQLite store (`arkserve backup` writes one); "
             "for a PostgreSQL deployment pass --database-url or ARKSERVE_DATABASE_URL")
    if s.data_dir.resolve() == src.resolve():
        fail(f"{src} is the data dir itself")
    if not s.data_dir.exists():
        s.data_dir.mkdir(parents=True, mode=0o700)
    _hold_data_dir(s)  # `up`'s lock, held until this command ends: refused while `up` runs, no `up` starts meanwhile
    run = read_run(s.data_dir)
    if run is not None:
        fail(f"arkserve is running for {s.data_dir} (pid {run['pid']}): stop it with `arkserve down` first")
    if target is not None:
        log = [target.with_name(target.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
        busy = _holders([target, *log])
        if busy:
            fail(f"the store {target} is open in process {', '.join(map(str, busy))}: stop every arkserve part "
                 "using it first")
        for stale in log:  # the old write-ahead log would be replayed onto the restored store
            if stale.exists():
                stale.unlink()
                click.echo(f"removed    {stale}")
    for leftover in sorted((s.data_dir / "run").iterdir()):  # the last run's files (locks stay: one is held)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        elif leftover.suffix != ".lock":
            leftover.unlink()
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):  # a log beside the backup's store (opened since) belongs to it
            if (src / (store_name + suffix)).exists():
                part = target.with_name(target.name + suffix)
                shutil.copy2(src / (store_name + suffix), part.with_name(part.name + ".restoring"))
                os.replace(part.with_name(part.name + ".restoring"), part)
        click.echo(f"{'store':<10} {target}")
    else:
        click.echo(f"{'store':<10} not restored: it is PostgreSQL ({store_label(s.database_url)}); restore the "
                   "database with pg_restore (docs/operations.md)"
                   + (f"; {store_name} in the backup is left out" if store_name in names else ""))
    for name in BACKUP_FILES:
        if name in names:
            shutil.copy2(src / name, s.data_dir / name)
            click.echo(f"{name:<10} {s.data_dir / name}")
    for name in BACKUP_DIRS:
        if name in names:
            if (s.data_dir / name).exists():
                shutil.rmtree(s.data_dir / name)
            shutil.copytree(src / name, s.data_dir / name, symlinks=True)
            click.echo(f"{name:<10} {s.data_dir / name}")
    left = sorted(names - {*known, store_name, store_name + "-wal", store_name + "-shm"})
    if left:
        click.echo(f"Not restored (not part of a backup): {', '.join(left)}.")
    click.echo(f"Restored {src} into {s.data_dir}. Start it with `arkserve up`; the replicas are created anew.")
