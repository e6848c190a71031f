"""Reading and deleting in the registry: its HTTP API with an internal token, plus its storage layout.

Repositories, tags, digests and sizes come from the registry's HTTP API (``/v2/_catalog``,
``/v2/<name>/tags/list``, ``/v2/<name>/manifests/<tag>``), with tokens the platform mints for
itself. Distribution 2.8 has no API for two things, which the filesystem layout under
``<storage>/docker/registry/v2`` answers: when a tag was pushed (its link file's time) and how
much storage a namespace holds (the blobs its repositories link, counted once). Removing one tag
that shares its manifest with another tag, and removing a repository from the catalogue, also
happen there; garbage collection (``maintenance``) then frees the unreferenced blobs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from arkserve.errors import NotFound, TemporaryError
from arkserve.registry.tokens import Access, TokenSigner

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json"])
ALL = ("pull", "push", "delete", "*")


_walking_lock = threading.Lock()
_walking: dict[str, Future[int]] = {}  # namespace_bytes: the walk of each repositories/<namespace> running now


def _dirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return [e for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []  # not there (nothing pushed), or removed meanwhile


def _held(root: str) -> Iterator[tuple[str, str]]:
    """What the repositories under ``root`` hold in the registry's layout: ``(hex digest, "")`` for each layer
    (``_layers/sha256/<hex>/link``) and manifest (``_manifests/revisions/sha256/<hex>/link``) they link, and
    ``("", data path)`` for each unfinished upload (``_uploads/<id>/data``). Repository name components never
    start with ``_``, so the other directories are nested repositories."""
    todo = [root]
    while todo:
        for entry in _dirs(todo.pop()):
            if entry.name in ("_layers", "_manifests"):
                links = os.path.join(entry.path, *(("revisions",) if entry.name == "_manifests" else ()), "sha256")
                for blob in _dirs(links):  # a deleted link leaves its directory behind
                    if os.path.isfile(os.path.join(blob.path, "link")):
                        yield blob.name, ""
            elif entry.name == "_uploads":
                for upload in _dirs(entry.path):
                    yield "", os.path.join(upload.path, "data")
            elif not entry.name.startswith("_"):
                todo.append(entry.path)


@dataclass(frozen=True)
class Tag:
    name: str
    digest: str
    size: int  # compressed bytes: config + layers (an index: its manifests)
    pushed_at: float | None


class Catalogue:
    def __init__(self, base_url: str, signer: TokenSigner, storage: Path, timeout_s: float = 10.0) -> None:
        self.base_url, self.signer, self.v2 = base_url.rstrip("/"), signer, Path(storage) / "docker/registry/v2"
        self.http = httpx.Client(timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, access: Access, **kw: Any) -> httpx.Response:
        token = self.signer.mint("arkserve", [access], ttl_s=60)
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        try:
            return self.http.request(method, f"{self.base_url}{path}", headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise TemporaryError(f"the image registry at {self.base_url} is not reachable: {exc}",
                                 code="RegistryUnavailable") from exc

    @staticmethod
    def _check(resp: httpx.Response, what: str) -> None:
        if resp.status_code == 404:
            raise NotFound(f"{what} not found in the registry", code="ImageNotFound")
        if resp.status_code >= 400:
            raise TemporaryError(f"the image registry answered {resp.status_code} for {what}: {resp.text[:300]}",
                                 code="RegistryUnavailable")

    def repositories(self) -> list[str]:
        out: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            resp = self._call("GET", path, Access("registry", "catalog", ("*",)))
            self._check(resp, "the catalogue")
            out += resp.json().get("repositories") or []
            link = resp.headers.get("link", "")
            path = link.split(";")[0].strip("<> ") if "rel=\"next\"" in link else ""
        return out

    def tag_names(self, repo: str) -> list[str]:
        resp = self._call("GET", f"/v2/{repo}/tags/list", Access("repository", repo, ("pull",)))
        if resp.status_code == 404:
            return []
        self._check(resp, repo)
        return sorted(resp.json().get("tags") or [])

    def manifest(self, repo: str, reference: str) -> tuple[str, int, dict[str, Any]]:
        """(digest, size, manifest) of ``repo:reference``."""
        resp = self._call("GET", f"/v2/{repo}/manifests/{reference}", Access("repository", repo, ("pull",)),
                          headers={"Accept": MANIFEST_TYPES})
        self._check(resp, f"{repo}:{reference}")
        body = resp.json()
        parts = body.get("layers") or body.get("manifests") or []
        size = int((body.get("config") or {}).get("size", 0)) + sum(int(p.get("size", 0)) for p in parts)
        return resp.headers.get("docker-content-digest", ""), size, body

    def pushed_at(self, repo: str, tag: str) -> float | None:
        link = self.v2 / "repositories" / repo / "_manifests/tags" / tag / "current/link"
        try:
            return link.stat().st_mtime
        except OSError:
            return None

    def tags(self, repo: str) -> list[Tag]:
        out = []
        for name in self.tag_names(repo):
            try:
                digest, size, _ = self.manifest(repo, name)
            except NotFound:  # deleted meanwhile
                continue
            out.append(Tag(name, digest, size, self.pushed_at(repo, name)))
        return out

    def delete_tag(self, repo: str, tag: str) -> str:
        """Remove ``repo:tag``; returns its digest. The manifest goes too unless another tag still names it."""
        digest, _, _ = self.manifest(repo, tag)
        others = [t for t in self.tag_names(repo)
                  if t != tag and self.manifest(repo, t)[0] == digest]  # public content address
        if others:  # Distribution 2.8 deletes manifests, not tags: drop only this tag's directory
            shutil.rmtree(self.v2 / "repositories" / repo / "_manifests/tags" / tag, ignore_errors=True)
            return digest
        resp = self._call("DELETE", f"/v2/{repo}/manifests/{digest}", Access("repository", repo, ALL))
        if resp.status_code != 404:
            self._check(resp, f"{repo}@{digest}")
        return digest

    def delete_repository(self, repo: str) -> None:
        """Every manifest of ``repo``, then the repository itself (it leaves the catalogue)."""
        for tag in self.tag_names(repo):
            with contextlib.suppress(NotFound):
                self.delete_tag(repo, tag)
        shutil.rmtree(self.v2 / "repositories" / repo, ignore_errors=True)

    def namespace_bytes(self, namespace: str) -> int:
        """Storage held by ``namespace``'s repositories: each blob they link, layers and manifests alike, counted
        once, and the data of their unfinished uploads (until ``image gc`` or the registry's upload purging
        removes them). One walk of the namespace's repository directories, reading no tags: per blob its link
        and its data file are looked at, per upload its data file (about 0.3 s for 10,000 manifests). Asked
        again while a walk of the namespace runs (a burst of token requests), the answer is that walk's: one
        walk of a namespace at a time."""
        root = str(self.v2 / "repositories" / namespace)
        with _walking_lock:
            walk = _walking.get(root)
            mine = walk is None
            if walk is None:
                walk = _walking[root] = Future()
        if not mine:
            return walk.result()
        try:
            total = self._held_bytes(root)
            walk.set_result(total)
            return total
        except BaseException as exc:
            walk.set_exception(exc)
            raise
        finally:
            with _walking_lock:
                del _walking[root]

    def _held_bytes(self, root: str) -> int:
        seen: set[str] = set()
        total = 0
        blobs = self.v2 / "blobs" / "sha256"
        for hexdigest, upload in _held(root):
            if upload:
                with contextlib.suppress(OSError):  # finished or purged meanwhile, or no data written yet
                    total += os.stat(upload).st_size
                continue
            if hexdigest in seen:
                continue
            seen.add(hexdigest)
            try:
                total += (blobs / hexdigest[:2] / hexdigest / "data").stat().st_size
            except OSError:
                continue  # collected already
        return total

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Remove the manifest ``repo@digest``; the registry untags every tag naming it. ImageNotFound when the
        repository holds no such manifest."""
        resp = self._call("DELETE", f"/v2/{repo}/manifests/{digest}", Access("repository", repo, ALL))
        self._check(resp, f"{repo}@{digest}")
