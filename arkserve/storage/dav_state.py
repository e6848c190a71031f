"""WebDAV's state per user, kept in the API process's memory (lost when it restarts): the locks (:class:`UserLocks`)
and the dead properties PROPPATCH sets (:class:`DeadProperties`). wsgidav keys both by a resource's reference URL,
which ours starts with the user (``/<user>/<path>``, ``storage/webdav.py``); both are bounded per user: at most
:data:`MAX_LOCKS` live locks, :data:`MAX_DEAD_PROPS` dead properties and :data:`MAX_DEAD_PROP_BYTES` of them (507
past a bound), so one user can neither block nor fill another's share."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wsgidav.dav_error import HTTP_INSUFFICIENT_STORAGE, DAVError
from wsgidav.lock_man.lock_storage import LockStorageDict

MAX_LOCKS = 100  # live WebDAV locks per user
MAX_DEAD_PROPS = 1000  # dead properties (PROPPATCH) per user
MAX_DEAD_PROP_BYTES = 1 << 20  # their names and values together, per user


def _owner(ref_url: str) -> str:
    """The user segment of one of our reference URLs (``/<user>/<path>``)."""
    return ref_url.lstrip("/").partition("/")[0]


def _under(url: str, root: str) -> bool:
    """``url`` is ``root`` or inside it (reference URLs; a collection's ends with ``/``)."""
    base = root.rstrip("/")
    return url.rstrip("/") == base or url.startswith(base + "/")


class UserLocks(LockStorageDict):  # type: ignore[misc]
    """wsgidav's in-memory lock storage, with at most :data:`MAX_LOCKS` live locks per user (507 past it): shared
    locks on one name could otherwise be stacked without end."""

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        user, now = _owner(path), time.time()
        self._lock.acquire_write()  # (reentrant: the create below takes it again)
        try:
            live = sum(1 for key, held in self._dict.items()
                       if not key.startswith("URL2TOKEN:") and _owner(held["root"]) == user
                       and not 0 <= float(held["expire"]) < now)
            if live >= MAX_LOCKS:
                raise DAVError(HTTP_INSUFFICIENT_STORAGE,
                               context_info=f"at most {MAX_LOCKS} WebDAV locks per user: unlock some first")
            created: dict[str, Any] = super().create(path, lock)
            return created
        finally:
            self._lock.release()


class DeadProperties:
    """wsgidav's property manager (its interface, by reference URL): in memory, bounded per user by
    :data:`MAX_DEAD_PROPS` properties and :data:`MAX_DEAD_PROP_BYTES` of names and values (507 past either, after
    dropping those of files that no longer exist). Removing a URL also removes what lies under it. Each user has
    their own lock: one user's checks never hold up another's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, tuple[threading.Lock, dict[str, dict[str, bytes]]]] = {}  # URL -> name -> value

    def __repr__(self) -> str:
        return "DeadProperties"

    @contextmanager
    def _of(self, url: str) -> Iterator[dict[str, dict[str, bytes]]]:
        """The properties of ``url``'s user, by reference URL, under that user's lock."""
        with self._lock:
            lock, urls = self._users.setdefault(_owner(url), (threading.Lock(), {}))
        with lock:
            yield urls

    def get_properties(self, norm_url: str, environ: dict[str, Any] | None = None) -> list[str]:
        with self._of(norm_url) as urls:
            return list(urls.get(norm_url, {}))

    def get_property(self, norm_url: str, name: str, environ: dict[str, Any] | None = None) -> bytes | None:
        with self._of(norm_url) as urls:
            return urls.get(norm_url, {}).get(name)

    def write_property(self, norm_url: str, name: str, property_value: bytes, dry_run: bool = False,
                       environ: dict[str, Any] | None = None) -> None:
        with self._of(norm_url) as urls:
            self._store(urls, environ, norm_url, {**urls.get(norm_url, {}), name: property_value}, dry_run=dry_run)

    def _store(self, urls: dict[str, dict[str, bytes]], environ: dict[str, Any] | None, url: str,
               props: dict[str, bytes], *, dry_run: bool = False) -> None:
        """Set ``url``'s properties to ``props`` if the user's bounds allow it, else 507 (under the user's lock)."""
        if not self._fits({**urls, url: props}):
            self._drop_gone(urls, environ)
            if not self._fits({**urls, url: props}):
                raise DAVError(HTTP_INSUFFICIENT_STORAGE, context_info=(
                    f"at most {MAX_DEAD_PROPS} WebDAV properties of {MAX_DEAD_PROP_BYTES} bytes in all per user"))
        if not dry_run:
            urls[url] = props

    @staticmethod
    def _fits(urls: dict[str, dict[str, bytes]]) -> bool:
        count = sum(len(props) for props in urls.values())
        size = sum(len(key) + len(value) for props in urls.values() for key, value in props.items())
        return count <= MAX_DEAD_PROPS and size <= MAX_DEAD_PROP_BYTES

    @staticmethod
    def _drop_gone(urls: dict[str, dict[str, bytes]], environ: dict[str, Any] | None) -> None:
        """Forget the properties of files no longer on the disk (deleted or moved by the API, not WebDAV)."""
        provider = (environ or {}).get("wsgidav.provider")
        if provider is None:
            return
        for url in list(urls):
            try:
                gone = provider.get_resource_inst(provider.ref_url_to_path(url), environ) is None
            except DAVError:
                gone = True
            if gone:
                del urls[url]

    def remove_property(self, norm_url: str, name: str, dry_run: bool = False,
                        environ: dict[str, Any] | None = None) -> None:
        if not dry_run:
            with self._of(norm_url) as urls:
                urls.get(norm_url, {}).pop(name, None)
                if not urls.get(norm_url, True):
                    del urls[norm_url]

    def remove_properties(self, norm_url: str, environ: dict[str, Any] | None = None) -> None:
        with self._of(norm_url) as urls:
            for url in [u for u in urls if _under(u, norm_url)]:
                del urls[url]

    def copy_properties(self, src_url: str, dest_url: str, environ: dict[str, Any] | None = None) -> None:
        with self._of(src_url) as urls:
            if src_url in urls and _owner(src_url) == _owner(dest_url):
                self._store(urls, environ, dest_url, dict(urls[src_url]))

    def move_properties(self, src_url: str, dest_url: str, with_children: bool,
                        environ: dict[str, Any] | None = None) -> None:
        if _owner(src_url) != _owner(dest_url):
            return
        src, dest = src_url.rstrip("/"), dest_url.rstrip("/")
        with self._of(src_url) as urls:
            for url in [u for u in urls if (_under(u, src_url) if with_children else u == src_url)]:
                moved = urls.pop(url)
                urls[dest + url.rstrip("/")[len(src):] + ("/" if url.endswith("/") else "")] = moved
