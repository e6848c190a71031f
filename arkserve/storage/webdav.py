"""WebDAV on the network disk: a wsgidav provider whose root is the authenticated user's own disk.

wsgidav speaks the protocol (PROPFIND, PUT, MOVE, COPY, LOCK, ...); this module only maps its
resources onto :class:`~arkserve.storage.disk.Disk` and :class:`~arkserve.storage.uploads.Uploads`,
so WebDAV gets exactly the API's rules: checked paths (400), no symlink ever followed, atomic
quota-checked writes (507 Insufficient Storage, the WebDAV quota answer, with used/limit in the body),
one writer per name (409); a full platform disk, or its free-space floor, is 507 as well. Who the user is
comes from the domain controller (``environ["arkserve.disk_user"]``), which the API layer supplies along with
``uploads_for``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


class _Mixin:
    provider: DiskProvider
    environ: dict[str, Any]
    path: str

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
        # Nothing is created yet: the PUT that follows writes the file atomically under its name.
        with dav_errors():
            paths.split(_rel(self.path + "/" + name))
        return DiskFile(self.path.rstrip("/") + "/" + name, self.environ, None)

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
