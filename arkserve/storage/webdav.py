"""WebDAV on the network disk: a wsgidav provider whose root is the authenticated user's own disk.

wsgidav speaks the protocol (PROPFIND, PUT, MOVE, COPY, LOCK, ...); this module only maps its
resources onto :class:`~arkserve.storage.disk.Disk` and :class:`~arkserve.storage.uploads.Uploads`,
so WebDAV gets exactly the API's rules: checked paths (400), no symlink ever followed, atomic
quota-checked writes (507 Insufficient Storage, the WebDAV quota answer, with used/limit in the body),
one writer per name (409); a full platform disk, or its free-space floor, is 507 as well. Who the user is
comes from the domain controller (``environ["arkserve.disk_user"]``), which the API layer supplies along with
``uploads_for``.

wsgidav keys its locks and dead properties by a resource's reference URL; ours starts with the user
(``/<user>/<path>``), so one user's ``LOCK /`` or ``PROPPATCH`` never touches another user's disk. Both live in
the API process's memory, bounded per user (``arkserve.storage.dav_state``). LOCK on a name that does not exist
creates the empty file first (RFC 4918 9.10.4; atomic and quota-checked like any upload), so the lock is always on
a real file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote

from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_NOT_FOUND,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from arkserve.errors import ArkserveError
from arkserve.storage import paths
from arkserve.storage.disk import Entry
from arkserve.storage.staging import Writer
from arkserve.storage.uploads import Uploads

USER_KEY = "arkserve.disk_user"
_STATUS = {400: HTTP_BAD_REQUEST, 403: HTTP_FORBIDDEN, 404: HTTP_NOT_FOUND, 409: HTTP_CONFLICT,
           413: HTTP_INSUFFICIENT_STORAGE, 507: HTTP_INSUFFICIENT_STORAGE}


@contextmanager
def dav_errors() -> Iterator[None]:
    """Our errors as DAV errors (status + the message as the body's context)."""
    try:
        yield
    except ArkserveError as exc:
        raise DAVError(_STATUS.get(exc.status, HTTP_BAD_REQUEST), context_info=exc.message) from None


def _rel(path: str) -> str:
    return path.strip("/")


def _user(environ: dict[str, Any]) -> str:
    user = environ.get(USER_KEY)
    if not user:
        raise DAVError(HTTP_FORBIDDEN, context_info="not authenticated")
    return str(user)


class _Mixin:
    provider: DiskProvider
    environ: dict[str, Any]
    path: str

    def get_ref_url(self) -> str:
        # wsgidav keys locks and dead properties by this URL: one namespace per user, or every user's "/x.txt"
        # would share them (one user's LOCK / blocking every user's writes)
        own: str = super().get_ref_url()  # type: ignore[misc]
        return "/" + quote(_user(self.environ), safe="") + own

    def _move_dead_properties(self, dest_path: str) -> None:
        """Dead properties follow a moved file or folder (wsgidav leaves them at the old URL)."""
        manager = self.provider.prop_manager
        if manager is not None:
            dest = "/" + quote(_user(self.environ), safe="") + quote(dest_path)
            manager.move_properties(self.get_ref_url(), dest, with_children=True)

    @property
    def uploads(self) -> Uploads:
        return self.provider.uploads(self.environ)


class DiskFile(_Mixin, DAVNonCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], entry: Entry | None) -> None:
        super().__init__(path, environ)
        self.entry = entry  # None: about to be created by a PUT
        self.writer: Writer | None = None

    def get_content_length(self) -> int:
        return self.entry.size if self.entry else 0

    def get_content_type(self) -> str:
        import mimetypes

        return mimetypes.guess_type(self.path)[0] or "application/octet-stream"

    def get_creation_date(self) -> float | None:
        return self.entry.modified if self.entry else None

    def get_last_modified(self) -> float | None:
        return self.entry.modified if self.entry else None

    def get_display_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def get_etag(self) -> str | None:
        return f"{int(self.entry.modified * 1e6):x}-{self.entry.size:x}" if self.entry else None

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> Any:
        with dav_errors():
            fd, _st = self.uploads.disk.open(_rel(self.path))
        return os.fdopen(fd, "rb", buffering=1 << 20)

    def begin_write(self, *, content_type: str | None = None) -> Any:
        raw = self.environ.get("CONTENT_LENGTH") or ""
        size = int(raw) if raw.isdigit() else None
        with dav_errors():
            self.writer = self.uploads.begin(_rel(self.path), size, overwrite=True)
        return _WriteStream(self.writer)

    def end_write(self, *, with_errors: bool) -> None:
        if self.writer is not None:
            if with_errors:
                self.writer.abort()
            else:
                with dav_errors():
                    self.entry = self.writer.commit()
            self.writer = None

    def delete(self) -> None:
        with dav_errors():
            self.uploads.disk.delete(_rel(self.path))
        self.remove_all_properties(recursive=True)
        self.remove_all_locks(recursive=True)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        if is_move:
            self.move_recursive(dest_path)
            return
        with dav_errors():
            fd, st = self.uploads.disk.open(_rel(self.path))
            with os.fdopen(fd, "rb") as src:
                writer = self.uploads.begin(_rel(dest_path), st.st_size, overwrite=True)
                try:
                    while data := src.read(1 << 20):
                        writer.write(data)
                    writer.commit()
                finally:
                    writer.abort()

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> None:
        with dav_errors():
            self.uploads.disk.move(_rel(self.path), _rel(dest_path), overwrite=True)
        self._move_dead_properties(dest_path)


class _WriteStream:
    """What wsgidav writes a PUT body into; errors become DAV errors (507 over quota)."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def write(self, data: bytes) -> None:
        with dav_errors():
            self.writer.write(data)

    def close(self) -> None:
        pass  # end_write() commits or aborts


class DiskFolder(_Mixin, DAVCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], entry: Entry) -> None:
        super().__init__(path, environ)
        self.entry = entry

    def get_display_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def get_last_modified(self) -> float:
        return self.entry.modified

    def get_creation_date(self) -> float:
        return self.entry.modified

    def get_etag(self) -> None:
        return None

    def get_used_bytes(self) -> int:
        return self.uploads.disk.used()

    def get_available_bytes(self) -> int:
        return max(0, self.uploads.disk.limit - self.uploads.disk.used())

    def get_member_names(self) -> list[str]:
        with dav_errors():
            return [e.name for e in self.uploads.disk.list(_rel(self.path))  # what a path can reach
                    if e.type in ("file", "folder") and not e.escaped]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(self.path.rstrip("/") + "/" + name, self.environ)

    def create_empty_resource(self, name: str) -> DiskFile:
        path = self.path.rstrip("/") + "/" + name
        with dav_errors():
            paths.split(_rel(path))
        new = DiskFile(path, self.environ, None)
        if self.environ.get("REQUEST_METHOD") != "LOCK":
            return new  # a PUT: nothing is created yet, the PUT writes the file atomically under its name
        # LOCK of an unmapped URL creates an empty file (RFC 4918 9.10.4), so the lock wsgidav takes next is on a
        # real file; first the lock check a write gets (423, nothing created, no lock taken)
        manager = self.provider.lock_manager
        if manager is not None:
            manager.check_write_permission(url=new.get_ref_url(), depth="0",
                                           token_list=self.environ.get("wsgidav.ifLockTokenList") or [],
                                           principal=self.environ.get("wsgidav.user_name"))
        with dav_errors():
            writer = self.uploads.begin(_rel(path), 0)  # 409 if it appeared meanwhile; quota-checked
            try:
                new.entry = writer.commit()
            finally:
                writer.abort()
        return new

    def create_collection(self, name: str) -> None:
        with dav_errors():
            self.uploads.disk.mkdir(_rel(self.path + "/" + name))

    def delete(self) -> None:
        with dav_errors():
            self.uploads.disk.delete(_rel(self.path), recursive=True)
        self.remove_all_properties(recursive=True)
        self.remove_all_locks(recursive=True)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        with dav_errors():
            if is_move:
                self.uploads.disk.move(_rel(self.path), _rel(dest_path), overwrite=True)
            else:
                self.uploads.disk.mkdir(_rel(dest_path))

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> None:
        with dav_errors():
            self.uploads.disk.move(_rel(self.path), _rel(dest_path), overwrite=True)
        self._move_dead_properties(dest_path)


class DiskProvider(DAVProvider):  # type: ignore[misc]
    """Serves ``/`` as the root of the authenticated user's disk."""

    def __init__(self, uploads_for: Callable[[str], Uploads]) -> None:
        super().__init__()
        self._uploads_for = uploads_for

    def uploads(self, environ: dict[str, Any]) -> Uploads:
        cached: Uploads | None = environ.get("arkserve.disk_uploads")
        if cached is None:
            user = environ.get(USER_KEY)
            if not user:
                raise DAVError(HTTP_FORBIDDEN, context_info="not authenticated")
            cached = environ["arkserve.disk_uploads"] = self._uploads_for(user)
        return cached

    def ref_url_to_path(self, ref_url: str) -> str:
        """The inverse of :meth:`_Mixin.get_ref_url`: the path, without the leading user segment."""
        return "/" + unquote(ref_url.lstrip("/").partition("/")[2]).lstrip("/")

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        self._count_get_resource_inst += 1
        with dav_errors():
            rel = _rel(path)
            paths.split(rel)
            try:
                entry = self.uploads(environ).disk.stat(rel)
            except ArkserveError as exc:
                if exc.status == 404:
                    return None
                raise
        if entry.type == "folder":
            return DiskFolder(path, environ, entry)
        if entry.type == "file":
            return DiskFile(path, environ, entry)
        return None  # links and other kinds are listed by the API, never served

