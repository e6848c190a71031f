"""Writing to the network disk: atomic, quota-checked, one writer per name, resumable.

Bytes go to a staging file under ``<data_dir>/disks/.staging/<username>/`` (the same file system as the
disks; usernames start with a letter, so no user owns ``.staging``), are fsync'ed, and are renamed onto
the real name, whose folder is then fsync'ed: a crash never leaves a half file under a real name.

A **claim** file per target name (``claims/<sha256 of the path>``) makes writers of one name exclusive:
whoever holds its ``flock`` writes; a second writer gets 409 ``UploadInProgress`` at once. A claim also
records the bytes it reserves, so the quota check (under a per-user lock) counts the files on the disk
plus every upload in flight: two uploads cannot together pass a quota each fits alone. An upload onto an
existing file needs room only for the difference; the claim records that credit, and the install checks the
quota again if the old file shrank or went (moved away, deleted) meanwhile. A body of unknown
size (no ``Content-Length``) reserves as it streams: a step ahead of the bytes stored (:data:`GROW_STEP`, or a
quarter of the room left), checked again under the lock each time the body reaches it. A one-shot upload's
claim lives while its lock is held; a resumable session's while the session has not expired.

Each reservation also checks the free-space floor (``min_free``, :func:`arkserve.storage.space.check_floor`), and
a full file system is 507 ``InsufficientStorage`` (:func:`arkserve.storage.space.space_errors`), never a half file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arkserve.errors import Conflict, NotFound, PermanentError
from arkserve.storage import paths
from arkserve.storage.disk import Disk, Entry, QuotaExceeded, quota_message
from arkserve.storage.paths import Parts
from arkserve.storage.space import check_floor, space_errors
from arkserve.storage.staging import Appender, Claim, Writer, check_free

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
GROW_STEP = 8 << 20  # how far ahead of its stored bytes a body of unknown size reserves (the quota lock per step)


def staging_dir(data_dir: Path, username: str) -> Path:
    return data_dir / "disks" / ".staging" / username


@dataclass(frozen=True)
class Session:
    id: str
    path: str
    size: int
    offset: int
    overwrite: bool
    created_at: float
    expires_at: float


class Uploads:
    """Uploads into one user's :class:`Disk`."""

    @space_errors()
    def __init__(self, disk: Disk, staging: Path, *, session_ttl_s: float = 86400.0, min_free: int = 0) -> None:
        self.disk = disk
        self.staging = staging
        self.ttl = session_ttl_s
        self.min_free = min_free  # bytes an upload must leave free on the file system (0: no floor)
        for sub in ("claims", "parts", "sessions"):
            (staging / sub).mkdir(parents=True, exist_ok=True)

    # -- claims and the quota ------------------------------------------------------------------------------
    def _claim_path(self, parts: Parts) -> Path:
        return self.staging / "claims" / hashlib.sha256(paths.join(parts).encode()).hexdigest()

    def _claim(self, parts: Parts) -> Claim:
        path = self._claim_path(parts)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return Claim(path, fd)
            except BlockingIOError:
                os.close(fd)
                raise Conflict(f'an upload to "{paths.join(parts)}" is in progress', code="UploadInProgress") from None
            except FileNotFoundError:
                pass  # its holder removed it after we opened it: take a fresh one
            os.close(fd)

    def _live_session(self, data: dict[str, Any]) -> bool:
        if data.get("kind") != "session" or not _ID_RE.match(str(data.get("id", ""))):
            return False
        meta = self._meta(str(data["id"]))
        return meta is not None and meta["expires_at"] > time.time()

    def reserved(self, *, exclude: Path | None = None) -> int:
        """Bytes reserved by uploads in flight (held one-shot claims and live sessions)."""
        total = 0
        for path in (self.staging / "claims").iterdir():
            if path == exclude:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                claim = Claim(path, fd)
                data = claim.read()
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    held = False
                except BlockingIOError:
                    held = True
                if held or self._live_session(data):
                    total += int(data.get("size") or 0)
            finally:
                os.close(fd)
        return total

    @contextmanager
    def _quota_lock(self) -> Iterator[None]:
        fd = os.open(self.staging / "quota.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def usage(self) -> tuple[int, int]:
        """(bytes stored, bytes reserved by uploads in flight)."""
        return self.disk.used(), self.reserved()

    def _reserve(self, claim: Claim, parts: Parts, size: int, data: dict[str, Any], *, ahead: bool = False,
                 held: int = 0) -> int:
        """Check the quota for ``size`` bytes and record them as the claim's reservation; returns the bytes
        reserved. ``ahead`` (a body of unknown size, ``size`` its bytes so far): a step more while there is
        room (:data:`GROW_STEP`, at most a quarter of what is left), so the body comes back once per step.
        The bytes added to what the claim ``held`` must also leave the free-space floor (507 otherwise).
        The file the upload replaces is credited (its bytes go when it is installed); the claim records that
        ``credit`` for :meth:`install` to hold it to."""
        with self._quota_lock():
            old = self._existing_size(parts)
            used = self.disk.used() + self.reserved(exclude=claim.path) - old
            if used + size > self.disk.limit:
                raise QuotaExceeded(quota_message(used, size, self.disk.limit),
                                    details={"used": used, "limit": self.disk.limit, "needed": size})
            if ahead:
                size += min(GROW_STEP, (self.disk.limit - used - size) // 4)
            check_floor(self.staging, self.min_free, size - held)
            claim.write({**data, "size": size, "credit": old, "path": paths.join(parts)})
            return size

    def grow(self, claim: Claim, parts: Parts, stored: int, held: int = 0) -> int:
        """Reserve room for ``stored`` bytes of a one-shot body of unknown size, and a step beyond (413
        ``QuotaExceeded`` once the quota, counting every other upload in flight, has none; 507 past the
        free-space floor); returns the bytes now reserved (``held``: those reserved before)."""
        return self._reserve(claim, parts, stored, {"kind": "put"}, ahead=True, held=held)

    def _existing_size(self, parts: Parts) -> int:
        with suppress(PermanentError):
            entry = self.disk.stat(paths.join(parts))
            return entry.size if entry.type == "file" else 0
        return 0

    def _check_target(self, parts: Parts, overwrite: bool) -> None:
        if not parts:
            raise paths.BadPath("the root of the disk is a folder, not a file")
        with paths.opened_root(self.disk.root) as rfd, paths.opened_dir(rfd, parts[:-1], create=True) as pfd:
            check_free(pfd, parts, overwrite)

    # -- one-shot uploads ----------------------------------------------------------------------------------
    @space_errors()
    def begin(self, rel: str, size: int | None, *, overwrite: bool = False) -> Writer:
        """Start writing ``rel`` (``size`` bytes, or unknown): quota and name checked, nothing stored yet."""
        parts = paths.split(rel)
        self._check_target(parts, overwrite)
        claim = self._claim(parts)
        try:
            if self._live_session(claim.read()):
                raise Conflict(f'a resumable upload to "{rel}" is in progress', code="UploadInProgress")
            reserved = self._reserve(claim, parts, size or 0, {"kind": "put"}, ahead=size is None)
            name = f"{secrets.token_hex(16)}.part"
            fd = os.open(self.staging / "parts" / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except BaseException:
            claim.release(remove=False)
            raise
        return Writer(self, parts, claim, name, fd, size, reserved, overwrite)

    @space_errors()
    def install(self, part_name: str, parts: Parts, overwrite: bool) -> Entry:
        """Rename a complete, fsync'ed staging file onto its real name.

        The quota check counted on the bytes of the file this replaces (the claim's ``credit``). When that file
        shrank or went (moved away, deleted) since, or is moved away between the look and the rename, the quota
        is checked again without it: 413 ``QuotaExceeded``, the staging file left where it was (a resumable
        session keeps its bytes: free some room and send its last ``PATCH`` again)."""
        claim_path = self._claim_path(parts)
        credit = _credit(claim_path)
        with paths.opened_root(self.disk.root) as rfd, paths.opened_dir(rfd, parts[:-1], create=True) as pfd, \
                paths.opened_root(self.staging / "parts") as sfd:
            check_free(pfd, parts, overwrite)
            old = paths.lstat_in(pfd, parts[-1])
            staged = os.stat(part_name, dir_fd=sfd)
            size = staged.st_size
            ofd, cur, replaced = -1, None, 0
            if old is not None and stat.S_ISREG(old.st_mode):
                if credit:  # held open: what the rename did to it shows in its link count
                    ofd, cur = _opened(pfd, parts[-1])
                replaced = cur.st_size if cur is not None else (0 if credit else old.st_size)
            try:
                if replaced < credit:  # less goes than was credited: the quota without the difference
                    self._check_again(parts, claim_path, size, replaced)
                os.rename(part_name, parts[-1], src_dir_fd=sfd, dst_dir_fd=pfd)
                if cur is not None and os.fstat(ofd).st_nlink >= cur.st_nlink:
                    replaced = 0  # it was moved away before the rename, which so replaced nothing of it
                    try:
                        self._check_again(parts, claim_path, size, 0)
                    except QuotaExceeded:
                        _take_back(pfd, sfd, parts[-1], part_name, staged)
                        raise
            finally:
                if ofd >= 0:
                    os.close(ofd)
            self.disk.changed(size - replaced)
            os.fsync(pfd)
        return self.disk.stat(paths.join(parts))

    def _check_again(self, parts: Parts, claim_path: Path, size: int, replaced: int) -> None:
        """At install: 413 unless ``size`` bytes fit, the file at the name now being ``replaced`` bytes."""
        with self._quota_lock():
            used = self.disk.used() + self.reserved(exclude=claim_path) - replaced
            if used + size > self.disk.limit:
                raise QuotaExceeded(
                    f"{quota_message(used, size, self.disk.limit)}: \"{paths.join(parts)}\", whose bytes the upload "
                    "was to replace, shrank or went away (moved or deleted) since it began; free some room and "
                    "try again (a resumable upload keeps its stored bytes)",
                    details={"used": used, "limit": self.disk.limit, "needed": size})

    # -- resumable sessions --------------------------------------------------------------------------------
    def _meta(self, sid: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.staging / "sessions" / f"{sid}.json").read_text())
            return data
        except (FileNotFoundError, ValueError):
            return None

    def _session(self, sid: str, meta: dict[str, Any]) -> Session:
        try:
            offset = os.stat(self.staging / "parts" / f"{sid}.part").st_size
        except FileNotFoundError:
            offset = 0
        return Session(sid, meta["path"], meta["size"], offset, meta["overwrite"], meta["created_at"],
                       meta["expires_at"])

    def _write_meta(self, sid: str, meta: dict[str, Any]) -> None:
        tmp = self.staging / "sessions" / f"{sid}.tmp"
        try:
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, self.staging / "sessions" / f"{sid}.json")
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk: no half-written meta left behind
            raise

    def drop(self, sid: str) -> None:
        for p in (self.staging / "parts" / f"{sid}.part", self.staging / "sessions" / f"{sid}.json"):
            with suppress(FileNotFoundError):
                p.unlink()

    def sweep(self) -> None:
        """Forget sessions past their expiry (their staged bytes with them)."""
        for meta_path in (self.staging / "sessions").glob("*.json"):
            meta = self._meta(meta_path.stem)
            if meta is None or meta["expires_at"] <= time.time():
                self.drop(meta_path.stem)

    @space_errors()
    def create_session(self, rel: str, size: int, *, overwrite: bool = False) -> Session:
        parts = paths.split(rel)
        self._check_target(parts, overwrite)
        self.sweep()
        claim = self._claim(parts)
        try:
            if self._live_session(claim.read()):
                raise Conflict(f'a resumable upload to "{rel}" is in progress', code="UploadInProgress")
            sid, t = secrets.token_hex(16), time.time()
            self._reserve(claim, parts, size, {"kind": "session", "id": sid})
            try:
                (self.staging / "parts" / f"{sid}.part").touch()
                self._write_meta(sid, {"path": paths.join(parts), "size": size, "overwrite": overwrite,
                                       "created_at": t, "expires_at": t + self.ttl})
            except BaseException:
                self.drop(sid)
                raise
        finally:
            claim.release(remove=False)
        return self.get_session(sid)

    def get_session(self, sid: str) -> Session:
        meta = self._meta(sid) if _ID_RE.match(sid) else None
        if meta is None or meta["expires_at"] <= time.time():
            raise NotFound(f'upload session "{sid}" not found (finished, cancelled or expired)',
                           code="UploadNotFound")
        return self._session(sid, meta)

    def list_sessions(self) -> list[Session]:
        self.sweep()
        out = []
        for p in (self.staging / "sessions").glob("*.json"):
            meta = self._meta(p.stem)
            if meta is not None:
                out.append(self._session(p.stem, meta))
        return sorted(out, key=lambda s: s.created_at)

    @space_errors()
    def resume(self, sid: str, offset: int, length: int | None = None) -> Appender:
        """Append to a session from ``offset``, which must be its stored offset (409 ``OffsetMismatch``);
        ``length`` bytes (``None``: up to the session's size) must leave the free-space floor (507 otherwise)."""
        session = self.get_session(sid)
        parts = paths.split(session.path)
        claim = self._claim(parts)
        try:
            if claim.read().get("id") != sid:
                raise NotFound(f'upload session "{sid}" not found', code="UploadNotFound")
            session = self.get_session(sid)
            if offset != session.offset:
                raise Conflict(f"offset {offset} is not the stored offset {session.offset}: resume from there",
                               code="OffsetMismatch", details={"offset": session.offset})
            left = session.size - session.offset
            check_floor(self.staging, self.min_free, left if length is None else min(length, left))
            fd = os.open(self.staging / "parts" / f"{sid}.part", os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            meta = self._meta(sid)
            assert meta is not None
            self._write_meta(sid, {**meta, "expires_at": time.time() + self.ttl})
        except BaseException:
            claim.release(remove=False)
            raise
        return Appender(self, session, parts, claim, fd)

    def cancel(self, sid: str) -> None:
        session = self.get_session(sid)
        claim = self._claim(paths.split(session.path))
        try:
            self.drop(sid)
        finally:
            claim.release(remove=True)


def _credit(claim_path: Path) -> int:
    """The bytes of the replaced file a held claim's reservation counted on (0 without a record)."""
    try:
        data = json.loads(claim_path.read_bytes())
    except (FileNotFoundError, ValueError):
        return 0
    return int(data.get("credit") or 0) if isinstance(data, dict) else 0


def _opened(pfd: int, name: str) -> tuple[int, os.stat_result | None]:
    """A descriptor and the stat of the regular file at ``name`` ((-1, None) when none is there now): its
    link count tells after the rename whether the rename replaced it or it lives on under another name."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=pfd)
    except OSError:
        return -1, None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return -1, None
    return fd, st


def _take_back(pfd: int, sfd: int, name: str, part_name: str, staged: os.stat_result) -> None:
    """Move a file just installed back to staging, if it is still ours at ``name``."""
    now = paths.lstat_in(pfd, name)
    if now is not None and (now.st_dev, now.st_ino) == (staged.st_dev, staged.st_ino):
        os.rename(name, part_name, src_dir_fd=pfd, dst_dir_fd=sfd)
        os.fsync(pfd)
